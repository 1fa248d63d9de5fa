package server_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark"
	"github.com/waymarkdev/waymark/internal/cli"
	"github.com/waymarkdev/waymark/server"
	"github.com/waymarkdev/waymark/store"
	"github.com/waymarkdev/waymark/store/sqlite"
)

// smallDisk mounts a tmpfs of size bytes: a disk that really fills up.
// It needs root (as this repository's CI runs); elsewhere the test says so
// and stops.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.Itoa(size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("a small file system needs mount (root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file on dir's file system until it is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			require.True(t, errors.Is(err, syscall.ENOSPC), "filling: %v", err)
			return path
		}
	}
}

// TestSQLiteDiskFull runs a server on a SQLite file on a small disk, fills
// the disk, and holds it to its promises: writes are answered 507 in the
// error shape, never 500 and never a panic; nothing committed is lost; and
// once space returns the engine carries on, also with the work it could
// not commit meanwhile. Then the disk goes read-only: the file opens
// with a clear error and loses nothing.
func TestSQLiteDiskFull(t *testing.T) {
	t.Parallel()
	dir := smallDisk(t, 8<<20)
	path := filepath.Join(dir, "waymark.db")
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path, nil)
	require.NoError(t, err)
	closed := false
	t.Cleanup(func() {
		if !closed {
			s.Close()
		}
	})
	b := setup(t, setupOpts{store: s})
	b.deploy(approvalYAML)
	b.deploy(helloYAML)

	// Instances committed before the fault: each waits for its task.
	committed := map[string]bool{}
	first := ""
	for i := range 20 {
		inst, _ := b.start("approval", map[string]any{"order": "before-" + strconv.Itoa(i)}, "?wait=10s", nil)
		require.Equal(t, store.InstanceWaiting, inst.Status)
		committed[inst.ID] = true
		first = inst.ID
	}

	filler := fill(t, dir)
	// The WAL has room of its own: a few writes may still commit. Keep
	// writing until the disk says no; every answer is a 201 or a 507.
	refused := 0
	for i := 0; refused < 3; i++ {
		require.Less(t, i, 5000, "the full disk never refused a write")
		resp := b.do(req{method: http.MethodPost, path: server.Prefix + "/instances?wait=5s", token: operatorKey,
			body: map[string]any{"definition": "approval", "input": map[string]any{"order": "during-" + strconv.Itoa(i),
				"pad": strings.Repeat("x", 2000)}}})
		switch resp.status {
		case http.StatusCreated:
			var inst waymark.Instance
			resp.decode(t, &inst)
			committed[inst.ID] = true
		default:
			e := resp.requireError(t, http.StatusInsufficientStorage, server.CodeNoSpace)
			require.Contains(t, e.Error.Message, "no space left")
			require.Equal(t, "30", resp.header.Get("Retry-After"))
			refused++
		}
	}
	t.Logf("full disk: %d instances committed before and during the fault (the WAL had room for some), %d starts refused with 507", len(committed), refused)
	// A task completion meets the full disk too.
	task := b.openTaskOf(first)
	resp := b.do(req{method: http.MethodPost, path: server.Prefix + "/tasks/" + task + "/complete", token: financeKey,
		body: map[string]any{"outcome": "approved"}})
	require.Contains(t, []int{http.StatusOK, http.StatusInsufficientStorage}, resp.status, "%s", resp.body)
	completedDuring := resp.status == http.StatusOK
	// Reads go on.
	require.Equal(t, http.StatusOK, b.do(req{method: http.MethodGet, path: server.Prefix + "/instances", token: viewerKey}).status)

	// Space returns: the engine carries on.
	require.NoError(t, os.Remove(filler))
	inst, _ := b.start("hello", map[string]any{"name": "after"}, "?wait=10s", nil)
	require.Equal(t, store.InstanceCompleted, inst.Status)
	committed[inst.ID] = true
	if !completedDuring {
		resp = b.do(req{method: http.MethodPost, path: server.Prefix + "/tasks/" + task + "/complete", token: financeKey,
			body: map[string]any{"outcome": "approved"}})
		require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	}
	done, _ := b.instance(first, "?wait=10s")
	require.Equal(t, store.InstanceCompleted, done.Status)
	// Every instance committed during the fault reached its task.
	for id := range committed {
		got, _ := b.instance(id, "?wait=10s")
		require.Contains(t, []store.InstanceStatus{store.InstanceWaiting, store.InstanceCompleted}, got.Status, "%s", id)
	}

	// Reopen the file: every committed instance is there, intact.
	b.srv.Close()
	require.NoError(t, b.e.Stop(ctx))
	require.NoError(t, s.Close())
	closed = true
	checkCommitted(t, path, committed)

	// A read-only file system: the file does not open for writing, and
	// says why; once writable again, nothing is lost.
	require.NoError(t, exec.Command("mount", "-o", "remount,ro", dir).Run())
	_, err = sqlite.Open(ctx, path, nil)
	require.ErrorIs(t, err, store.ErrReadOnly)
	require.ErrorContains(t, err, "read-only")
	var stdout, stderr bytes.Buffer
	code := cli.Run(ctx, []string{"serve", "--insecure-dev", "--addr", "127.0.0.1:0", "--db", "sqlite://" + path}, nil, &stdout, &stderr)
	require.Equal(t, 1, code, "%s", stderr.String())
	require.Contains(t, stderr.String(), "the database is read-only")
	t.Logf("waymark serve on the read-only file system says: %s", strings.TrimSpace(stderr.String()))
	require.NoError(t, exec.Command("mount", "-o", "remount,rw", dir).Run())
	checkCommitted(t, path, committed)
}

// checkCommitted opens the file at path and requires every instance of ids
// with its input, waiting for its task or completed.
func checkCommitted(t *testing.T, path string, ids map[string]bool) {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path, nil)
	require.NoError(t, err)
	defer s.Close()
	for id := range ids {
		inst, err := s.InstanceGet(ctx, id)
		require.NoError(t, err, "instance %s", id)
		require.Contains(t, []store.InstanceStatus{store.InstanceWaiting, store.InstanceCompleted}, inst.Status, "%s", id)
		require.NotEmpty(t, inst.Input, "%s", id)
	}
}

// openTaskOf returns the open task of an instance.
func (b *testBundle) openTaskOf(instance string) string {
	b.t.Helper()
	var page waymark.Page[*waymark.UserTask]
	require.Eventually(b.t, func() bool {
		resp := b.do(req{method: http.MethodGet, path: server.Prefix + "/tasks?instance=" + instance, token: viewerKey})
		page = waymark.Page[*waymark.UserTask]{}
		resp.decode(b.t, &page)
		return len(page.Items) == 1
	}, 10*time.Second, 20*time.Millisecond)
	return page.Items[0].ID
}
