package server

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestInsecureDevOnlyFromLoopback(t *testing.T) {
	t.Parallel()
	a, err := newAuthenticator(&Config{InsecureDev: true})
	require.NoError(t, err)
	for remote, ok := range map[string]bool{
		"127.0.0.1:5555": true, "[::1]:80": true, "10.1.2.3:5555": false, "[2001:db8::1]:80": false, "garbage": false,
	} {
		r := httptest.NewRequest("GET", "/api/v1/instances", nil)
		r.RemoteAddr = remote
		r.Header.Set(HeaderUser, "ann")
		r.Header.Set(HeaderRoles, " finance , viewer,")
		p, aerr := a.authenticate(r)
		if !ok {
			require.NotNil(t, aerr, remote)
			require.Equal(t, 401, aerr.GetStatus())
			continue
		}
		require.Nil(t, aerr, remote)
		require.Equal(t, "ann", p.User)
		require.Equal(t, []string{"finance", "viewer"}, p.Roles)
	}

	r := httptest.NewRequest("GET", "/api/v1/instances", nil)
	r.RemoteAddr = "127.0.0.1:1"
	p, aerr := a.authenticate(r)
	require.Nil(t, aerr)
	require.Equal(t, "anonymous", p.User)
	require.True(t, p.may(permAdmin))
}

func TestRolesClaim(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"a", "b", "c"}, rolesClaim("a b,c"))
	require.Equal(t, []string{"a", "b"}, rolesClaim([]any{"a", 3, "", "b"}))
	require.Nil(t, rolesClaim(nil))
	require.Nil(t, rolesClaim(42.0))
}

func TestPermissions(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		roles []string
		may   []permission
		not   []permission
	}{
		{[]string{RoleAdmin}, []permission{permUser, permRead, permOperate, permAdmin, permWork}, nil},
		{[]string{RoleOperator}, []permission{permUser, permRead, permOperate}, []permission{permAdmin, permWork}},
		{[]string{RoleViewer}, []permission{permUser, permRead}, []permission{permOperate, permAdmin, permWork}},
		{[]string{RoleWorker}, []permission{permUser, permWork}, []permission{permRead, permOperate, permAdmin}},
		{[]string{"finance"}, []permission{permUser}, []permission{permRead, permOperate, permAdmin, permWork}},
		{nil, []permission{permUser}, []permission{permRead, permOperate, permAdmin, permWork}},
	} {
		p := &Principal{User: "u", Roles: tt.roles}
		for _, perm := range tt.may {
			require.True(t, p.may(perm), "%v may %s", tt.roles, perm)
		}
		for _, perm := range tt.not {
			require.False(t, p.may(perm), "%v may not %s", tt.roles, perm)
		}
	}
}
