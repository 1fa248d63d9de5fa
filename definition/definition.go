package definition

import (
	"encoding/json"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Definition is a parsed, validated and compiled workflow definition. It is
// immutable: callers must not modify it or the activities it holds.
type Definition struct {
	// ID is the stable key of the definition; deploys of the same ID get
	// versions 1, 2, ...
	ID string
	// Name is a human readable title.
	Name string
	// Description is free text.
	Description string
	// InputSchema is the JSON Schema of the start input as canonical JSON,
	// or nil when the definition declares none.
	InputSchema json.RawMessage
	// Timeout is the instance deadline, zero when unset.
	Timeout time.Duration
	// Defaults apply to every activity that does not override them.
	Defaults Defaults
	// Start is the id of the first activity: the start field, or the first
	// activity when start is omitted.
	Start string
	// Activities in source order.
	Activities []*Activity

	index       map[string]*Activity
	inputSchema *jsonschema.Schema
	hash        string
	// joinDepth is each join's fork depth (see JoinDepth).
	joinDepth map[string]int
	// scopes is set when the definition has a scope activity.
	scopes bool
}

// HasScopes reports whether the definition has a scope activity.
func (d *Definition) HasScopes() bool { return d.scopes }

// Defaults holds the definition-wide settings activities inherit.
type Defaults struct {
	// Retry is the retry policy of activities that can be retried; fields
	// left zero fall back to DefaultRetryPolicy.
	Retry RetryPolicy
	// SuspendAfterFailures is the number of consecutive failed attempts
	// after which the instance is suspended for manual intervention; zero
	// leaves the choice to the engine.
	SuspendAfterFailures int
}

// RetryPolicy controls how a failing activity is retried with exponential
// backoff. A zero field means "not set" and is inherited.
type RetryPolicy struct {
	// MaxAttempts counts the first attempt: 1 means no retry.
	MaxAttempts int
	// InitialInterval is the wait before the second attempt.
	InitialInterval time.Duration
	// BackoffCoefficient multiplies the wait after each attempt.
	BackoffCoefficient float64
	// MaxInterval caps the wait between attempts.
	MaxInterval time.Duration
}

// DefaultRetryPolicy is the policy used for every field neither the
// activity nor the definition defaults set.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		MaxAttempts:        3,
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaxInterval:        time.Minute,
	}
}

// merge returns p with its unset fields taken from fallback.
func (p RetryPolicy) merge(fallback RetryPolicy) RetryPolicy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = fallback.MaxAttempts
	}
	if p.InitialInterval == 0 {
		p.InitialInterval = fallback.InitialInterval
	}
	if p.BackoffCoefficient == 0 {
		p.BackoffCoefficient = fallback.BackoffCoefficient
	}
	if p.MaxInterval == 0 {
		p.MaxInterval = fallback.MaxInterval
	}
	return p
}

// ActivityType names the kind of an activity.
type ActivityType string

// The activity types of the definition language, version 1.
const (
	TypeTask        ActivityType = "task"
	TypeHTTP        ActivityType = "http"
	TypeUserTask    ActivityType = "userTask"
	TypeReceive     ActivityType = "receive"
	TypeTimer       ActivityType = "timer"
	TypeSwitch      ActivityType = "switch"
	TypeParallel    ActivityType = "parallel"
	TypeJoin        ActivityType = "join"
	TypeSet         ActivityType = "set"
	TypeEmit        ActivityType = "emit"
	TypeSubworkflow ActivityType = "subworkflow"
	TypeFail        ActivityType = "fail"
	TypeEnd         ActivityType = "end"
	TypeForEach     ActivityType = "forEach"
	TypeFirstOf     ActivityType = "firstOf"
	TypeScope       ActivityType = "scope"
)

// ActivityTypes lists every activity type in documentation order.
func ActivityTypes() []ActivityType {
	return []ActivityType{
		TypeTask, TypeHTTP, TypeUserTask, TypeReceive, TypeTimer, TypeSwitch, TypeParallel,
		TypeJoin, TypeSet, TypeEmit, TypeSubworkflow, TypeForEach, TypeFirstOf, TypeScope, TypeFail, TypeEnd,
	}
}

// IsWait reports whether an activity of this type waits for the outside
// world (a person, a message or the clock) and so creates a bookmark.
func (t ActivityType) IsWait() bool {
	return t == TypeUserTask || t == TypeReceive || t == TypeTimer
}

// Fields lists the fields an activity of this type accepts, or nil for an
// unknown type.
func (t ActivityType) Fields() []string {
	base := []string{"id", "type", "name"}
	var own []string
	switch t {
	case TypeTask:
		own = []string{"handler", "input", "next", "output", "compensate", "retry", "timeout", "onError", "boundary"}
	case TypeHTTP:
		own = []string{"request", "verify", "responses", "circuitBreaker", "next", "output", "compensate", "retry", "timeout", "onError", "boundary"}
	case TypeUserTask:
		own = []string{"title", "assignee", "candidateRoles", "outcomes", "form", "due", "onTimeout", "next", "output", "compensate", "boundary"}
	case TypeReceive:
		own = []string{"message", "correlation", "timeout", "onTimeout", "next", "output", "compensate", "boundary"}
	case TypeTimer:
		own = []string{"duration", "until", "next", "output"}
	case TypeSwitch:
		own = []string{"cases", "default", "inclusive", "output"}
	case TypeParallel:
		own = []string{"branches", "output"}
	case TypeJoin:
		own = []string{"next", "output"}
	case TypeSet:
		own = []string{"vars", "next", "output"}
	case TypeEmit:
		own = []string{"event", "payload", "next", "output", "compensate"}
	case TypeSubworkflow:
		own = []string{"definition", "version", "input", "timeout", "onTimeout", "onError", "next", "output", "compensate", "boundary"}
	case TypeFirstOf:
		own = []string{"branches", "output"}
	case TypeForEach:
		own = []string{"items", "body", "parallel", "maxConcurrency", "completionCondition", "next", "output", "onError"}
	case TypeScope:
		own = []string{"activities", "start", "next", "output", "compensate", "onError", "onCancel", "boundary"}
	case TypeFail:
		own = []string{"message", "error", "code"}
	case TypeEnd:
		own = []string{"terminate", "cancel"}
	default:
		return nil
	}
	return append(base, own...)
}

// Forks reports whether the activity starts several paths a join can
// close: a parallel, or an inclusive switch.
func (a *Activity) Forks() bool {
	return a.Type == TypeParallel || a.Type == TypeSwitch && a.Inclusive
}

// Activity is one node of the workflow graph. Only the fields of its Type
// are set; see the language guide for their meaning.
type Activity struct {
	// ID is unique within the definition.
	ID string
	// Type selects what the activity does.
	Type ActivityType
	// Name is a human readable title.
	Name string
	// Line is the line of the activity in the source.
	Line int
	// Parent is the id of the scope the activity belongs to, empty for an
	// activity of the top level. Transitions stay inside one region: the
	// activities of one scope (or of the top level) lead only to each
	// other.
	Parent string

	// Next is the activity that follows; empty means the path ends here.
	// A userTask keeps its transitions in OutcomeNext instead when it
	// declares outcomes.
	Next string
	// Output names the variable (vars.<Output>) the result is stored under.
	Output string
	// Compensate is the id of the activity that undoes this one.
	Compensate string
	// Retry overrides the definition's default retry policy field by field.
	Retry RetryPolicy
	// Timeout bounds one attempt of a task or http activity, and the wait of
	// a receive or subworkflow activity.
	Timeout time.Duration
	// OnError maps business error names to the activity to continue with;
	// the key "*" matches every business error not listed.
	OnError map[string]string
	// OnTimeout is the activity to continue with when a userTask is overdue
	// or a receive or subworkflow activity times out.
	OnTimeout string

	// Handler names the handler a task runs.
	Handler string
	// Input is the data passed to a task handler or to a subworkflow.
	Input *Value

	// Request is the call an http activity makes.
	Request *HTTPRequest
	// Verify is the optional request an http activity makes to learn the
	// outcome of an earlier attempt whose result is unknown.
	Verify *HTTPRequest
	// CircuitBreaker names the circuit breaker shared by every instance.
	CircuitBreaker string
	// Responses map chosen responses of an http activity to outcomes or
	// business errors; the first rule that matches applies.
	Responses []ResponseRule

	// Title of a user task.
	Title *Value
	// Assignee of a user task (a user id).
	Assignee *Value
	// CandidateRoles may complete a user task.
	CandidateRoles []string
	// Outcomes a user task may be completed with.
	Outcomes []string
	// OutcomeNext maps each outcome of a user task to the next activity.
	OutcomeNext map[string]string
	// Form is the JSON Schema of a user task's completion data, as
	// canonical JSON, or nil when the task declares none. Its titles and
	// enums let a dashboard render it as a form; ValidateForm checks
	// completion data against it.
	Form json.RawMessage
	// Due is how long a user task may stay open before OnTimeout applies.
	Due time.Duration

	// Message is the name of the message a receive activity waits for.
	Message string
	// Correlation selects which message of that name belongs to this
	// instance.
	Correlation *Value

	// Duration of a timer.
	Duration time.Duration
	// Until is the instant a timer fires at, as an RFC 3339 string.
	Until *Value

	// Cases of a switch, tried in order.
	Cases []Case
	// Default is the activity a switch continues with when no case matches.
	Default string
	// Terminate makes an end activity end the whole instance at once,
	// cancelling every other path, not only its own path.
	Terminate bool
	// TerminateCompensate makes a terminating end run the compensations of
	// the completed activities (latest first) before the instance ends.
	TerminateCompensate bool
	// Cancel is the scope an end activity cancels: an enclosing scope, or a
	// scope of the end's own region. Everything still running or waiting
	// inside it is cancelled in the same step, its completed activities
	// are compensated, and it goes on with its OnCancel.
	Cancel string

	// Start is the first activity of a scope's sub-graph: its start field,
	// or its first activity.
	Start string
	// Inner lists the ids of a scope's own activities, in source order
	// (not those of scopes nested in it).
	Inner []string
	// OnCancel is the activity a scope continues with when a cancel end
	// cancels it; empty ends its path.
	OnCancel string

	// Inclusive makes a switch take every case that matches, at once (a
	// fork of the matching cases that a join closes), not only the first.
	Inclusive bool

	// Branches a parallel activity starts; for a firstOf, the waits
	// (userTask, receive, timer) of which the first to finish wins.
	Branches []string

	// Vars a set activity assigns, in the order written. The engine
	// assigns them one after the other: each value sees the variables
	// assigned before it in the same activity.
	Vars []VarAssign

	// Event is the type of the event an emit activity writes to the outbox.
	Event string
	// Payload of the event.
	Payload *Value

	// Definition is the id of the definition a subworkflow starts.
	Definition string
	// Version of that definition; zero means the latest.
	Version int

	// Items a forEach runs its body for: an expression that evaluates to a
	// list.
	Items *Value
	// Body is the activity a forEach runs once per item, seeing item and
	// index; its result is collected, it has no next of its own.
	Body string
	// Parallel runs a forEach's iterations at once (at most MaxConcurrency
	// of them when that is set); otherwise one after the other.
	Parallel bool
	// MaxConcurrency bounds the iterations of a parallel forEach that run
	// at once; zero means no bound.
	MaxConcurrency int
	// CompletionCondition ends a forEach early once it holds, cancelling
	// the iterations still running; it sees iterations (count,
	// completed, results).
	CompletionCondition *Value

	// Boundary events of an activity that waits (task, http, userTask,
	// receive, subworkflow): timers that, while it runs or waits, cancel
	// it and take their own path (interrupting), or start a path beside
	// it (non-interrupting, possibly repeating).
	Boundary []BoundaryEvent

	// ErrorMessage of a fail activity.
	ErrorMessage *Value
	// ErrorCode of a fail activity, machine readable.
	ErrorCode string

	formSchema *jsonschema.Schema
}

// BoundaryEvent is a timer or a message attached to an activity.
type BoundaryEvent struct {
	// Message is the name of the message that fires the event, with
	// Correlation; empty for a timer.
	Message     string
	Correlation *Value
	// After is how long after the activity starts the timer fires.
	After time.Duration
	// At is when it fires instead: an expression giving a timestamp.
	At *Value
	// Every repeats a non-interrupting timer at this interval after its
	// first firing, for as long as the activity lasts.
	Every time.Duration
	// Interrupting cancels the activity when the timer fires (the
	// default); otherwise the activity stays and a path starts beside it.
	Interrupting bool
	// Next is the activity the timer's path starts with.
	Next string
	// Line is the line of the event in the source.
	Line int
}

// HTTPRequest describes an outgoing HTTP call.
type HTTPRequest struct {
	// Method in upper case; defaults to GET.
	Method string
	// URL must evaluate to an absolute http or https URL.
	URL *Value
	// Headers by name; each value evaluates to a string.
	Headers map[string]*Value
	// Query parameters by name, added to the URL's; each value evaluates
	// to a string or a number.
	Query map[string]*Value
	// Body is sent as JSON; nil for no body.
	Body *Value
}

// ResponseRule maps responses of an http activity: those with one of the
// Status codes (any status when empty) for which When holds (always when
// nil) either complete the activity with Outcome, continuing with Next
// (the activity's next when empty), or fail it with the business error
// Error, which the activity's onError routes.
type ResponseRule struct {
	Status  []int
	When    *Value
	Outcome string
	Error   string
	Next    string
}

// VarAssign is one variable a set activity assigns.
type VarAssign struct {
	// Name of the variable, vars.<Name> in expressions.
	Name string
	// Value is evaluated and stored under Name.
	Value *Value
}

// Case is one branch of a switch.
type Case struct {
	// When evaluates to a bool.
	When *Value
	// Next is the activity taken when When is true.
	Next string
}

// Activity returns the activity with the given id, or nil.
func (d *Definition) Activity(id string) *Activity {
	return d.index[id]
}

// StartActivity returns the activity an instance starts with.
func (d *Definition) StartActivity() *Activity {
	return d.index[d.Start]
}

// Hash returns the hex SHA-256 of the canonical form of the definition.
func (d *Definition) Hash() string {
	return d.hash
}

// RetryPolicy returns the effective retry policy of a: its own fields,
// then the definition defaults, then DefaultRetryPolicy.
func (d *Definition) RetryPolicy(a *Activity) RetryPolicy {
	return a.Retry.merge(d.Defaults.Retry).merge(DefaultRetryPolicy())
}

// NextFor returns the activity that follows a user task completed with
// outcome, or the activity's Next for other types and for user tasks
// without declared outcomes. An empty result means the path ends.
func (a *Activity) NextFor(outcome string) string {
	if len(a.OutcomeNext) > 0 {
		return a.OutcomeNext[outcome]
	}
	return a.Next
}

// ErrorTarget returns the activity that handles the business error name, or
// "" when the activity does not handle it.
func (a *Activity) ErrorTarget(name string) string {
	if to, ok := a.OnError[name]; ok {
		return to
	}
	return a.OnError["*"]
}
