package waymark

import (
	"sync"

	"github.com/waymarkdev/waymark/store"
)

// Executions of large instances are cached between steps. Every step that
// writes an execution writes its instance too (bumping the instance's
// version), so the executions an instance had at version v are the same
// for every reader: a step that reads the instance at a version the cache
// holds takes the executions from it instead of reading thousands of rows
// (a forEach over 10,000 items would otherwise read them all in every one
// of its steps). Another engine's step changes the version: the cache
// misses and the rows are read.
const (
	// execCacheMin is the smallest instance, in executions, worth caching.
	execCacheMin = 200
	// execCacheMax bounds how many instances the cache holds.
	execCacheMax = 64
)

type execCache struct {
	mu sync.Mutex
	m  map[string]cachedExecs
}

type cachedExecs struct {
	version int64
	recs    []*store.ActivityExecution // never changed once cached
}

// get returns copies of the executions of instance id at version, or false.
func (c *execCache) get(id string, version int64) ([]*store.ActivityExecution, bool) {
	c.mu.Lock()
	ce, ok := c.m[id]
	c.mu.Unlock()
	if !ok || ce.version != version {
		return nil, false
	}
	out := make([]*store.ActivityExecution, len(ce.recs))
	for i, r := range ce.recs {
		cp := *r // the step changes its copy; JSON fields are replaced, not edited
		out[i] = &cp
	}
	return out, true
}

// put remembers the executions of committed instance states.
func (c *execCache) put(states []*instState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range states {
		if len(s.execs) < execCacheMin || s.status.Finished() {
			delete(c.m, s.inst.ID)
			continue
		}
		if c.m == nil {
			c.m = map[string]cachedExecs{}
		}
		if _, ok := c.m[s.inst.ID]; !ok && len(c.m) >= execCacheMax {
			for id := range c.m { // make room: any one goes
				delete(c.m, id)
				break
			}
		}
		recs := make([]*store.ActivityExecution, len(s.execs))
		for i, x := range s.execs {
			recs[i] = x.rec
		}
		c.m[s.inst.ID] = cachedExecs{version: s.inst.Version, recs: recs}
	}
}
