package cli

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/waymarkdev/waymark/client"
	"github.com/waymarkdev/waymark/outbox"
	"github.com/waymarkdev/waymark/store"
)

func newOutboxCommand(e *env) *cobra.Command {
	var f apiFlags
	var q client.OutboxQuery
	var status string
	cmd := &cobra.Command{
		Use:   "outbox",
		Short: "List dead letters and other undelivered events; show, replay; the backlog per sink",
		Long: `List the events a sink could not deliver: dead (given up after its attempts, or
refused permanently), retry (waiting for its next attempt) or held (waiting
behind an earlier event of its instance on that sink). --status dead lists the
dead letters. "outbox show ID" prints one event with its attempt history,
"outbox replay" sends dead events again (same ids), "outbox stats" prints each
sink's backlog and lag. --json prints the API's answers.`,
		Example: `  waymark outbox --status dead
  waymark outbox --status dead --sink crm --type 'instance.*'
  waymark outbox show 01J8…
  waymark outbox replay 01J8…
  waymark outbox replay --sink crm --type order.placed
  waymark outbox stats`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			q.Status = store.DeliveryState(status)
			if err := q.Filter.Validate(); err != nil {
				return &usageError{cmd: cmd, msg: err.Error()}
			}
			c, err := f.connect(cmd, e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			page, err := c.Outbox(ctx, q)
			if err != nil {
				return c.fail(ctx, "outbox", err)
			}
			if c.json {
				return writeJSON(e.stdout, page)
			}
			tbl := newTable(e.stdout, "EVENT", "TYPE", "INSTANCE", "SINK", "STATUS", "ATTEMPTS", "LAST ERROR")
			for _, p := range page.Items {
				tbl.row(p.ID, p.Type, p.InstanceID, p.Sink, string(p.Status), strconv.Itoa(p.Attempts), p.LastError)
			}
			if err := tbl.flush(); err != nil {
				return err
			}
			if page.Next != "" {
				fmt.Fprintf(e.stderr, "more: --cursor %s\n", page.Next)
			}
			return nil
		},
	}
	addAPIFlags(cmd, &f)
	fl := cmd.Flags()
	fl.StringVar(&status, "status", "", "dead, retry or held (default: all)")
	fl.StringVar(&q.Sink, "sink", "", "only this sink's")
	fl.StringVar(&q.Type, "type", "", "an event type, or a pattern such as 'instance.*'")
	fl.StringVar(&q.InstanceID, "instance", "", "only this instance's events")
	fl.IntVar(&q.Limit, "limit", 0, "page size (default 100)")
	fl.StringVar(&q.Cursor, "cursor", "", "the next page's cursor, as printed")
	cmd.AddCommand(newOutboxShowCommand(e), newOutboxReplayCommand(e), newOutboxStatsCommand(e))
	return cmd
}

func newOutboxShowCommand(e *env) *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{
		Use:     "show EVENT_ID",
		Short:   "Show an event and its delivery attempts on every sink that parked it",
		Example: `  waymark outbox show 01J8…`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.connect(cmd, e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			ev, err := c.OutboxEvent(ctx, args[0])
			if err != nil {
				return c.fail(ctx, "event "+args[0], err)
			}
			if c.json {
				return writeJSON(e.stdout, ev)
			}
			fmt.Fprintf(e.stdout, "event     %s\ntype      %s\ninstance  %s\noccurred  %s\ndata      %s\n",
				ev.ID, ev.Type, ev.InstanceID, when(&ev.OccurredAt), compactJSON(ev.Data))
			if len(ev.Deliveries) == 0 {
				fmt.Fprintln(e.stdout, "delivered, or not reached yet, on every sink")
				return nil
			}
			for _, d := range ev.Deliveries {
				fmt.Fprintf(e.stdout, "\nsink %s: %s after %d attempts", d.Sink, d.Status, d.Attempts)
				if d.NextAttemptAt != nil {
					fmt.Fprintf(e.stdout, ", next at %s", when(d.NextAttemptAt))
				}
				fmt.Fprintln(e.stdout)
				for _, h := range d.History {
					fmt.Fprintf(e.stdout, "  %s  %s\n", when(&h.At), h.Error)
				}
			}
			return nil
		},
	}
	addAPIFlags(cmd, &f)
	return cmd
}

func newOutboxReplayCommand(e *env) *cobra.Command {
	var f apiFlags
	var rf client.ReplayFilter
	var before string
	cmd := &cobra.Command{
		Use:   "replay [EVENT_ID]",
		Short: "Send dead events again: one by id, or those a filter selects",
		Long: `Move dead events back to retry: their attempts start again, their ids stay, and
the events of the same instance held behind them follow in order. Give an event
id, or filter flags; --all replays every dead event.`,
		Example: `  waymark outbox replay 01J8…
  waymark outbox replay --sink crm --type 'order.*'
  waymark outbox replay --all`,
		Args: argsRange(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if before != "" {
				t, err := time.Parse(time.RFC3339, before)
				if err != nil {
					return &usageError{cmd: cmd, msg: "--before: want an RFC 3339 time, such as 2026-01-02T15:04:05Z"}
				}
				rf.Before = t
			}
			filtered := rf != (client.ReplayFilter{})
			switch {
			case len(args) == 1 && filtered:
				return &usageError{cmd: cmd, msg: "give an event id or filter flags, not both"}
			case len(args) == 0 && !filtered:
				return &usageError{cmd: cmd, msg: "give an event id, filter flags, or --all"}
			}
			if err := (&outbox.Filter{Sink: rf.Sink, Type: rf.Type}).Validate(); err != nil {
				return &usageError{cmd: cmd, msg: err.Error()}
			}
			c, err := f.connect(cmd, e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var n int
			if len(args) == 1 {
				n, err = c.ReplayEvent(ctx, args[0])
			} else {
				n, err = c.ReplayEvents(ctx, rf)
			}
			if err != nil {
				return c.fail(ctx, "replay", err)
			}
			if c.json {
				return writeJSON(e.stdout, map[string]int{"replayed": n})
			}
			fmt.Fprintf(e.stdout, "replayed %d dead event(s)\n", n)
			return nil
		},
	}
	addAPIFlags(cmd, &f)
	fl := cmd.Flags()
	fl.StringVar(&rf.Sink, "sink", "", "only this sink's")
	fl.StringVar(&rf.Type, "type", "", "an event type, or a pattern such as 'instance.*'")
	fl.StringVar(&rf.Instance, "instance", "", "only this instance's events")
	fl.StringVar(&before, "before", "", "only events that occurred before this RFC 3339 time")
	fl.BoolVar(&rf.All, "all", false, "every dead event")
	return cmd
}

func newOutboxStatsCommand(e *env) *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{
		Use:     "stats",
		Short:   "Each sink's delivery backlog: pending, lag, retrying, held, dead",
		Example: `  waymark outbox stats`,
		Args:    noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.connect(cmd, e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := c.OutboxStats(ctx)
			if err != nil {
				return c.fail(ctx, "outbox stats", err)
			}
			if c.json {
				return writeJSON(e.stdout, map[string]any{"items": st})
			}
			tbl := newTable(e.stdout, "SINK", "PENDING", "LAG", "RETRYING", "HELD", "DEAD")
			for _, s := range st {
				tbl.row(s.Sink, strconv.FormatInt(s.Pending, 10), s.Lag.Round(time.Millisecond).String(),
					strconv.FormatInt(s.Retrying, 10), strconv.FormatInt(s.Held, 10), strconv.FormatInt(s.Dead, 10))
			}
			return tbl.flush()
		},
	}
	addAPIFlags(cmd, &f)
	return cmd
}
