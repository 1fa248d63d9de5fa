// Package service is what Waymark's background services share: the
// health each reports (to /readyz and the diagnostics), and a Group that
// starts and stops several of them within a bounded time.
//
// A service (the outbox dispatcher, the cleanup service, …) has validated
// options with documented defaults, a Start that returns at once, a Stop
// that returns once its goroutines have ended (or its context ends), and
// a Health that never blocks.
package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Health is a service's own account of itself.
type Health struct {
	// Name names the service ("dispatcher", "cleanup", …).
	Name string `json:"name"`
	// Running is true between Start and Stop.
	Running bool `json:"running"`
	// OK is false when the service cannot do its work (its last run
	// failed, or it is stuck).
	OK bool `json:"ok"`
	// LastRun is when the service last finished a round of work
	// (zero: never).
	LastRun time.Time `json:"lastRun,omitzero"`
	// Error is the last run's error, if it failed.
	Error string `json:"error,omitempty"`
	// Leader is true for a service that runs on one server at a time and
	// holds its lease here.
	Leader bool `json:"leader,omitempty"`
	// Detail holds figures particular to the service.
	Detail map[string]any `json:"detail,omitempty"`
}

// Service is a background service.
type Service interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Health() Health
}

// Group runs several services as one.
type Group struct {
	mu       sync.Mutex
	services []Service
	started  int
}

// Add appends services to the group (before Start).
func (g *Group) Add(s ...Service) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.services = append(g.services, s...)
}

// Start starts every service in order. If one fails, those already started
// are stopped again and the error is returned.
func (g *Group) Start(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, s := range g.services {
		if err := s.Start(ctx); err != nil {
			for j := i - 1; j >= 0; j-- {
				_ = g.services[j].Stop(context.WithoutCancel(ctx))
			}
			return fmt.Errorf("start %s: %w", s.Health().Name, err)
		}
	}
	g.started = len(g.services)
	return nil
}

// Stop stops the started services in reverse order, all at once, and
// waits for them, at most until ctx ends.
func (g *Group) Stop(ctx context.Context) error {
	g.mu.Lock()
	started := g.services[:g.started]
	g.started = 0
	g.mu.Unlock()
	errs := make([]error, len(started))
	var wg sync.WaitGroup
	for i, s := range started {
		wg.Go(func() {
			if err := s.Stop(ctx); err != nil {
				errs[i] = fmt.Errorf("stop %s: %w", s.Health().Name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Health returns the health of every service in the group.
func (g *Group) Health() []Health {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Health, len(g.services))
	for i, s := range g.services {
		out[i] = s.Health()
	}
	return out
}
