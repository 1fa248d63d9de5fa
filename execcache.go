package waymark

import (
	"sync"

	"github.com/waymarkdev/waymark/store"
)

// The committed state of running instances is cached between steps: the
// instance record and its executions, as this engine's last commit of the
// instance left them. A step that finds its instance here reads nothing:
// every step that changes an execution writes the instance too, with its
// version checked, and a step that changes nothing asserts the version it
// read (see instState.write). So a cached state that another engine (or
// process) has moved on from costs a retry, never a wrong result: the
// step fails with store.ErrStale and runs again on what the database says.
// A claim returns the version its instance had (WorkItem.InstanceVersion),
// so an engine forgets a cached state older than that before running the
// item, rather than spending a try on it (see forgetOlder).
//
// A forEach over 10,000 items would otherwise read all its executions in
// every one of its steps; a three-task workflow would read its instance
// and executions twice per task.
const (
	// stateCacheMax bounds how many instances the cache holds.
	stateCacheMax = 8192
	// stateCacheExecs bounds the executions it holds in all.
	stateCacheExecs = 500_000
)

type stateCache struct {
	mu    sync.Mutex
	m     map[string]cachedState
	execs int // executions held
}

type cachedState struct {
	inst  *store.Instance            // never changed once cached
	execs []*store.ActivityExecution // never changed once cached
}

// get returns copies of the cached record and executions of instance id.
func (c *stateCache) get(id string) (*store.Instance, []*store.ActivityExecution, bool) {
	c.mu.Lock()
	cs, ok := c.m[id]
	c.mu.Unlock()
	if !ok {
		return nil, nil, false
	}
	inst := *cs.inst
	out := make([]*store.ActivityExecution, len(cs.execs))
	for i, r := range cs.execs {
		cp := *r // the step changes its copy; JSON fields are replaced, not edited
		out[i] = &cp
	}
	return &inst, out, true
}

// execsAt returns copies of the cached executions of instance id if the
// cache holds it at version.
func (c *stateCache) execsAt(id string, version int64) ([]*store.ActivityExecution, bool) {
	c.mu.Lock()
	cs, ok := c.m[id]
	c.mu.Unlock()
	if !ok || cs.inst.Version != version {
		return nil, false
	}
	_, execs, _ := c.get(id)
	return execs, execs != nil
}

// put remembers committed instance states; finished instances leave.
func (c *stateCache) put(states []*instState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range states {
		if cs, ok := c.m[s.inst.ID]; ok && cs.inst.Version > s.inst.Version {
			continue // a later commit of the instance got here first
		}
		c.dropLocked(s.inst.ID)
		if s.status.Finished() || len(s.execs) > stateCacheExecs/4 {
			continue
		}
		if c.m == nil {
			c.m = map[string]cachedState{}
		}
		for id := range c.m { // make room: any ones go
			if len(c.m) < stateCacheMax && c.execs+len(s.execs) <= stateCacheExecs {
				break
			}
			c.dropLocked(id)
		}
		recs := make([]*store.ActivityExecution, len(s.execs))
		for i, x := range s.execs {
			recs[i] = x.rec
		}
		inst := *s.inst
		c.m[s.inst.ID] = cachedState{inst: &inst, execs: recs}
		c.execs += len(recs)
	}
}

// forgetOlder forgets instance id if the cache holds it at a version
// below version: another engine (or process) has moved it on since.
func (c *stateCache) forgetOlder(id string, version int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs, ok := c.m[id]; ok && cs.inst.Version < version {
		c.dropLocked(id)
	}
}

// drop forgets instances (their step failed: what it read may be stale).
func (c *stateCache) drop(states []*instState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range states {
		c.dropLocked(s.inst.ID)
	}
}

func (c *stateCache) dropLocked(id string) {
	if cs, ok := c.m[id]; ok {
		c.execs -= len(cs.execs)
		delete(c.m, id)
	}
}

// lookup returns copies of the cached record of instance id and of its
// execution executionID.
func (c *stateCache) lookup(id, executionID string) (*store.Instance, *store.ActivityExecution, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs, ok := c.m[id]
	if !ok {
		return nil, nil, false
	}
	for _, r := range cs.execs {
		if r.ID == executionID {
			inst, x := *cs.inst, *r
			return &inst, &x, true
		}
	}
	return nil, nil, false
}
