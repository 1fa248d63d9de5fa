package server

import (
	"cmp"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Roles the server itself knows. Any other role a user carries is a
// business role: it only matters to the candidate roles of user tasks.
const (
	// RoleAdmin may do everything, including deploying definitions, and
	// completes any task.
	RoleAdmin = "admin"
	// RoleOperator may start instances, deliver messages and intervene
	// (cancel, suspend, resume, retry, skip), and read everything.
	RoleOperator = "operator"
	// RoleViewer may read everything.
	RoleViewer = "viewer"
	// RoleWorker may poll for jobs and report them (the /jobs routes of
	// external workers), and nothing else of the server's own.
	RoleWorker = "worker"
)

// Headers a request names its user and roles by in insecure-dev mode.
const (
	HeaderUser  = "X-Waymark-User"
	HeaderRoles = "X-Waymark-Roles"
)

// Principal is who a request acts as.
type Principal struct {
	// User is the user id, passed to the engine as the actor of every
	// change.
	User string
	// Roles are the user's roles: the server's own (admin, operator,
	// viewer, worker) and business roles.
	Roles []string
	// key identifies the credential, for rate limiting.
	key string
}

// Has reports whether p carries role.
func (p *Principal) Has(role string) bool { return slices.Contains(p.Roles, role) }

// permission is what an operation requires of its caller.
type permission int

const (
	// permUser: any authenticated caller (the task inbox; the engine guards
	// each task by its assignee and candidate roles).
	permUser permission = iota
	// permRead: viewer, operator or admin.
	permRead
	// permOperate: operator or admin.
	permOperate
	// permAdmin: admin.
	permAdmin
	// permWork: worker or admin (the /jobs routes).
	permWork
)

func (p permission) String() string {
	switch p {
	case permRead:
		return "viewer, operator or admin"
	case permOperate:
		return "operator or admin"
	case permAdmin:
		return "admin"
	case permWork:
		return "worker or admin"
	}
	return "any user"
}

// may reports whether p has permission perm.
func (p *Principal) may(perm permission) bool {
	switch perm {
	case permUser:
		return true
	case permRead:
		return p.Has(RoleAdmin) || p.Has(RoleOperator) || p.Has(RoleViewer)
	case permOperate:
		return p.Has(RoleAdmin) || p.Has(RoleOperator)
	case permAdmin:
		return p.Has(RoleAdmin)
	case permWork:
		return p.Has(RoleAdmin) || p.Has(RoleWorker)
	}
	return false
}

// APIKey is a static bearer token. The server keeps only its SHA-256 hash.
type APIKey struct {
	// User is who requests with the key act as.
	User string `yaml:"user" json:"user"`
	// Hash is "sha256:" followed by the hex SHA-256 of the key, as
	// `waymark token hash` prints it.
	Hash string `yaml:"hash" json:"hash"`
	// Roles of the key's user.
	Roles []string `yaml:"roles" json:"roles"`
}

// JWTConfig accepts JSON Web Tokens signed with HS256 or RS256. Tokens must
// carry exp; nbf, iss and aud are checked when present or configured.
type JWTConfig struct {
	// HS256Secret is the shared secret of HS256 tokens, at least 32 bytes.
	// Empty: HS256 tokens are refused.
	HS256Secret string `yaml:"hs256Secret" json:"hs256Secret"`
	// RS256PublicKey is the PEM-encoded RSA public key of RS256 tokens.
	// Empty: RS256 tokens are refused.
	RS256PublicKey string `yaml:"rs256PublicKey" json:"rs256PublicKey"`
	// Issuer, when set, must be the token's iss.
	Issuer string `yaml:"issuer" json:"issuer"`
	// Audience, when set, must be among the token's aud.
	Audience string `yaml:"audience" json:"audience"`
	// UserClaim names the claim holding the user id. Defaults to "sub".
	UserClaim string `yaml:"userClaim" json:"userClaim"`
	// RolesClaim names the claim holding the roles: a list of strings or
	// one string of roles separated by spaces or commas. Defaults to
	// "roles".
	RolesClaim string `yaml:"rolesClaim" json:"rolesClaim"`
	// Leeway is the clock skew allowed on exp and nbf. Defaults to 30s.
	Leeway time.Duration `yaml:"leeway" json:"leeway"`
}

func (c *JWTConfig) enabled() bool {
	return c != nil && (c.HS256Secret != "" || c.RS256PublicKey != "")
}

// HashAPIKey returns the form Config.APIKeys holds a key in:
// "sha256:<hex>".
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// authenticator turns a request's credentials into a Principal.
type authenticator struct {
	keys        map[[sha256.Size]byte]*APIKey
	jwt         *JWTConfig
	rsaKey      *rsa.PublicKey
	methods     []string
	insecureDev bool
}

func newAuthenticator(cfg *Config) (*authenticator, error) {
	a := &authenticator{keys: map[[sha256.Size]byte]*APIKey{}, jwt: cfg.JWT, insecureDev: cfg.InsecureDev}
	for i := range cfg.APIKeys {
		k := &cfg.APIKeys[i]
		field := fmt.Sprintf("APIKeys[%d]", i)
		if k.User == "" {
			return nil, fmt.Errorf("%s.User: is required", field)
		}
		hexSum, ok := strings.CutPrefix(k.Hash, "sha256:")
		raw, err := hex.DecodeString(hexSum)
		if !ok || err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("%s.Hash: want sha256: and 64 hex digits (waymark token hash prints it)", field)
		}
		sum := [sha256.Size]byte(raw)
		if _, dup := a.keys[sum]; dup {
			return nil, fmt.Errorf("%s.Hash: the same key is configured twice", field)
		}
		a.keys[sum] = k
	}
	if cfg.JWT.enabled() {
		j := *cfg.JWT
		j.UserClaim = cmp.Or(j.UserClaim, "sub")
		j.RolesClaim = cmp.Or(j.RolesClaim, "roles")
		if j.Leeway == 0 {
			j.Leeway = 30 * time.Second
		}
		if j.Leeway < 0 {
			return nil, fmt.Errorf("JWT.Leeway %s: must not be negative", j.Leeway)
		}
		if j.HS256Secret != "" {
			if len(j.HS256Secret) < 32 {
				return nil, errors.New("JWT.HS256Secret: must be at least 32 bytes")
			}
			a.methods = append(a.methods, jwt.SigningMethodHS256.Alg())
		}
		if j.RS256PublicKey != "" {
			key, err := jwt.ParseRSAPublicKeyFromPEM([]byte(j.RS256PublicKey))
			if err != nil {
				return nil, fmt.Errorf("JWT.RS256PublicKey: %w", err)
			}
			a.rsaKey = key
			a.methods = append(a.methods, jwt.SigningMethodRS256.Alg())
		}
		a.jwt = &j
	} else {
		a.jwt = nil
	}
	return a, nil
}

// configured reports whether any credential can be accepted.
func (a *authenticator) configured() bool { return len(a.keys) > 0 || a.jwt != nil }

// errUnauthorized is the answer to a request without acceptable credentials.
// It never says which check failed beyond the kind.
func errUnauthorized(msg string) *Error {
	e := newError(http.StatusUnauthorized, CodeUnauthorized, msg)
	e.headers = http.Header{"Www-Authenticate": []string{`Bearer realm="waymark"`}}
	return e
}

// authenticate returns who r acts as.
func (a *authenticator) authenticate(r *http.Request) (*Principal, *Error) {
	header := r.Header.Get("Authorization")
	if header == "" {
		if a.insecureDev && loopbackRemote(r.RemoteAddr) {
			return devPrincipal(r), nil
		}
		return nil, errUnauthorized("authentication required: send Authorization: Bearer <token>")
	}
	scheme, token, ok := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, errUnauthorized("the Authorization header must be: Bearer <token>")
	}
	if strings.Count(token, ".") == 2 && a.jwt != nil {
		return a.verifyJWT(token)
	}
	sum := sha256.Sum256([]byte(token))
	if k, ok := a.keys[sum]; ok {
		return &Principal{User: k.User, Roles: k.Roles, key: "key:" + hex.EncodeToString(sum[:8])}, nil
	}
	return nil, errUnauthorized("the token is not valid")
}

// devPrincipal is the user of an insecure-dev request: the one its headers
// name, or an anonymous admin.
func devPrincipal(r *http.Request) *Principal {
	user := strings.TrimSpace(r.Header.Get(HeaderUser))
	if user == "" {
		return &Principal{User: "anonymous", Roles: []string{RoleAdmin}, key: "dev:anonymous"}
	}
	var roles []string
	for _, role := range strings.Split(r.Header.Get(HeaderRoles), ",") {
		if role = strings.TrimSpace(role); role != "" {
			roles = append(roles, role)
		}
	}
	return &Principal{User: user, Roles: roles, key: "dev:" + user}
}

func (a *authenticator) verifyJWT(token string) (*Principal, *Error) {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(a.methods),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(a.jwt.Leeway),
	}
	if a.jwt.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(a.jwt.Issuer))
	}
	if a.jwt.Audience != "" {
		opts = append(opts, jwt.WithAudience(a.jwt.Audience))
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		switch t.Method.Alg() {
		case jwt.SigningMethodHS256.Alg():
			return []byte(a.jwt.HS256Secret), nil
		case jwt.SigningMethodRS256.Alg():
			return a.rsaKey, nil
		}
		return nil, fmt.Errorf("unexpected signing method %s", t.Method.Alg())
	}, opts...)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, errUnauthorized("the token has expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return nil, errUnauthorized("the token is not valid yet")
	case errors.Is(err, jwt.ErrTokenInvalidAudience), errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return nil, errUnauthorized("the token is not meant for this server")
	case err != nil:
		return nil, errUnauthorized("the token is not valid")
	}
	user, _ := claims[a.jwt.UserClaim].(string)
	if user == "" {
		return nil, errUnauthorized(fmt.Sprintf("the token has no %q claim", a.jwt.UserClaim))
	}
	return &Principal{User: user, Roles: rolesClaim(claims[a.jwt.RolesClaim]), key: "jwt:" + user}, nil
}

// rolesClaim reads roles given as a list of strings or as one string
// separated by spaces or commas.
func rolesClaim(v any) []string {
	var roles []string
	switch v := v.(type) {
	case string:
		roles = strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' })
	case []any:
		for _, r := range v {
			if s, ok := r.(string); ok && s != "" {
				roles = append(roles, s)
			}
		}
	}
	return roles
}

// loopbackRemote reports whether a request's remote address is on this
// machine.
func loopbackRemote(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// IsLoopbackAddr reports whether a listen address (host:port) binds to
// loopback only: 127.0.0.0/8, ::1 or localhost. An empty host (every
// interface) is not.
func IsLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type principalKey struct{}

// requestInfo is what the server's middleware learnt about a request.
type requestInfo struct {
	principal *Principal
	// ifMatch: the request carried If-Match.
	ifMatch bool
	// rc reaches the connection's deadlines (nil outside ServeHTTP).
	rc *http.ResponseController
}

func withRequestInfo(ctx context.Context, info *requestInfo) context.Context {
	return context.WithValue(ctx, principalKey{}, info)
}

func requestInfoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(principalKey{}).(*requestInfo)
	if info == nil {
		return &requestInfo{principal: &Principal{}}
	}
	return info
}
