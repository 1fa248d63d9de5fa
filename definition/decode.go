package definition

import (
	"slices"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// activityMeta is what the parser remembers about an activity beyond the
// model: where to report its problems, and the transitions of an activity
// of unknown type, so that one typo does not make its successors
// unreachable too.
type activityMeta struct {
	scope *scope
	loose []string
}

// ref is a transition found while decoding, checked once every activity
// id is known.
type ref struct {
	scope *scope
	// from is the activity the transition leaves; nil for the start.
	from  *Activity
	field string
	line  int
	kind  EdgeKind
	to    string
}

func index(i int) string { return "[" + strconv.Itoa(i) + "]" }

func (p *parser) decodeDefinition(root *yaml.Node) *Definition {
	def := &Definition{index: map[string]*Activity{}}
	top := &scope{p: p}
	var hasID bool
	var startNode, activitiesNode *yaml.Node
	root = p.resolve(root)
	if root == nil {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		p.add("", root.Line, "a definition must be a mapping with id and activities, not %s", kindName(root))
		return nil
	}
	p.mapping(top, "", root, func(key string, keyNode, v *yaml.Node) {
		switch key {
		case "$schema":
			p.text(top, key, v)
		case "id":
			hasID = true
			def.ID = p.pattern(top, key, v, definitionIDPattern,
				"definition id (up to 128 letters, digits, '.', '_' and '-', starting with a letter or digit)")
		case "name":
			def.Name = p.text(top, key, v)
		case "description":
			def.Description = p.text(top, key, v)
		case "input":
			def.InputSchema, def.inputSchema = p.decodeSchema(top, key, v, inputSchemaURL)
		case "timeout":
			def.Timeout = p.duration(top, key, v)
		case "defaults":
			def.Defaults = p.decodeDefaults(top.sub(key), v)
		case "start":
			startNode = v
		case "activities":
			activitiesNode = v
		default:
			top.unknownField("", key, keyNode, topLevelFields(), "", nil)
		}
	})
	if !hasID {
		p.add("", root.Line, "missing required field \"id\"")
	}
	if activitiesNode == nil {
		p.add("", root.Line, "missing required field \"activities\"")
	} else {
		p.decodeActivities(top, def, activitiesNode)
	}
	if startNode != nil {
		if start := p.name(top, "start", startNode); start != "" {
			def.Start = start
			p.refs = append(p.refs, ref{scope: top, field: "start", line: startNode.Line, kind: edgeStart, to: start})
		}
	} else if len(def.Activities) > 0 {
		def.Start = def.Activities[0].ID
	}
	return def
}

func (p *parser) decodeDefaults(s *scope, n *yaml.Node) Defaults {
	var d Defaults
	p.mapping(s, "", n, func(key string, keyNode, v *yaml.Node) {
		switch key {
		case "retry":
			d.Retry = p.decodeRetry(s.sub(key), v)
		case "suspendAfterFailures":
			d.SuspendAfterFailures = p.integer(s, key, v, 1, 1_000_000)
		default:
			s.unknownField("", key, keyNode, []string{"retry", "suspendAfterFailures"}, "", nil)
		}
	})
	return d
}

func (p *parser) decodeRetry(s *scope, n *yaml.Node) RetryPolicy {
	var r RetryPolicy
	fields := []string{"maxAttempts", "initialInterval", "backoffCoefficient", "maxInterval"}
	var maxLine int
	p.mapping(s, "", n, func(key string, keyNode, v *yaml.Node) {
		switch key {
		case "maxAttempts":
			r.MaxAttempts = p.integer(s, key, v, 1, 1_000_000)
		case "initialInterval":
			r.InitialInterval = p.duration(s, key, v)
		case "backoffCoefficient":
			r.BackoffCoefficient = p.number(s, key, v, 1, 1000)
		case "maxInterval":
			r.MaxInterval = p.duration(s, key, v)
			maxLine = keyNode.Line
		default:
			s.unknownField("", key, keyNode, fields, "", nil)
		}
	})
	if r.InitialInterval > 0 && r.MaxInterval > 0 && r.MaxInterval < r.InitialInterval {
		s.add("maxInterval", maxLine, "must not be shorter than initialInterval (%s)", r.InitialInterval)
	}
	return r
}

func (p *parser) decodeActivities(top *scope, def *Definition, n *yaml.Node) {
	p.decodeActivityList(top, def, "activities", n, nil, 0)
	for i, a := range def.Activities {
		if a.ID == "" {
			continue
		}
		if first, dup := def.index[a.ID]; dup {
			p.metas[i].scope.add("id", a.Line, "duplicate id (first used on line %d)", first.Line)
			continue
		}
		def.index[a.ID] = a
	}
}

// decodeActivityList decodes a list of activities at path: the top level's
// (parent nil) or a scope's own. A scope's activities follow it in
// Definition.Activities, so the first activity there is the top level's
// first.
func (p *parser) decodeActivityList(s *scope, def *Definition, path string, n *yaml.Node, parent *Activity, depth int) {
	p.sequence(s, path, n, func(i int, item *yaml.Node) {
		if len(def.Activities) == MaxActivities {
			p.add(path, item.Line, "more than %d activities", MaxActivities)
		}
		if len(def.Activities) >= MaxActivities {
			return
		}
		a, meta, inner := p.decodeActivity(path+index(i), item, parent)
		if a == nil {
			return
		}
		def.Activities = append(def.Activities, a)
		p.metas = append(p.metas, meta)
		if parent != nil && a.ID != "" {
			parent.Inner = append(parent.Inner, a.ID)
		}
		if a.Type != TypeScope || inner == nil {
			return
		}
		def.scopes = true
		if depth >= maxScopeDepth {
			meta.scope.add("activities", inner.Line, "scopes nest more than %d deep", maxScopeDepth)
			return
		}
		first := len(def.Activities)
		p.decodeActivityList(&scope{p: p, activity: a.ID}, def, path+index(i)+".activities", inner, a, depth+1)
		if a.Start == "" && len(def.Activities) > first {
			a.Start = def.Activities[first].ID
			p.refs = append(p.refs, ref{scope: meta.scope, from: a, field: "activities", line: inner.Line, kind: EdgeScope, to: a.Start})
		}
	})
	if n := p.resolve(n); n != nil && n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
		if parent == nil {
			p.add(path, n.Line, "must list at least one activity")
		} else {
			s.add(path, n.Line, "a scope must list at least one activity: its body is empty")
		}
	}
}

// maxScopeDepth bounds how deeply scopes nest.
const maxScopeDepth = 16

// decodeActivity decodes one item of an activity list at path, inside the
// scope parent (nil for the top level). It returns nil when the item is not
// a mapping; for a scope, it also returns the list of its own activities.
func (p *parser) decodeActivity(path string, n *yaml.Node, parent *Activity) (*Activity, *activityMeta, *yaml.Node) {
	s := &scope{p: p, path: path}
	n = p.resolve(n)
	if n == nil {
		return nil, nil, nil
	}
	if n.Kind != yaml.MappingNode {
		s.add("", n.Line, "an activity must be a mapping, not %s", kindName(n))
		return nil, nil, nil
	}
	a := &Activity{Line: n.Line}
	if parent != nil {
		a.Parent = parent.ID
	}
	meta := &activityMeta{scope: s}
	var idNode, typeNode *yaml.Node
	for j := 0; j+1 < len(n.Content); j += 2 {
		if k := n.Content[j]; k.Kind == yaml.ScalarNode {
			switch k.Value {
			case "id":
				idNode = n.Content[j+1]
			case "type":
				typeNode = n.Content[j+1]
			}
		}
	}
	if idNode == nil {
		s.add("", n.Line, "missing required field \"id\"")
	} else {
		a.ID = p.pattern(s, "id", idNode, activityIDPattern,
			"activity id (up to 64 letters, digits, '_' and '-', starting with a letter or '_')")
	}
	s.activity = a.ID
	if typeNode == nil {
		s.add("", n.Line, "missing required field \"type\"")
	} else if t := p.name(s, "type", typeNode); t != "" {
		if ActivityType(t).Fields() == nil {
			s.add("type", typeNode.Line, "unknown activity type %q%s", t, suggest(t, typeNames()))
		} else {
			a.Type = ActivityType(t)
		}
	}

	d := &activityDecoder{p: p, s: s, a: a, line: n.Line}
	allowed := a.Type.Fields()
	p.mapping(s, "", n, func(key string, keyNode, v *yaml.Node) {
		switch {
		case key == "id" || key == "type":
		case allowed == nil:
			meta.loose = append(meta.loose, p.looseTargets(key, v)...)
		case !slices.Contains(allowed, key):
			if key == "next" && (a.Type == TypeEnd || a.Type == TypeFail) {
				s.add(key, keyNode.Line, "%s activities end the flow and take no next", a.Type)
				return
			}
			s.unknownField("", key, keyNode, allowed, article(a.Type)+" activity", isActivityField)
		default:
			d.field(key, keyNode, v)
		}
	})
	if a.Type != "" {
		d.finish()
	}
	return a, meta, d.inner
}

// looseTargets extracts the activity ids an activity of unknown type
// transitions to, without reporting anything.
func (p *parser) looseTargets(key string, n *yaml.Node) []string {
	switch key {
	case "next", "default", "onTimeout", "onError", "compensate", "branches", "cases", "onCancel":
	default:
		return nil
	}
	var out []string
	var walk func(n *yaml.Node, depth int)
	walk = func(n *yaml.Node, depth int) {
		n = p.resolve(n)
		if n == nil || depth > 3 {
			return
		}
		switch n.Kind {
		case yaml.ScalarNode:
			out = append(out, n.Value)
		case yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, depth+1)
			}
		case yaml.MappingNode:
			for i := 1; i < len(n.Content); i += 2 {
				walk(n.Content[i], depth+1)
			}
		}
	}
	walk(n, 0)
	return out
}

func typeNames() []string {
	types := ActivityTypes()
	out := make([]string, len(types))
	for i, t := range types {
		out[i] = string(t)
	}
	return out
}

// isActivityField reports whether some activity type accepts field.
func isActivityField(field string) bool {
	for _, t := range ActivityTypes() {
		if slices.Contains(t.Fields(), field) {
			return true
		}
	}
	return false
}

// article returns the type name with its indefinite article.
func article(t ActivityType) string {
	switch t {
	case TypeHTTP:
		return "an http"
	case TypeEmit, TypeEnd:
		return "an " + string(t)
	}
	return "a " + string(t)
}
