package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// streamTokenPrefix starts every stream token, and names its format.
const streamTokenPrefix = "wst1."

// streamTokens issues and checks stream tokens: short-lived credentials
// for GET /api/v1/events?token=, for clients that cannot send an
// Authorization header (a browser's EventSource). A token is
//
//	wst1.<base64url(claims JSON)>.<base64url(HMAC-SHA256(key, "wst1." + claims))>
//
// bound to a user and roles, and valid until its exp to start a stream.
type streamTokens struct {
	key []byte
	ttl time.Duration
}

// streamClaims are what a stream token says.
type streamClaims struct {
	User  string   `json:"sub"`
	Roles []string `json:"roles,omitempty"`
	// Exp is when it stops starting streams, in Unix milliseconds.
	Exp int64 `json:"exp"`
}

// newStreamTokens uses key, or a random key when it is empty (random
// reports that).
func newStreamTokens(key string, ttl time.Duration) (t *streamTokens, random bool, err error) {
	t = &streamTokens{key: []byte(key), ttl: ttl}
	if key == "" {
		t.key = make([]byte, 32)
		if _, err := rand.Read(t.key); err != nil {
			return nil, false, fmt.Errorf("stream token key: %w", err)
		}
		random = true
	}
	return t, random, nil
}

// issue returns a token for p, valid from now for the configured time.
func (t *streamTokens) issue(p *Principal, now time.Time) (string, time.Time) {
	exp := now.Add(t.ttl)
	claims, _ := json.Marshal(&streamClaims{User: p.User, Roles: p.Roles, Exp: exp.UnixMilli()})
	signed := streamTokenPrefix + base64.RawURLEncoding.EncodeToString(claims)
	return signed + "." + base64.RawURLEncoding.EncodeToString(t.mac(signed)), exp
}

func (t *streamTokens) mac(signed string) []byte {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(signed))
	return m.Sum(nil)
}

// verify returns who a token was issued to. It never says more than
// "not valid" or "expired".
func (t *streamTokens) verify(token string, now time.Time) (*Principal, *Error) {
	invalid := errUnauthorized("the stream token is not valid")
	rest, ok := strings.CutPrefix(token, streamTokenPrefix)
	if !ok {
		return nil, invalid
	}
	claims64, mac64, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, invalid
	}
	mac, err := base64.RawURLEncoding.DecodeString(mac64)
	if err != nil || !hmac.Equal(mac, t.mac(streamTokenPrefix+claims64)) {
		return nil, invalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(claims64)
	if err != nil {
		return nil, invalid
	}
	var c streamClaims
	if err := json.Unmarshal(raw, &c); err != nil || c.User == "" {
		return nil, invalid
	}
	if now.UnixMilli() >= c.Exp {
		return nil, errUnauthorized("the stream token has expired; get a new one from POST " + PathEventsToken)
	}
	return &Principal{User: c.User, Roles: c.Roles, key: "stream:" + c.User}, nil
}
