package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/waymarkdev/waymark"
)

// fanoutWorkload runs one instance whose parallel starts FanoutBranches
// no-op tasks that meet in one join.
func fanoutWorkload() *workload {
	return &workload{
		metrics: []metricSpec{
			{"to join", UnitMillis}, {"to completion", UnitMillis}, {"branches/s", UnitPerSecond},
			{"start tx", UnitMillis}, {metricWall, UnitSeconds},
		},
		rate: "branches/s",
		params: func(c *Config) map[string]any {
			return map[string]any{"branches": c.FanoutBranches, "workers": max(c.Concurrency, 16)}
		},
		run: onFreshStore((*runner).fanout),
	}
}

func (r *runner) fanout(ctx context.Context, s *freshStore) (_ *Sample, err error) {
	n := r.cfg.FanoutBranches
	var (
		branches       atomic.Int64
		joinAt, doneAt atomic.Pointer[time.Time]
	)
	done, w := make(chan struct{}), newWatch()
	e, err := r.newEngine(s, max(r.cfg.Concurrency, 16), []string{noopHandler}, func(ev waymark.Event) {
		w.observe(ev)
		now := time.Now()
		switch {
		case ev.Type == waymark.EventActivityCompleted && ev.ActivityID == joinActivity:
			joinAt.Store(&now)
		case ev.Type == waymark.EventActivityCompleted && isBranch(ev.ActivityID):
			branches.Add(1)
		case ev.Type == waymark.EventInstanceCompleted:
			doneAt.Store(&now)
			close(done)
		}
	})
	if err != nil {
		return nil, err
	}
	if err := deployAndStart(ctx, e, fanoutYAML(n)); err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, stopEngine(ctx, e)) }()

	stop := r.track("complete", int64(n), branches.Load)
	began := time.Now()
	_, err = e.StartInstance(ctx, &waymark.StartParams{Definition: fanoutDef})
	startTx := time.Since(began)
	if err != nil {
		err = fmt.Errorf("start instance: %w", err)
	} else {
		err = r.await(ctx, done, w, func() string { return fmt.Sprintf("%d of %d branches completed", branches.Load(), n) })
	}
	stop()
	if err != nil {
		return nil, err
	}
	if joinAt.Load() == nil || branches.Load() != int64(n) {
		return nil, fmt.Errorf("the instance completed after %d of %d branches, join completed: %t",
			branches.Load(), n, joinAt.Load() != nil)
	}
	toJoin, toDone := joinAt.Load().Sub(began), doneAt.Load().Sub(began)
	return &Sample{
		Wall: toDone, Databases: []string{s.location},
		Counts: map[string]int64{"branches": branches.Load()},
		Values: map[string]float64{
			"to join": millis(toJoin), "to completion": millis(toDone), "branches/s": perSecond(n, toJoin),
			"start tx": millis(startTx), metricWall: toDone.Seconds(),
		},
	}, nil
}

// isBranch tells a fanout branch's activity id (b1, b2, …).
func isBranch(activityID string) bool {
	return len(activityID) > 1 && activityID[0] == 'b'
}
