package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefinitionDeployParams describe a definition to deploy.
type DefinitionDeployParams struct {
	ID          string
	Name        string
	Source      []byte
	ContentHash string
	DeployedAt  time.Time
}

// DefinitionDeploy stores a definition under the next version of its id, or,
// when a version with the same content hash exists, returns that version and
// created=false. Concurrent deploys of the same id each get their own version
// (or the same one, for the same content).
func DefinitionDeploy(ctx context.Context, s Store, p *DefinitionDeployParams) (def *Definition, created bool, err error) {
	if p.ID == "" {
		return nil, false, errors.New("deploy definition: id is empty")
	}
	if p.ContentHash == "" {
		return nil, false, errors.New("deploy definition: content hash is empty")
	}
	const maxTries = 20
	for try := 0; ; try++ {
		err = WithTx(ctx, s, func(tx Tx) error {
			existing, err := tx.DefinitionGetByHash(ctx, p.ID, p.ContentHash)
			if err == nil {
				def, created = existing, false
				return nil
			}
			if !errors.Is(err, ErrNotFound) {
				return err
			}
			next := 1
			latest, err := tx.DefinitionGet(ctx, p.ID, 0)
			switch {
			case err == nil:
				next = latest.Version + 1
			case !errors.Is(err, ErrNotFound):
				return err
			}
			def, err = tx.DefinitionInsert(ctx, &DefinitionInsertParams{
				ID: p.ID, Version: next, Name: p.Name, Source: p.Source,
				ContentHash: p.ContentHash, DeployedAt: p.DeployedAt,
			})
			created = true
			return err
		})
		if err == nil {
			return def, created, nil
		}
		// A concurrent deploy took the version number: read again.
		if (errors.Is(err, ErrDuplicate) || IsRetryable(err)) && try < maxTries {
			continue
		}
		return nil, false, fmt.Errorf("deploy definition %q: %w", p.ID, err)
	}
}
