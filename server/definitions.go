package server

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/waymarkdev/waymark"
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

type definitionsOutput struct {
	Body *waymark.Page[*waymark.DefinitionInfo]
}

type definitionInput struct {
	ID string `path:"id"`
}

type definitionVersionInput struct {
	ID      string `path:"id"`
	Version int    `path:"version" minimum:"1"`
}

type definitionOutput struct {
	Body *waymark.DefinitionInfo
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

	register(s, huma.Operation{
		OperationID: "list-definitions", Method: http.MethodGet, Path: Prefix + "/definitions",
		Tags: []string{"definitions"}, Summary: "The latest version of every definition (without its source)",
	}, permRead, func(ctx context.Context, _ *Principal, _ *struct{}) (*definitionsOutput, error) {
		defs, err := s.engine.Definitions(ctx)
		if err != nil {
			return nil, err
		}
		return &definitionsOutput{Body: &waymark.Page[*waymark.DefinitionInfo]{Items: withoutSource(defs)}}, nil
	})
	register(s, huma.Operation{
		OperationID: "get-definition", Method: http.MethodGet, Path: Prefix + "/definitions/{id}",
		Tags: []string{"definitions"}, Summary: "The latest version of a definition, with its source",
		Errors: []int{http.StatusNotFound},
	}, permRead, func(ctx context.Context, _ *Principal, in *definitionInput) (*definitionOutput, error) {
		d, err := s.engine.Definition(ctx, in.ID, 0)
		if err != nil {
			return nil, err
		}
		return &definitionOutput{Body: d}, nil
	})
	register(s, huma.Operation{
		OperationID: "list-definition-versions", Method: http.MethodGet, Path: Prefix + "/definitions/{id}/versions",
		Tags: []string{"definitions"}, Summary: "Every version of a definition, oldest first (without sources)",
		Errors: []int{http.StatusNotFound},
	}, permRead, func(ctx context.Context, _ *Principal, in *definitionInput) (*definitionsOutput, error) {
		defs, err := s.engine.DefinitionVersions(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		return &definitionsOutput{Body: &waymark.Page[*waymark.DefinitionInfo]{Items: withoutSource(defs)}}, nil
	})
	register(s, huma.Operation{
		OperationID: "get-definition-version", Method: http.MethodGet, Path: Prefix + "/definitions/{id}/versions/{version}",
		Tags: []string{"definitions"}, Summary: "One version of a definition, with its source",
		Errors: []int{http.StatusNotFound},
	}, permRead, func(ctx context.Context, _ *Principal, in *definitionVersionInput) (*definitionOutput, error) {
		d, err := s.engine.Definition(ctx, in.ID, in.Version)
		if err != nil {
			return nil, err
		}
		return &definitionOutput{Body: d}, nil
	})
}

// withoutSource drops the sources of a list, which can be large.
func withoutSource(defs []*waymark.DefinitionInfo) []*waymark.DefinitionInfo {
	for _, d := range defs {
		d.Source = ""
	}
	return defs
}
