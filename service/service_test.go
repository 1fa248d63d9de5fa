package service_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waymarkdev/waymark/service"
)

type fake struct {
	name     string
	log      *[]string
	startErr error
	stopWait time.Duration
}

func (f *fake) Start(context.Context) error {
	if f.startErr != nil {
		return f.startErr
	}
	*f.log = append(*f.log, "start "+f.name)
	return nil
}

func (f *fake) Stop(ctx context.Context) error {
	select {
	case <-time.After(f.stopWait):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fake) Health() service.Health { return service.Health{Name: f.name, OK: true} }

func TestGroupStartsInOrderAndStopsWithinTheDeadline(t *testing.T) {
	var log []string
	var g service.Group
	g.Add(&fake{name: "a", log: &log}, &fake{name: "b", log: &log, stopWait: time.Hour})
	require.NoError(t, g.Start(context.Background()))
	require.Equal(t, []string{"start a", "start b"}, log)
	require.Equal(t, []service.Health{{Name: "a", OK: true}, {Name: "b", OK: true}}, g.Health())

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	began := time.Now()
	err := g.Stop(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "stop b")
	require.Less(t, time.Since(began), time.Second, "bounded by the context")
}

func TestGroupStartFailureStopsTheStartedOnes(t *testing.T) {
	var log []string
	var g service.Group
	g.Add(&fake{name: "a", log: &log}, &fake{name: "b", log: &log, startErr: errors.New("bad option")})
	err := g.Start(context.Background())
	require.ErrorContains(t, err, "start b: bad option")
	require.NoError(t, g.Stop(context.Background()), "nothing left running")
}
