package server

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
)

// PathMe answers who the caller is.
const PathMe = Prefix + "/me"

// Me is the caller as the server sees it: what a client (the dashboard)
// needs to show only what the user may do. The server still checks every
// request.
type Me struct {
	User  string   `json:"user"`
	Roles []string `json:"roles"`
	// InsecureDev is true when the server takes the user and roles from
	// the X-Waymark-User and X-Waymark-Roles headers.
	InsecureDev bool `json:"insecureDev"`
	// May lists what the caller's roles allow: read, operate, admin, work.
	May []string `json:"may"`
}

type meOutput struct {
	Body *Me
}

func (s *Server) registerMe() {
	register(s, huma.Operation{
		OperationID: "get-me", Method: http.MethodGet, Path: PathMe,
		Tags: []string{"auth"}, Summary: "Who the caller is",
		Description: "The user and roles the request's credentials (or, in insecure-dev mode, its headers) stand for.",
	}, permUser, func(_ context.Context, p *Principal, _ *struct{}) (*meOutput, error) {
		me := &Me{User: p.User, Roles: append([]string{}, p.Roles...), InsecureDev: s.cfg.InsecureDev, May: []string{}}
		for _, c := range []struct {
			name string
			perm permission
		}{{"read", permRead}, {"operate", permOperate}, {"admin", permAdmin}, {"work", permWork}} {
			if p.may(c.perm) {
				me.May = append(me.May, c.name)
			}
		}
		return &meOutput{Body: me}, nil
	})
}
