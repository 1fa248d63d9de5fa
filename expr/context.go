package expr

import (
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
)

// Context is the data expressions are evaluated against. Values are plain Go
// values as produced by encoding/json (map[string]any, []any, string,
// float64, bool, nil); other Go types CEL knows (ints, time.Time,
// time.Duration) are accepted too. Expressions see an integral float64 as a
// CEL int (see the package documentation). A Context is only read during
// evaluation.
type Context struct {
	// Input is the start input of the instance.
	Input any
	// Vars holds the instance variables.
	Vars map[string]any
	// Steps holds the outputs of completed activities by activity id.
	Steps map[string]any
	// StepsFunc, when Steps is nil, supplies it on the first use of steps:
	// an expression that does not use steps costs nothing.
	StepsFunc func() map[string]any
	// Instance describes the running instance.
	Instance Instance
	// Now is the evaluation time. When zero, expressions that use now fail
	// to evaluate: the engine's clock, not the wall clock, must supply it.
	Now time.Time
	// Task is set while completing a user task, nil otherwise.
	Task *Task
	// Message is the message being received by a receive activity, nil
	// otherwise.
	Message any
	// Secrets holds what secrets.NAME resolves to in an http request; the
	// engine sets placeholders here, never the secret values.
	Secrets map[string]any
	// Response is the response an http activity's response rules see, nil
	// otherwise.
	Response map[string]any
	// Iteration is the forEach iteration an activity runs in, seen as item
	// and index; nil outside a forEach body.
	Iteration *Iteration
	// Iterations is what a forEach's completion condition sees as
	// iterations: count, completed and results; nil otherwise.
	Iterations map[string]any
}

// Iteration is one iteration of a forEach.
type Iteration struct {
	Item  any
	Index int
}

// Instance is the instance expressions see as the variable instance.
type Instance struct {
	ID          string
	BusinessKey string
	Definition  string
	Version     int
}

// Task is the completion of a user task that expressions see as the
// variable task.
type Task struct {
	Outcome string
	Data    any
	User    string
}

// unset is what task and message resolve to where the engine has not set
// them: an error that says when the variable is available, rather than
// CEL's "no such attribute". It is built on every use because CEL labels an
// error value with the expression node it came from, in place.
func unset(name, when string) ref.Val {
	return types.NewErr("%s is only set %s", name, when)
}

// activation resolves CEL variables lazily from a Context, so a variable an
// expression does not use costs nothing.
type activation Context

var _ interpreter.Activation = (*activation)(nil)

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "input":
		return a.Input, true
	case "vars":
		if a.Vars == nil {
			return map[string]any{}, true
		}
		return a.Vars, true
	case "steps":
		if a.Steps == nil && a.StepsFunc != nil {
			a.Steps = a.StepsFunc()
		}
		if a.Steps == nil {
			return map[string]any{}, true
		}
		return a.Steps, true
	case "instance":
		return map[string]any{
			"id":          a.Instance.ID,
			"businessKey": a.Instance.BusinessKey,
			"definition":  a.Instance.Definition,
			"version":     int64(a.Instance.Version),
		}, true
	case "now":
		if a.Now.IsZero() {
			return nil, false
		}
		return a.Now.UTC(), true
	case "task":
		if a.Task == nil {
			return unset("task", "while completing a user task"), true
		}
		return map[string]any{
			"outcome": a.Task.Outcome,
			"data":    a.Task.Data,
			"user":    a.Task.User,
		}, true
	case "message":
		if a.Message == nil {
			return unset("message", "while receiving a message"), true
		}
		return a.Message, true
	case "secrets":
		if a.Secrets == nil {
			return unset("secrets", "in the request of an http activity"), true
		}
		return a.Secrets, true
	case "item", "index":
		if a.Iteration == nil {
			return unset(name, "in the body of a forEach"), true
		}
		if name == "index" {
			return int64(a.Iteration.Index), true
		}
		return a.Iteration.Item, true
	case "iterations":
		if a.Iterations == nil {
			return unset("iterations", "in the completionCondition of a forEach"), true
		}
		return a.Iterations, true
	case "response":
		if a.Response == nil {
			return unset("response", "in the response rules of an http activity"), true
		}
		return a.Response, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }
