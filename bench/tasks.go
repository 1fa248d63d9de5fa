package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waymarkdev/waymark"
)

// benchUser completes the tasks of the tasks workload.
const benchUser = "waymark-bench"

// tasksWorkload opens Tasks user tasks, then completes them all through
// Engine.CompleteTask from Concurrency goroutines.
func tasksWorkload() *workload {
	return &workload{
		metrics: []metricSpec{{"tasks/s", UnitPerSecond}, {"created/s", UnitPerSecond}, {metricWall, UnitSeconds}},
		rate:    "tasks/s",
		params:  func(c *Config) map[string]any { return map[string]any{"tasks": c.Tasks} },
		run:     onFreshStore((*runner).tasks),
	}
}

func (r *runner) tasks(ctx context.Context, s *freshStore) (_ *Sample, err error) {
	n := r.cfg.Tasks
	var (
		mu        sync.Mutex
		taskIDs   []string
		badEvent  error
		completed atomic.Int64
	)
	created, w := make(chan struct{}), newWatch()
	e, err := r.newEngine(s, 0, nil, func(ev waymark.Event) {
		w.observe(ev)
		switch ev.Type {
		case waymark.EventTaskCreated:
			id, ok := ev.Data["taskId"].(string)
			mu.Lock()
			defer mu.Unlock()
			if !ok {
				badEvent = fmt.Errorf("task.created of instance %s has no taskId: %v", ev.InstanceID, ev.Data)
				return
			}
			if taskIDs = append(taskIDs, id); len(taskIDs) == n {
				close(created)
			}
		case waymark.EventInstanceCompleted:
			completed.Add(1)
		}
	})
	if err != nil {
		return nil, err
	}
	if err := deployAndStart(ctx, e, tasksYAML()); err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, stopEngine(ctx, e)) }()

	// Open the tasks.
	var opened atomic.Int64
	stop := r.track("create", int64(n), opened.Load)
	began := time.Now()
	err = parallel(ctx, n, r.cfg.Concurrency, func(ctx context.Context, _ int) error {
		if _, err := e.StartInstance(ctx, &waymark.StartParams{Definition: tasksDef}); err != nil {
			return fmt.Errorf("start instance: %w", err)
		}
		opened.Add(1)
		return nil
	})
	if err == nil {
		err = r.await(ctx, created, w, func() string {
			mu.Lock()
			defer mu.Unlock()
			return fmt.Sprintf("%d of %d tasks created", len(taskIDs), n)
		})
	}
	createWall := time.Since(began)
	stop()
	mu.Lock()
	ids := taskIDs
	err = errors.Join(err, badEvent)
	mu.Unlock()
	if err != nil {
		return nil, err
	}

	// Complete them.
	var done atomic.Int64
	stop = r.track("complete", int64(n), done.Load)
	began = time.Now()
	err = parallel(ctx, n, r.cfg.Concurrency, func(ctx context.Context, i int) error {
		if _, err := e.CompleteTask(ctx, ids[i], &waymark.CompleteTaskParams{User: benchUser, Admin: true}); err != nil {
			return fmt.Errorf("complete task %s: %w", ids[i], err)
		}
		done.Add(1)
		return nil
	})
	wall := time.Since(began)
	stop()
	if err != nil {
		return nil, err
	}
	// Each completion commits the step that completes its instance, and
	// OnEvent runs before CompleteTask returns.
	if got := completed.Load(); got != int64(n) {
		return nil, fmt.Errorf("%d tasks completed but %d of %d instances", n, got, n)
	}
	return &Sample{
		Wall: wall, Databases: []string{s.location},
		Counts: map[string]int64{"tasks": done.Load(), "instances": completed.Load()},
		Values: map[string]float64{
			"tasks/s": perSecond(n, wall), "created/s": perSecond(n, createWall), metricWall: wall.Seconds(),
		},
	}, nil
}
