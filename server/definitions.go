package server

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// Deployment is the answer to a deploy.
type Deployment struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
	Name    string `json:"name,omitempty"`
	// Created is false when the same content was deployed before: the
	// answer is that version.
	Created     bool      `json:"created"`
	ContentHash string    `json:"contentHash"`
	DeployedAt  time.Time `json:"deployedAt"`
}

type deployInput struct {
	RawBody []byte `contentType:"application/yaml"`
}

type deployOutput struct {
	Status   int
	Location string `header:"Location"`
	Body     *Deployment
}

func (s *Server) registerDefinitions() {
	op := huma.Operation{
		OperationID: "deploy-definition", Method: http.MethodPost, Path: Prefix + "/definitions",
		Tags: []string{"definitions"}, Summary: "Deploy a definition (YAML or JSON)",
		Description: "201 with the new version; 200 with the existing version when the same content " +
			"was deployed before; 422 listing every problem of an invalid definition.",
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusUnprocessableEntity},
		RequestBody:   &huma.RequestBody{Description: "the definition, as YAML or JSON", Required: true},
	}
	register(s, op, permAdmin, func(ctx context.Context, _ *Principal, in *deployInput) (*deployOutput, error) {
		rec, created, err := s.engine.Deploy(ctx, bytes.Clone(in.RawBody))
		if err != nil {
			return nil, err
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		return &deployOutput{
			Status:   status,
			Location: Prefix + "/definitions/" + url.PathEscape(rec.ID) + "/versions/" + strconv.Itoa(rec.Version),
			Body: &Deployment{ID: rec.ID, Version: rec.Version, Name: rec.Name, Created: created,
				ContentHash: rec.ContentHash, DeployedAt: rec.DeployedAt},
		}, nil
	})
	s.documentStatus(http.MethodPost, op.Path, http.StatusOK, "The same content was deployed before: its version")
	// Documented only now: a schema given before registering would make huma
	// parse the body as JSON itself.
	body := s.api.OpenAPI().Paths[op.Path].Post.RequestBody
	body.Content["application/json"] = &huma.MediaType{Schema: body.Content["application/yaml"].Schema}
}
