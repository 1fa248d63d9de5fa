// Package server is Waymark's HTTP API: JSON over HTTP under /api/v1, plus
// /healthz and /readyz, over one *waymark.Engine.
//
//	srv, err := server.New(engine, &server.Config{APIKeys: keys, Logger: logger})
//	err = srv.Serve(ctx, listener) // until ctx ends, then a graceful shutdown
//
// A Server is an http.Handler. Routes are registered with huma, which
// generates the OpenAPI 3.1 document (served at /api/v1/openapi.json) and
// the request validation from the operations' Go types, so the document
// cannot drift from the code.
//
// The server holds no SQL and no business logic: every operation is one or
// two engine calls. What it adds is HTTP: authentication (API keys kept as
// SHA-256 hashes, JWT HS256/RS256, or insecure-dev mode on loopback), the
// roles admin, operator, viewer and worker, per-credential rate limits, a body
// limit, ETag/If-Match, Idempotency-Key, ?wait= long polls and the leased
// job polls of external workers (/jobs), and one error shape,
// {"error": {"code", "message", "details"}}, made from the engine's errors
// in one function (errorFor).
//
// GET /api/v1/events is the live stream of committed events, as
// Server-Sent Events. Each server runs one hub (hub.go) that tails the
// engine's stream (Engine.StreamAfter, woken by Engine.Changes, polling for
// other servers' commits) into a ring buffer that all its streams read. A
// stream resuming from an older cursor is caught up from the database first.
// Stream tokens (streamtoken.go) let browsers, which cannot send headers,
// open it. Close ends every stream and waits for the hub.
//
// Import rules: server imports the engine (package waymark), definition and
// store (for their error types); nothing in the engine imports server.
package server
