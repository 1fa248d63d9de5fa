package server_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/server"
)

const hsSecret = "an-hs256-secret-of-at-least-32-bytes!"

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
	rsaPEM  string
)

func rsaPrivate(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	rsaOnce.Do(func() {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			panic(err)
		}
		rsaKey = key
		rsaPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	})
	return rsaKey
}

func rsaPublicPEM(t *testing.T) string {
	rsaPrivate(t)
	return rsaPEM
}

// token signs claims; exp defaults to an hour from now and aud to
// "waymark".
func hsToken(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	withDefaults(claims)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(hsSecret))
	require.NoError(t, err)
	return tok
}

func rsToken(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	withDefaults(claims)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(rsaPrivate(t))
	require.NoError(t, err)
	return tok
}

func withDefaults(claims jwt.MapClaims) {
	if _, ok := claims["exp"]; !ok {
		claims["exp"] = time.Now().Add(time.Hour).Unix()
	}
	if _, ok := claims["aud"]; !ok {
		claims["aud"] = "waymark"
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	list := func(token string) *response {
		return b.do(req{method: http.MethodPost, path: server.Prefix + "/messages", token: token,
			body: map[string]any{"name": "nobody-waits", "correlation": "c"}})
	}

	t.Run("NoToken", func(t *testing.T) {
		t.Parallel()
		resp := list("")
		resp.requireError(t, http.StatusUnauthorized, server.CodeUnauthorized)
		require.Equal(t, `Bearer realm="waymark"`, resp.header.Get("WWW-Authenticate"))
	})
	t.Run("NotBearer", func(t *testing.T) {
		t.Parallel()
		resp := b.do(req{method: http.MethodPost, path: server.Prefix + "/messages",
			header: map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}, body: map[string]any{"name": "x"}})
		resp.requireError(t, http.StatusUnauthorized, server.CodeUnauthorized)
	})
	t.Run("UnknownKey", func(t *testing.T) {
		t.Parallel()
		list("not-a-key").requireError(t, http.StatusUnauthorized, server.CodeUnauthorized)
	})
	t.Run("APIKey", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, http.StatusOK, list(operatorKey).status)
	})
	t.Run("WrongRole", func(t *testing.T) {
		t.Parallel()
		e := list(viewerKey).requireError(t, http.StatusForbidden, server.CodeForbidden)
		require.Contains(t, e.Error.Message, "operator or admin")
	})
	t.Run("HeadersIgnoredOutsideDevMode", func(t *testing.T) {
		t.Parallel()
		resp := b.do(req{method: http.MethodPost, path: server.Prefix + "/messages", body: map[string]any{"name": "x"},
			header: map[string]string{server.HeaderUser: "mallory", server.HeaderRoles: "admin"}})
		resp.requireError(t, http.StatusUnauthorized, server.CodeUnauthorized)
	})
	t.Run("JWT", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name   string
			token  string
			status int
			msg    string
		}{
			{"HS256", hsToken(t, jwt.MapClaims{"sub": "hana", "roles": []string{"operator"}}), http.StatusOK, ""},
			{"RS256", rsToken(t, jwt.MapClaims{"sub": "rita", "roles": "viewer operator"}), http.StatusOK, ""},
			{"RolesMissing", hsToken(t, jwt.MapClaims{"sub": "hana"}), http.StatusForbidden, "operator or admin"},
			{"Expired", hsToken(t, jwt.MapClaims{"sub": "hana", "roles": []string{"operator"},
				"exp": time.Now().Add(-time.Hour).Unix()}), http.StatusUnauthorized, "expired"},
			{"NotYetValid", hsToken(t, jwt.MapClaims{"sub": "hana", "roles": []string{"operator"},
				"nbf": time.Now().Add(time.Hour).Unix()}), http.StatusUnauthorized, "not valid yet"},
			{"NoExp", hsToken(t, jwt.MapClaims{"sub": "hana", "exp": nil}), http.StatusUnauthorized, "not valid"},
			{"WrongAudience", hsToken(t, jwt.MapClaims{"sub": "hana", "aud": "other"}), http.StatusUnauthorized, "not meant for this server"},
			{"NoSubject", hsToken(t, jwt.MapClaims{"roles": []string{"operator"}}), http.StatusUnauthorized, `"sub"`},
			{"WrongSecret", func() string {
				tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "eve", "roles": []string{"admin"},
					"aud": "waymark", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte("another-secret-of-at-least-32-bytes"))
				require.NoError(t, err)
				return tok
			}(), http.StatusUnauthorized, "not valid"},
			{"AlgNone", func() string {
				tok, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "eve", "roles": []string{"admin"},
					"aud": "waymark", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
				require.NoError(t, err)
				return tok
			}(), http.StatusUnauthorized, "not valid"},
			{"Tampered", func() string {
				tok := hsToken(t, jwt.MapClaims{"sub": "hana", "roles": []string{"viewer"}})
				parts := strings.Split(tok, ".")
				admin := hsToken(t, jwt.MapClaims{"sub": "hana", "roles": []string{"admin"}})
				return parts[0] + "." + strings.Split(admin, ".")[1] + "." + parts[2]
			}(), http.StatusUnauthorized, "not valid"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				resp := list(tt.token)
				if tt.status == http.StatusOK {
					require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
					return
				}
				code := server.CodeUnauthorized
				if tt.status == http.StatusForbidden {
					code = server.CodeForbidden
				}
				e := resp.requireError(t, tt.status, code)
				require.Contains(t, e.Error.Message, tt.msg)
			})
		}
	})
}

func TestConfigRefused(t *testing.T) {
	t.Parallel()
	e, err := waymark.New(openSQLite(t), nil)
	require.NoError(t, err)
	tests := []struct {
		name string
		cfg  *server.Config
		err  string
	}{
		{"NoCredentials", nil, "no API keys or JWT key configured"},
		{"BadHash", &server.Config{APIKeys: []server.APIKey{{User: "u", Hash: "plain-text-key"}}}, "APIKeys[0].Hash"},
		{"NoUser", &server.Config{APIKeys: []server.APIKey{{Hash: server.HashAPIKey("k")}}}, "APIKeys[0].User"},
		{"ShortSecret", &server.Config{JWT: &server.JWTConfig{HS256Secret: "short"}}, "JWT.HS256Secret"},
		{"BadPEM", &server.Config{JWT: &server.JWTConfig{RS256PublicKey: "not pem"}}, "JWT.RS256PublicKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := server.New(e, tt.cfg)
			require.ErrorContains(t, err, tt.err)
		})
	}
}

func TestInsecureDev(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{tweak: func(c *server.Config) { *c = server.Config{InsecureDev: true, RateLimit: -1} }})

	t.Run("AnonymousAdmin", func(t *testing.T) {
		t.Parallel()
		resp := b.do(req{method: http.MethodPost, path: server.Prefix + "/definitions", body: helloYAML})
		require.Equal(t, http.StatusCreated, resp.status, "body: %s", resp.body)
	})
	t.Run("HeadersNameTheUser", func(t *testing.T) {
		t.Parallel()
		resp := b.do(req{method: http.MethodPost, path: server.Prefix + "/definitions", body: helloYAML,
			header: map[string]string{server.HeaderUser: "vera", server.HeaderRoles: "viewer, finance"}})
		resp.requireError(t, http.StatusForbidden, server.CodeForbidden)
	})
	t.Run("RefusedOffLoopback", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "0.0.0.0:0")
		require.NoError(t, err)
		defer ln.Close()
		err = b.srv.Serve(context.Background(), ln)
		require.ErrorContains(t, err, "loopback")
	})
	t.Run("IsLoopbackAddr", func(t *testing.T) {
		t.Parallel()
		for addr, want := range map[string]bool{
			"127.0.0.1:8080": true, "localhost:1": true, "[::1]:80": true, "127.1.2.3:9": true,
			":8080": false, "0.0.0.0:8080": false, "10.0.0.1:80": false, "[::]:80": false, "example.com:80": false, "nonsense": false,
		} {
			require.Equal(t, want, server.IsLoopbackAddr(addr), addr)
		}
	})
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{tweak: func(c *server.Config) { c.RateLimit, c.RateBurst = 0.001, 2 }})
	send := func(token string) *response {
		return b.do(req{method: http.MethodPost, path: server.Prefix + "/messages", token: token, body: map[string]any{"name": "m"}})
	}
	require.Equal(t, http.StatusOK, send(operatorKey).status)
	require.Equal(t, http.StatusOK, send(operatorKey).status)
	resp := send(operatorKey)
	resp.requireError(t, http.StatusTooManyRequests, server.CodeRateLimited)
	require.NotEmpty(t, resp.header.Get("Retry-After"))
	// Another credential has a budget of its own.
	require.Equal(t, http.StatusOK, send(adminKey).status)
}

func TestServeShutsDownGracefully(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.srv.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + server.PathHealth)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	_, err = http.Get("http://" + ln.Addr().String() + server.PathHealth)
	require.Error(t, err, "the listener is closed")
}

// An HS256 token signed with the RS256 public key as its secret (the
// algorithm-confusion attack) is refused when only RS256 is configured.
func TestJWTAlgorithmConfusion(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{tweak: func(c *server.Config) {
		c.APIKeys, c.JWT = nil, &server.JWTConfig{RS256PublicKey: rsaPublicPEM(t)}
	}})
	forged, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "eve", "roles": []string{"admin"},
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(rsaPublicPEM(t)))
	require.NoError(t, err)
	resp := b.do(req{method: http.MethodPost, path: server.Prefix + "/messages", token: forged, body: map[string]any{"name": "x"}})
	resp.requireError(t, http.StatusUnauthorized, server.CodeUnauthorized)
	resp = b.do(req{method: http.MethodPost, path: server.Prefix + "/messages",
		token: rsToken(t, jwt.MapClaims{"sub": "rita", "roles": []string{"operator"}, "aud": nil}), body: map[string]any{"name": "x"}})
	require.Equal(t, http.StatusOK, resp.status, "body: %s", resp.body)
}
