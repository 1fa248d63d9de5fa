package definition

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

const (
	// MaxSourceSize is the largest definition source, in bytes, Parse
	// accepts.
	MaxSourceSize = 1 << 20
	// MaxActivities is the most activities a definition may have.
	MaxActivities = 10_000
	// maxNodes bounds the YAML nodes Parse visits, counting every expansion
	// of an alias, so that alias bombs are rejected quickly.
	maxNodes = 500_000
	// maxDepth bounds the nesting of data values and the input schema.
	maxDepth = 64
)

var (
	definitionIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	activityIDPattern   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,63}$`)
	identifierPattern   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	yamlLinePattern     = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
)

// topLevelFields lists the fields a definition document accepts.
func topLevelFields() []string {
	return []string{"$schema", "id", "name", "description", "input", "timeout", "defaults", "start", "activities"}
}

// Parse decodes a YAML or JSON definition, validates it and compiles its
// expressions and input schema. When the definition has problems the
// error is a *ValidationError listing all of them.
func Parse(data []byte) (*Definition, error) {
	p := newParser()
	def := p.parseDefinition(data)
	if err := p.err(); err != nil {
		return nil, err
	}
	if def == nil {
		return nil, errors.New("parse definition: no definition and no problem reported")
	}
	return def, nil
}

// parser holds the state of one Parse.
type parser struct {
	problems
	budget    int
	exhausted bool
	// refs are the transitions found while decoding, checked once every
	// activity id is known.
	refs []ref
	// programs caches compiled expressions by kind and source.
	programs map[programKey]compiled
	// metas is parallel to Definition.Activities.
	metas []*activityMeta
	// openOutcomes are user tasks whose outcomes lead nowhere: a problem
	// unless the task is the body of a forEach (checked with the graph).
	openOutcomes []openOutcome
}

// openOutcome is a user task outcome without a transition.
type openOutcome struct {
	activity, outcome string
	scope             *scope
	field             string
	line              int
}

func newParser() *parser {
	return &parser{budget: maxNodes, programs: map[programKey]compiled{}}
}

// parseDefinition runs every stage; problems accumulate in p.
func (p *parser) parseDefinition(data []byte) *Definition {
	if len(data) > MaxSourceSize {
		p.add("", 0, "definition is %d bytes, more than the limit of %d", len(data), MaxSourceSize)
		return nil
	}
	root := p.parseYAML(data)
	if root == nil {
		return nil
	}
	def := p.decodeDefinition(root)
	if def == nil {
		return nil
	}
	p.validateGraph(def)
	if len(p.list) > 0 {
		return nil
	}
	def.hash = hashDefinition(def)
	return def
}

// parseYAML parses data as a single YAML document and returns its root
// node. JSON is a subset of YAML and goes through the same parser, so
// problems in JSON sources carry line numbers too. A source that is not
// valid YAML only because of unquoted ${ ... } expressions inside flow
// collections is accepted: see quoteExpressions.
func (p *parser) parseYAML(data []byte) *yaml.Node {
	root, errs := decodeYAML(data)
	if errs == nil {
		return root
	}
	if quoted, changed := quoteExpressions(data); changed {
		if root, errs2 := decodeYAML(quoted); errs2 == nil {
			return root
		}
	}
	for _, e := range errs {
		p.add("", e.Line, "%s", e.Message)
	}
	return nil
}

// decodeYAML parses one YAML document, turning syntax errors into
// problems.
func decodeYAML(data []byte) (root *yaml.Node, errs []Problem) {
	defer func() {
		// The YAML parser is third-party code fed untrusted input; a bug
		// there must surface as a problem, not crash the server.
		if r := recover(); r != nil {
			root, errs = nil, []Problem{{Message: fmt.Sprintf("cannot parse YAML: %v", r)}}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, []Problem{{Message: "definition is empty"}}
		}
		return nil, yamlProblems(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, []Problem{{Line: extra.Line, Message: "definition must be a single YAML document"}}
	} else if !errors.Is(err, io.EOF) {
		return nil, yamlProblems(err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, []Problem{{Message: "definition is empty"}}
	}
	return doc.Content[0], nil
}

// yamlProblems turns a YAML syntax error into problems, lifting the line
// number out of the message.
func yamlProblems(err error) []Problem {
	var typeErr *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &typeErr) {
		msgs = typeErr.Errors
	}
	out := make([]Problem, 0, len(msgs))
	for _, msg := range msgs {
		line := 0
		if m := yamlLinePattern.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
			if isParserError(msg) {
				// The YAML library prints 0-based lines for parser errors
				// (1-based for scanner errors), and the line where the
				// enclosing collection starts when it knows it.
				line++
				msg += " (at or after this line)"
			}
		} else {
			msg = strings.TrimPrefix(msg, "yaml: ")
		}
		out = append(out, Problem{Line: line, Message: "invalid YAML: " + msg})
	}
	return out
}

// isParserError reports whether a YAML error message comes from the
// library's parser rather than its scanner.
func isParserError(msg string) bool {
	for _, prefix := range []string{
		"did not find expected node content",
		"did not find expected '-' indicator",
		"did not find expected key",
		"did not find expected ',' or",
		"did not find expected <",
		"found undefined tag handle",
		"found duplicate %",
		"found incompatible YAML document",
	} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return false
}

// resolve follows aliases and charges the node budget. It returns nil once
// the budget is spent.
func (p *parser) resolve(n *yaml.Node) *yaml.Node {
	if n == nil || p.exhausted {
		return nil
	}
	p.budget--
	if p.budget < 0 {
		p.exhausted = true
		p.add("", n.Line, "definition too large: more than %d YAML nodes after expanding aliases", maxNodes)
		return nil
	}
	for hops := 0; n != nil && n.Kind == yaml.AliasNode; hops++ {
		if hops > maxDepth {
			return nil
		}
		n = n.Alias
	}
	return n
}

// kindName describes a node for "must be X, not Y" messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!bool":
			return "a boolean"
		case "!!int", "!!float":
			return "a number"
		}
		return "a string"
	}
	return "empty"
}

// mapping calls fn for every key of the mapping n, in source order, after
// rejecting non-mappings, non-string keys, duplicate keys and merge keys.
// It reports whether n was a mapping.
func (p *parser) mapping(s *scope, field string, n *yaml.Node, fn func(key string, keyNode, val *yaml.Node)) bool {
	n = p.resolve(n)
	if n == nil {
		return false
	}
	if n.Kind != yaml.MappingNode {
		s.add(field, n.Line, "must be a mapping, not %s", kindName(n))
		return false
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := p.resolve(n.Content[i])
		if k == nil {
			return true
		}
		if k.Kind != yaml.ScalarNode {
			s.add(field, k.Line, "keys must be strings, not %s", kindName(k))
			continue
		}
		if k.Tag == "!!merge" || (k.Value == "<<" && k.Style == 0) {
			s.add(field, k.Line, "YAML merge keys (<<) are not supported")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			s.add(join(field, k.Value), k.Line, "duplicate key %q (first on line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		fn(k.Value, k, n.Content[i+1])
	}
	return true
}

// sequence calls fn for every item of the list n. It reports whether n was
// a list.
func (p *parser) sequence(s *scope, field string, n *yaml.Node, fn func(i int, item *yaml.Node)) bool {
	n = p.resolve(n)
	if n == nil {
		return false
	}
	if n.Kind != yaml.SequenceNode {
		s.add(field, n.Line, "must be a list, not %s", kindName(n))
		return false
	}
	for i, item := range n.Content {
		if p.exhausted {
			return true
		}
		fn(i, item)
	}
	return true
}

// scalar returns the resolved scalar node n, or reports that it must be
// the given kind and returns nil.
func (p *parser) scalar(s *scope, field string, n *yaml.Node, want string) *yaml.Node {
	n = p.resolve(n)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		s.add(field, n.Line, "must be %s, not %s", want, kindName(n))
		return nil
	}
	return n
}

// text decodes a free text field such as a name.
func (p *parser) text(s *scope, field string, n *yaml.Node) string {
	sn := p.scalar(s, field, n, "a string")
	if sn == nil {
		return ""
	}
	return sn.Value
}

// name decodes a plain, non-empty string that must not be an expression,
// such as a handler or an event type.
func (p *parser) name(s *scope, field string, n *yaml.Node) string {
	sn := p.scalar(s, field, n, "a string")
	if sn == nil {
		return ""
	}
	v := strings.TrimSpace(sn.Value)
	switch {
	case v == "":
		s.add(field, sn.Line, "must not be empty")
	case isExpression(v):
		s.add(field, sn.Line, "expressions are not allowed here")
	default:
		return v
	}
	return ""
}

// pattern decodes a name that must match re, described by what.
func (p *parser) pattern(s *scope, field string, n *yaml.Node, re *regexp.Regexp, what string) string {
	v := p.name(s, field, n)
	if v != "" && !re.MatchString(v) {
		s.add(field, n.Line, "%q is not a valid %s", v, what)
		return ""
	}
	return v
}

// names decodes a list of distinct names.
func (p *parser) names(s *scope, field string, n *yaml.Node) []string {
	var out []string
	seen := map[string]bool{}
	p.sequence(s, field, n, func(i int, item *yaml.Node) {
		f := fmt.Sprintf("%s[%d]", field, i)
		v := p.name(s, f, item)
		if v == "" {
			return
		}
		if seen[v] {
			s.add(f, item.Line, "%q is listed twice", v)
			return
		}
		seen[v] = true
		out = append(out, v)
	})
	return out
}

// duration decodes a duration string such as 30s or 7d.
func (p *parser) duration(s *scope, field string, n *yaml.Node) time.Duration {
	sn := p.scalar(s, field, n, "a duration")
	if sn == nil {
		return 0
	}
	if sn.Tag != "!!str" {
		s.add(field, sn.Line, "must be a duration with a unit, like 30s, 48h or 7d, not %s", kindName(sn))
		return 0
	}
	d, err := ParseDuration(strings.TrimSpace(sn.Value))
	if err != nil {
		s.add(field, sn.Line, "%v", err)
		return 0
	}
	return d
}

// boolean decodes true or false.
func (p *parser) boolean(s *scope, field string, n *yaml.Node) bool {
	sn := p.scalar(s, field, n, "true or false")
	if sn == nil {
		return false
	}
	var v bool
	if sn.Tag != "!!bool" || sn.Decode(&v) != nil {
		s.add(field, sn.Line, "must be true or false, not %q", sn.Value)
		return false
	}
	return v
}

// integer decodes an integer within [lo, hi].
func (p *parser) integer(s *scope, field string, n *yaml.Node, lo, hi int) int {
	sn := p.scalar(s, field, n, "an integer")
	if sn == nil {
		return 0
	}
	var v int64
	if sn.Tag != "!!int" && sn.Tag != "!!float" || sn.Decode(&v) != nil {
		s.add(field, sn.Line, "must be an integer, not %q", sn.Value)
		return 0
	}
	if v < int64(lo) || v > int64(hi) {
		s.add(field, sn.Line, "must be between %d and %d, not %d", lo, hi, v)
		return 0
	}
	return int(v)
}

// number decodes a number within [lo, hi].
func (p *parser) number(s *scope, field string, n *yaml.Node, lo, hi float64) float64 {
	sn := p.scalar(s, field, n, "a number")
	if sn == nil {
		return 0
	}
	var v float64
	if sn.Tag != "!!int" && sn.Tag != "!!float" || sn.Decode(&v) != nil {
		s.add(field, sn.Line, "must be a number, not %q", sn.Value)
		return 0
	}
	if !(v >= lo && v <= hi) {
		s.add(field, sn.Line, "must be between %g and %g, not %g", lo, hi, v)
		return 0
	}
	return v
}

// unknownField reports a field that is not in allowed. known lists fields
// that exist elsewhere in the language, to tell "misplaced" from "misspelt".
func (s *scope) unknownField(field, key string, keyNode *yaml.Node, allowed []string, where string, known func(string) bool) {
	path := join(field, key)
	if known != nil && known(key) {
		s.add(path, keyNode.Line, "field %q is not allowed on %s", key, where)
		return
	}
	s.add(path, keyNode.Line, "unknown field %q%s", key, suggest(key, allowed))
}

// join appends a field name to a path.
func join(path, field string) string {
	switch {
	case path == "":
		return field
	case field == "":
		return path
	case strings.HasPrefix(field, "["):
		return path + field
	}
	return path + "." + field
}

// scope reports problems under a path prefix, naming the activity they
// belong to when there is one.
type scope struct {
	p        *parser
	path     string
	activity string
}

func (s *scope) add(field string, line int, format string, args ...any) {
	if s.activity != "" {
		format = "activity %q: " + format
		args = append([]any{s.activity}, args...)
	}
	s.p.add(join(s.path, field), line, format, args...)
}

// sub returns a scope for a nested field.
func (s *scope) sub(field string) *scope {
	return &scope{p: s.p, path: join(s.path, field), activity: s.activity}
}
