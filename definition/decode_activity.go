package definition

import (
	"net/url"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/waymarkdev/waymark/expr"
)

var headerNamePattern = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// activityDecoder decodes the fields of one activity whose type is known
// to accept them, then checks the fields that depend on each other.
type activityDecoder struct {
	p    *parser
	s    *scope
	a    *Activity
	line int

	nextMap      *yaml.Node // userTask next given as outcome -> id
	nextMapLines map[string]int
	outcomesNode *yaml.Node
	messageSeen  bool // fail: message or error given
	// set holds the line of every field given.
	set map[string]int
	// inner is a scope's list of activities, decoded after the scope.
	inner *yaml.Node
}

func (d *activityDecoder) field(key string, keyNode, v *yaml.Node) {
	p, s, a := d.p, d.s, d.a
	if d.set == nil {
		d.set = map[string]int{}
	}
	d.set[key] = keyNode.Line
	switch key {
	case "name":
		a.Name = p.text(s, key, v)
	case "next":
		if r := p.resolve(v); r != nil && r.Kind == yaml.MappingNode && a.Type == TypeUserTask {
			d.decodeOutcomeNext(r)
			return
		}
		a.Next = d.target(key, v, EdgeNext)
	case "output":
		a.Output = p.pattern(s, key, v, identifierPattern,
			"variable name (letters, digits and '_', not starting with a digit)")
	case "compensate":
		a.Compensate = d.target(key, v, EdgeCompensate)
	case "retry":
		a.Retry = p.decodeRetry(s.sub(key), v)
	case "timeout":
		a.Timeout = p.duration(s, key, v)
	case "onError":
		d.decodeOnError(v)
	case "onTimeout":
		a.OnTimeout = d.target(key, v, EdgeTimeout)
	case "handler":
		a.Handler = p.name(s, key, v)
	case "input":
		a.Input = p.value(s, key, v, expr.KindAny)
	case "request":
		a.Request = d.decodeRequest(key, v)
	case "verify":
		a.Verify = d.decodeRequest(key, v)
	case "circuitBreaker":
		a.CircuitBreaker = p.name(s, key, v)
	case "responses":
		d.decodeResponses(v)
	case "title":
		a.Title = p.value(s, key, v, expr.KindString)
	case "assignee":
		a.Assignee = p.value(s, key, v, expr.KindString)
	case "candidateRoles":
		a.CandidateRoles = p.names(s, key, v)
	case "outcomes":
		d.outcomesNode = v
		a.Outcomes = p.names(s, key, v)
	case "form":
		a.Form, a.formSchema = p.decodeSchema(s, key, v, formSchemaURL)
	case "due":
		a.Due = p.duration(s, key, v)
	case "message", "error":
		if a.Type != TypeFail {
			a.Message = p.name(s, key, v)
			return
		}
		if d.messageSeen {
			s.add(key, keyNode.Line, "give either message or error, not both")
			return
		}
		d.messageSeen = true
		a.ErrorMessage = p.value(s, key, v, expr.KindString)
	case "code":
		a.ErrorCode = p.name(s, key, v)
	case "correlation":
		a.Correlation = p.value(s, key, v, expr.KindAny)
		if lit, ok := a.Correlation.Literal(); ok && a.Correlation != nil {
			switch lit.(type) {
			case map[string]any, []any, nil:
				s.add(key, v.Line, "must be a string, a number or an expression")
			}
		}
	case "duration":
		a.Duration = p.duration(s, key, v)
	case "until":
		a.Until = p.value(s, key, v, expr.KindTimestamp)
	case "cases":
		d.decodeCases(v)
	case "default":
		a.Default = d.target(key, v, EdgeDefault)
	case "branches":
		p.sequence(s, key, v, func(i int, item *yaml.Node) {
			if to := d.target(key+index(i), item, EdgeBranch); to != "" {
				if slices.Contains(a.Branches, to) {
					s.add(key+index(i), item.Line, "branch %q is listed twice", to)
					return
				}
				a.Branches = append(a.Branches, to)
			}
		})
	case "vars":
		// mapping visits the keys in source order, which is the order
		// of assignment; for JSON sources too, since they are parsed as
		// YAML.
		p.mapping(s, key, v, func(name string, nameNode, val *yaml.Node) {
			field := join(key, name)
			if !identifierPattern.MatchString(name) {
				s.add(field, nameNode.Line, "%q is not a valid variable name (letters, digits and '_', not starting with a digit)", name)
				return
			}
			value := p.value(s, field, val, expr.KindAny)
			if value == nil {
				value = literalValue(nil)
			}
			a.Vars = append(a.Vars, VarAssign{Name: name, Value: value})
		})
	case "event":
		a.Event = p.name(s, key, v)
	case "payload":
		a.Payload = p.value(s, key, v, expr.KindAny)
	case "boundary":
		d.decodeBoundary(v)
	case "items":
		a.Items = p.value(s, key, v, expr.KindAny)
		if lit, ok := a.Items.Literal(); ok && a.Items != nil {
			if _, isList := lit.([]any); !isList {
				s.add(key, v.Line, "must be a list or an expression")
			}
		}
	case "body":
		a.Body = d.target(key, v, EdgeBody)
	case "parallel":
		a.Parallel = p.boolean(s, key, v)
	case "terminate":
		d.decodeTerminate(v)
	case "cancel":
		a.Cancel = p.name(s, key, v)
		if a.Cancel != "" {
			p.refs = append(p.refs, ref{scope: s, from: a, field: key, line: v.Line, kind: edgeCancels, to: a.Cancel})
		}
	case "activities":
		d.inner = v
	case "start":
		a.Start = d.target(key, v, EdgeScope)
	case "onCancel":
		a.OnCancel = d.target(key, v, EdgeCancel)
	case "inclusive":
		a.Inclusive = p.boolean(s, key, v)
	case "maxConcurrency":
		a.MaxConcurrency = p.integer(s, key, v, 1, 1<<20)
	case "completionCondition":
		a.CompletionCondition = p.value(s, key, v, expr.KindBool)
	case "definition":
		a.Definition = p.pattern(s, key, v, definitionIDPattern, "definition id")
	case "version":
		a.Version = p.integer(s, key, v, 1, 1<<31-1)
	}
}

// decodeBoundary decodes the boundary timers of an activity.
func (d *activityDecoder) decodeBoundary(n *yaml.Node) {
	p, s := d.p, d.s
	p.sequence(s, "boundary", n, func(i int, item *yaml.Node) {
		field := "boundary" + index(i)
		ev := BoundaryEvent{Interrupting: true, Line: item.Line}
		seen := map[string]bool{}
		ok := p.mapping(s, field, item, func(key string, keyNode, v *yaml.Node) {
			seen[key] = true
			f := join(field, key)
			switch key {
			case "after":
				ev.After = p.duration(s, f, v)
			case "at":
				ev.At = p.value(s, f, v, expr.KindTimestamp)
			case "every":
				ev.Every = p.duration(s, f, v)
			case "interrupting":
				ev.Interrupting = p.boolean(s, f, v)
			case "message":
				ev.Message = p.name(s, f, v)
			case "correlation":
				ev.Correlation = p.value(s, f, v, expr.KindAny)
			case "next":
				ev.Next = d.target(f, v, EdgeBoundary)
			default:
				s.add(f, keyNode.Line, "unknown field %q%s", key,
					suggest(key, []string{"after", "at", "every", "interrupting", "message", "correlation", "next"}))
			}
		})
		if !ok {
			return
		}
		whens := 0
		for _, k := range []string{"after", "at", "message"} {
			if seen[k] {
				whens++
			}
		}
		switch {
		case whens != 1:
			s.add(field, item.Line, "a boundary event needs exactly one of after, at (timers) or message")
		case seen["correlation"] && !seen["message"]:
			s.add(join(field, "correlation"), item.Line, "correlation needs message")
		case seen["every"] && seen["message"]:
			s.add(join(field, "every"), item.Line, "every is for timers, not messages")
		case !seen["next"]:
			s.add(field, item.Line, "missing required field %q", "next")
		case seen["every"] && ev.Interrupting:
			s.add(join(field, "every"), item.Line, "every needs interrupting: false (an interrupting timer fires once)")
		}
		d.a.Boundary = append(d.a.Boundary, ev)
	})
}

// decodeTerminate decodes an end's terminate: true, or a mapping that
// also asks for compensation ({compensate: true}).
func (d *activityDecoder) decodeTerminate(n *yaml.Node) {
	p, s, a := d.p, d.s, d.a
	if r := p.resolve(n); r == nil || r.Kind != yaml.MappingNode {
		a.Terminate = p.boolean(s, "terminate", n)
		return
	}
	a.Terminate = true
	p.mapping(s, "terminate", n, func(key string, keyNode, v *yaml.Node) {
		switch key {
		case "compensate":
			a.TerminateCompensate = p.boolean(s, join("terminate", key), v)
		default:
			s.unknownField("terminate", key, keyNode, []string{"compensate"}, "", nil)
		}
	})
}

// target decodes an activity id a transition leads to and records it for
// checking once all ids are known.
func (d *activityDecoder) target(field string, n *yaml.Node, kind EdgeKind) string {
	to := d.p.name(d.s, field, n)
	if to != "" {
		d.p.refs = append(d.p.refs, ref{scope: d.s, from: d.a, field: field, line: n.Line, kind: kind, to: to})
	}
	return to
}

func (d *activityDecoder) decodeOutcomeNext(n *yaml.Node) {
	d.nextMap = n
	d.nextMapLines = map[string]int{}
	d.a.OutcomeNext = map[string]string{}
	d.p.mapping(d.s, "next", n, func(outcome string, keyNode, v *yaml.Node) {
		if to := d.target(join("next", outcome), v, EdgeOutcome); to != "" {
			d.a.OutcomeNext[outcome] = to
			d.nextMapLines[outcome] = keyNode.Line
		}
	})
}

func (d *activityDecoder) decodeOnError(n *yaml.Node) {
	r := d.p.resolve(n)
	if r == nil {
		return
	}
	d.a.OnError = map[string]string{}
	if r.Kind != yaml.MappingNode {
		if to := d.target("onError", r, EdgeError); to != "" {
			d.a.OnError["*"] = to
		}
		return
	}
	d.p.mapping(d.s, "onError", r, func(name string, _, v *yaml.Node) {
		if to := d.target(join("onError", name), v, EdgeError); to != "" {
			d.a.OnError[name] = to
		}
	})
}

func (d *activityDecoder) decodeCases(n *yaml.Node) {
	p, s := d.p, d.s
	p.sequence(s, "cases", n, func(i int, item *yaml.Node) {
		field := "cases" + index(i)
		var c Case
		var hasWhen, hasNext bool
		ok := p.mapping(s, field, item, func(key string, keyNode, v *yaml.Node) {
			switch key {
			case "when":
				hasWhen = true
				c.When = p.value(s, join(field, key), v, expr.KindBool)
			case "next":
				hasNext = true
				c.Next = d.target(join(field, key), v, EdgeCase)
			default:
				s.unknownField(field, key, keyNode, []string{"when", "next"}, "", nil)
			}
		})
		if !ok {
			return
		}
		if !hasWhen {
			s.add(field, item.Line, "missing required field \"when\"")
		}
		if !hasNext {
			s.add(field, item.Line, "missing required field \"next\"")
		}
		d.a.Cases = append(d.a.Cases, c)
	})
	if r := p.resolve(n); r != nil && r.Kind == yaml.SequenceNode && len(r.Content) == 0 {
		s.add("cases", r.Line, "must list at least one case")
	}
}

// decodeResponses decodes an http activity's response rules.
func (d *activityDecoder) decodeResponses(n *yaml.Node) {
	p, s := d.p, d.s
	p.sequence(s, "responses", n, func(i int, item *yaml.Node) {
		field := "responses" + index(i)
		var r ResponseRule
		ok := p.mapping(s, field, item, func(key string, keyNode, v *yaml.Node) {
			f := join(field, key)
			switch key {
			case "status":
				if rv := p.resolve(v); rv != nil && rv.Kind == yaml.SequenceNode {
					p.sequence(s, f, rv, func(j int, sv *yaml.Node) {
						if code := p.integer(s, f+index(j), sv, 100, 599); code != 0 {
							r.Status = append(r.Status, code)
						}
					})
				} else if code := p.integer(s, f, v, 100, 599); code != 0 {
					r.Status = []int{code}
				}
			case "when":
				r.When = p.value(s, f, v, expr.KindBool)
			case "outcome":
				r.Outcome = p.pattern(s, f, v, identifierPattern, "outcome name (letters, digits and '_')")
			case "error":
				r.Error = p.name(s, f, v)
			case "next":
				r.Next = d.target(f, v, EdgeOutcome)
			default:
				s.unknownField(field, key, keyNode, []string{"status", "when", "outcome", "error", "next"}, "", nil)
			}
		})
		if !ok {
			return
		}
		switch {
		case (r.Outcome == "") == (r.Error == ""):
			s.add(field, item.Line, "a response rule needs exactly one of outcome or error")
		case r.Error != "" && r.Next != "":
			s.add(field, item.Line, "a rule with an error is routed by onError, not next")
		case len(r.Status) == 0 && r.When == nil:
			s.add(field, item.Line, "a response rule needs status or when")
		}
		d.a.Responses = append(d.a.Responses, r)
	})
}

var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

func (d *activityDecoder) decodeRequest(field string, n *yaml.Node) *HTTPRequest {
	p, s := d.p, d.s.sub(field)
	r := &HTTPRequest{Method: "GET"}
	hasURL := false
	var bodyLine int
	ok := p.mapping(s, "", n, func(key string, keyNode, v *yaml.Node) {
		switch key {
		case "method":
			m := strings.ToUpper(p.name(s, key, v))
			if m != "" && !slices.Contains(httpMethods, m) {
				s.add(key, v.Line, "unknown HTTP method %q (use one of %s)", m, strings.Join(httpMethods, ", "))
			} else if m != "" {
				r.Method = m
			}
		case "url":
			hasURL = true
			r.URL = p.value(s, key, v, expr.KindString)
			if lit, isLit := r.URL.Literal(); isLit && r.URL != nil {
				str, _ := lit.(string)
				if u, err := url.Parse(str); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					s.add(key, v.Line, "%q is not an absolute http or https URL", str)
				}
			}
		case "headers":
			r.Headers = map[string]*Value{}
			p.mapping(s, key, v, func(name string, nameNode, hv *yaml.Node) {
				hf := join(key, name)
				if !headerNamePattern.MatchString(name) {
					s.add(hf, nameNode.Line, "%q is not a valid header name", name)
					return
				}
				if value := p.value(s, hf, hv, expr.KindString); value != nil {
					r.Headers[name] = value
				}
			})
		case "query":
			r.Query = map[string]*Value{}
			p.mapping(s, key, v, func(name string, _, qv *yaml.Node) {
				if value := p.value(s, join(key, name), qv, expr.KindAny); value != nil {
					r.Query[name] = value
				}
			})
		case "body":
			bodyLine = keyNode.Line
			r.Body = p.value(s, key, v, expr.KindAny)
		default:
			s.unknownField("", key, keyNode, []string{"method", "url", "headers", "query", "body"}, "", nil)
		}
	})
	if !ok {
		return nil
	}
	if !hasURL {
		s.add("", n.Line, "missing required field \"url\"")
	}
	if r.Body != nil && (r.Method == "GET" || r.Method == "HEAD") {
		s.add("body", bodyLine, "a %s request cannot have a body", r.Method)
	}
	return r
}

// finish checks what depends on several fields, once all are decoded.
func (d *activityDecoder) finish() {
	a, s := d.a, d.s
	require := func(fields ...string) {
		for _, f := range fields {
			if _, ok := d.set[f]; !ok {
				s.add("", d.line, "missing required field %q", f)
			}
		}
	}
	switch a.Type {
	case TypeTask:
		require("handler")
	case TypeHTTP:
		require("request")
	case TypeUserTask:
		d.finishUserTask()
		d.requireWith("onTimeout", "due")
	case TypeReceive:
		require("message")
		d.requireWith("onTimeout", "timeout")
	case TypeTimer:
		if d.has("duration") == d.has("until") {
			s.add("", d.line, "a timer needs exactly one of duration or until")
		}
	case TypeSwitch:
		require("cases")
	case TypeParallel, TypeFirstOf:
		require("branches")
		if d.has("branches") && len(a.Branches) == 0 {
			s.add("branches", d.set["branches"], "must list at least one activity")
		}
	case TypeSet:
		require("vars")
		if d.has("vars") && len(a.Vars) == 0 {
			s.add("vars", d.set["vars"], "must assign at least one variable")
		}
	case TypeEmit:
		require("event")
	case TypeSubworkflow:
		require("definition")
		d.requireWith("onTimeout", "timeout")
	case TypeScope:
		require("activities")
	case TypeEnd:
		if a.Terminate && a.Cancel != "" {
			s.add("cancel", d.set["cancel"], "an end either terminates the instance or cancels a scope, not both")
		}
	case TypeForEach:
		require("items", "body")
		if d.has("maxConcurrency") && !a.Parallel {
			s.add("maxConcurrency", d.set["maxConcurrency"], "maxConcurrency needs parallel: true")
		}
	}
}

// requireWith reports field given without the field it depends on.
func (d *activityDecoder) requireWith(field, needs string) {
	if d.has(field) && !d.has(needs) {
		d.s.add(field, d.set[field], "%s needs %s to be set", field, needs)
	}
}

// has reports whether the field was given.
func (d *activityDecoder) has(field string) bool {
	_, ok := d.set[field]
	return ok
}

// finishUserTask reconciles outcomes with next and normalises the
// transitions into OutcomeNext.
func (d *activityDecoder) finishUserTask() {
	a, s := d.a, d.s
	if d.nextMap != nil && !d.has("outcomes") {
		// Outcomes are the keys of next, in a stable order.
		for outcome := range a.OutcomeNext {
			a.Outcomes = append(a.Outcomes, outcome)
		}
		slices.Sort(a.Outcomes)
		return
	}
	if len(a.Outcomes) == 0 {
		if d.has("outcomes") {
			s.add("outcomes", d.set["outcomes"], "must list at least one outcome")
		}
		return
	}
	if d.nextMap == nil {
		if a.Next == "" {
			for i, o := range a.Outcomes {
				d.p.openOutcomes = append(d.p.openOutcomes, openOutcome{activity: a.ID, outcome: o, scope: s,
					field: "outcomes" + index(i), line: d.p.itemLine(d.outcomesNode, i, d.line)})
			}
			return
		}
		// A single next serves every outcome.
		a.OutcomeNext = make(map[string]string, len(a.Outcomes))
		for _, o := range a.Outcomes {
			a.OutcomeNext[o] = a.Next
		}
		a.Next = ""
		return
	}
	for outcome := range a.OutcomeNext {
		if !slices.Contains(a.Outcomes, outcome) {
			s.add(join("next", outcome), d.nextMapLines[outcome], "outcome %q is not declared in outcomes%s",
				outcome, suggest(outcome, a.Outcomes))
		}
	}
	for i, o := range a.Outcomes {
		if _, ok := a.OutcomeNext[o]; !ok {
			s.add("outcomes"+index(i), d.p.itemLine(d.outcomesNode, i, d.line), "outcome %q has no transition in next", o)
		}
	}
}

// itemLine returns the line of item i of the list n, or fallback.
func (p *parser) itemLine(n *yaml.Node, i int, fallback int) int {
	for hops := 0; n != nil && n.Kind == yaml.AliasNode && hops < maxDepth; hops++ {
		n = n.Alias
	}
	if n == nil || n.Kind != yaml.SequenceNode || i >= len(n.Content) {
		return fallback
	}
	return n.Content[i].Line
}
