package definition

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/waymarkdev/waymark/expr"
)

// FuzzParse feeds arbitrary sources to Parse: it must never panic or hang,
// must return either a definition or a *ValidationError with problems, and
// a definition it returns must hash deterministically and evaluate its
// values without panicking.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"valid", "invalid"} {
		for _, file := range testdataFiles(f, dir) {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("id: x\nactivities: [{id: a, type: end}]\n"))
	f.Add([]byte(`{"id":"x","activities":[{"id":"a","type":"set","vars":{"v":"${ [1,2].map(x, x * 2) }"},"next":"a"}]}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		def, err := Parse(data)
		if elapsed := time.Since(start); elapsed > 10*time.Second {
			t.Fatalf("Parse took %s", elapsed)
		}
		if err != nil {
			var verr *ValidationError
			if !errors.As(err, &verr) || len(verr.Problems) == 0 || def != nil {
				t.Fatalf("want a *ValidationError with problems and no definition, got %v, %T", def, err)
			}
			return
		}
		if def == nil || def.StartActivity() == nil {
			t.Fatal("valid definition without a start activity")
		}
		again, err := Parse(data)
		if err != nil || again.Hash() != def.Hash() {
			t.Fatalf("second parse differs: %v", err)
		}
		_ = def.Edges()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c := &expr.Context{
			Input: map[string]any{"amount": 5.0, "employee": "ada"},
			Vars:  map[string]any{"region": "eu"},
			Now:   time.Unix(1_700_000_000, 0),
		}
		for _, a := range def.Activities {
			for _, v := range activityValues(a) {
				out, err := v.Eval(ctx, c)
				if err != nil {
					continue
				}
				if _, err := json.Marshal(out); err != nil {
					t.Fatalf("result of %v cannot be marshalled: %v", v.Raw(), err)
				}
			}
		}
	})
}

// activityValues lists every Value an activity holds.
func activityValues(a *Activity) []*Value {
	out := []*Value{a.Input, a.Title, a.Assignee, a.Correlation, a.Until, a.Payload, a.ErrorMessage}
	for _, r := range []*HTTPRequest{a.Request, a.Verify} {
		if r == nil {
			continue
		}
		out = append(out, r.URL, r.Body)
		for _, h := range r.Headers {
			out = append(out, h)
		}
	}
	for _, c := range a.Cases {
		out = append(out, c.When)
	}
	for _, v := range a.Vars {
		out = append(out, v.Value)
	}
	return out
}
