package server

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/waymarkdev/waymark"
)

// MessageRequest delivers a message to the instance waiting for it.
type MessageRequest struct {
	Name        string          `json:"name" minLength:"1" doc:"the message name a receive waits for"`
	Correlation string          `json:"correlation,omitempty" doc:"selects the waiting instance"`
	Payload     json.RawMessage `json:"payload,omitempty" doc:"becomes the receive's output"`
	MessageID   string          `json:"messageId,omitempty" doc:"with source, deduplicates: a message accepted before is acknowledged again with no second effect"`
	Source      string          `json:"source,omitempty" doc:"the sending system"`
}

type messageInput struct {
	Body MessageRequest
}

type messageOutput struct {
	Body *waymark.MessageResult
}

func (s *Server) registerMessages() {
	register(s, huma.Operation{
		OperationID: "deliver-message", Method: http.MethodPost, Path: Prefix + "/messages",
		Tags: []string{"messages"}, Summary: "Deliver a message",
		Description: "Hands the message to the instance waiting for it, or keeps it for a receive not reached yet.",
	}, permOperate, func(ctx context.Context, p *Principal, in *messageInput) (*messageOutput, error) {
		res, err := s.engine.DeliverMessage(ctx, &waymark.MessageParams{
			Name: in.Body.Name, Correlation: in.Body.Correlation, Payload: in.Body.Payload,
			MessageID: in.Body.MessageID, Source: in.Body.Source, Actor: p.User,
		})
		if err != nil {
			return nil, err
		}
		return &messageOutput{Body: res}, nil
	})
}
