package definition

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"go.yaml.in/yaml/v3"
)

// inputSchemaURL names the input schema inside the schema compiler. The
// compiler has no loader, so references to any other document fail
// instead of reaching the network or the file system.
const inputSchemaURL = "https://waymark.invalid/input.schema.json"

// formSchemaURL names a user task's form schema inside the compiler.
const formSchemaURL = "https://waymark.invalid/form.schema.json"

// decodeSchema converts a schema field (the definition's input, a user
// task's form) to JSON and compiles it as a JSON Schema (draft 2020-12
// unless it says otherwise with $schema) under url.
func (p *parser) decodeSchema(s *scope, field string, n *yaml.Node, url string) (json.RawMessage, *jsonschema.Schema) {
	doc, ok := p.plain(s, field, n, 0)
	if !ok {
		return nil, nil
	}
	switch doc.(type) {
	case map[string]any, bool:
	default:
		s.add(field, n.Line, "must be a JSON Schema (a mapping), not %s", kindName(p.resolve(n)))
		return nil, nil
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		s.add(field, n.Line, "cannot encode the schema as JSON: %v", err)
		return nil, nil
	}
	schema, err := compileSchema(url, doc)
	if err != nil {
		for _, prob := range schemaProblems(url, err) {
			line := nodeAtPointer(n, prob.Path, n.Line)
			s.add(join(field, pointerToPath(prob.Path)), line, "invalid JSON Schema: %s", prob.Message)
		}
		return nil, nil
	}
	return raw, schema
}

func compileSchema(url string, doc any) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("add schema: %w", err)
	}
	schema, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("compile schema: %w", err)
	}
	return schema, nil
}

// schemaProblems explains why a schema does not compile.
func schemaProblems(url string, err error) []InputProblem {
	var invalid *jsonschema.SchemaValidationError
	if errors.As(err, &invalid) {
		var verr *jsonschema.ValidationError
		if errors.As(invalid.Err, &verr) {
			return flattenValidationError(verr)
		}
	}
	msg := err.Error()
	msg = strings.ReplaceAll(msg, url, strings.TrimSuffix(strings.TrimPrefix(url, "https://waymark.invalid/"), ".schema.json"))
	msg = strings.ReplaceAll(msg, "\n", " ")
	return []InputProblem{{Message: msg}}
}

// pointerToPath turns a JSON pointer into a problem path suffix:
// /properties/amount -> properties.amount, /required/0 -> required[0].
func pointerToPath(ptr string) string {
	if ptr == "" {
		return ""
	}
	var b strings.Builder
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		if _, err := strconv.Atoi(tok); err == nil {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// nodeAtPointer returns the line of the node a JSON pointer designates
// inside n, or of the deepest node found on the way.
func nodeAtPointer(n *yaml.Node, ptr string, fallback int) int {
	line := fallback
	if ptr == "" {
		return line
	}
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		for hops := 0; n != nil && n.Kind == yaml.AliasNode && hops < maxDepth; hops++ {
			n = n.Alias
		}
		if n == nil {
			return line
		}
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == tok {
					next = n.Content[i+1]
					break
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(n.Content) {
				next = n.Content[i]
			}
		}
		if next == nil {
			return line
		}
		n, line = next, next.Line
	}
	return line
}

// InputProblem is one reason a start input is invalid.
type InputProblem struct {
	// Path is a JSON pointer into the input, such as /amount; empty for
	// the input as a whole.
	Path string
	// Message explains the problem, such as "must be >= 0".
	Message string
}

// InputError reports a start input that does not match the definition's
// input schema.
type InputError struct {
	Problems []InputProblem
}

// Error lists the problems: "invalid input: /amount: must be >= 0".
func (e *InputError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		if p.Path == "" {
			parts[i] = p.Message
		} else {
			parts[i] = p.Path + ": " + p.Message
		}
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// ValidateInput checks a start input, given as JSON, against the input
// schema of the definition. Empty input stands for null. Without a schema
// any well-formed JSON is accepted. Problems are reported as *InputError.
func (d *Definition) ValidateInput(input []byte) error {
	problems, err := validateJSON(d.inputSchema, input)
	if err != nil {
		return fmt.Errorf("validate input: %w", err)
	}
	if len(problems) > 0 {
		return &InputError{Problems: problems}
	}
	return nil
}

// FormError reports completion data of a user task that does not match
// the task's form.
type FormError struct {
	// Activity is the id of the user task.
	Activity string
	// Problems name the fields by JSON pointers into the data, such as
	// /amount.
	Problems []InputProblem
}

// Error lists the problems: "invalid form data: /amount: is required".
func (e *FormError) Error() string {
	return "invalid form data: " + strings.TrimPrefix((&InputError{Problems: e.Problems}).Error(), "invalid input: ")
}

// ValidateForm checks the completion data of a user task, given as JSON,
// against its form. Empty data stands for null. Without a form any
// well-formed JSON is accepted. Problems are reported as *FormError.
func (a *Activity) ValidateForm(data []byte) error {
	if a.formSchema == nil && len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	problems, err := validateJSON(a.formSchema, data)
	if err != nil {
		return fmt.Errorf("validate form data: %w", err)
	}
	if len(problems) > 0 {
		return &FormError{Activity: a.ID, Problems: problems}
	}
	return nil
}

// validateJSON checks doc against schema (nil: any JSON) and lists the
// problems.
func validateJSON(schema *jsonschema.Schema, raw []byte) ([]InputProblem, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("null")
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return []InputProblem{{Message: "not valid JSON: " + err.Error()}}, nil
	}
	if schema == nil {
		return nil, nil
	}
	err = schema.Validate(doc)
	if err == nil {
		return nil, nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return nil, err
	}
	return flattenValidationError(verr), nil
}

// flattenValidationError lists the leaf causes of a validation error with
// short messages.
func flattenValidationError(root *jsonschema.ValidationError) []InputProblem {
	var out []InputProblem
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		out = append(out, describe(e)...)
	}
	walk(root)
	if len(out) == 0 {
		out = append(out, InputProblem{Message: root.Error()})
	}
	return out
}

// describe phrases one validation failure.
func describe(e *jsonschema.ValidationError) []InputProblem {
	path := pointer(e.InstanceLocation)
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		out := make([]InputProblem, len(k.Missing))
		for i, m := range k.Missing {
			out[i] = InputProblem{Path: path + "/" + escapePointer(m), Message: "is required"}
		}
		return out
	case *kind.AdditionalProperties:
		out := make([]InputProblem, len(k.Properties))
		for i, m := range k.Properties {
			out[i] = InputProblem{Path: path + "/" + escapePointer(m), Message: "is not allowed"}
		}
		return out
	case *kind.Type:
		return []InputProblem{{Path: path, Message: fmt.Sprintf("must be %s, not %s", strings.Join(k.Want, " or "), k.Got)}}
	case *kind.Minimum:
		return []InputProblem{{Path: path, Message: "must be >= " + ratString(k.Want)}}
	case *kind.Maximum:
		return []InputProblem{{Path: path, Message: "must be <= " + ratString(k.Want)}}
	case *kind.ExclusiveMinimum:
		return []InputProblem{{Path: path, Message: "must be > " + ratString(k.Want)}}
	case *kind.ExclusiveMaximum:
		return []InputProblem{{Path: path, Message: "must be < " + ratString(k.Want)}}
	case *kind.MinLength:
		return []InputProblem{{Path: path, Message: fmt.Sprintf("must be at least %d characters long", k.Want)}}
	case *kind.MaxLength:
		return []InputProblem{{Path: path, Message: fmt.Sprintf("must be at most %d characters long", k.Want)}}
	case *kind.Pattern:
		return []InputProblem{{Path: path, Message: fmt.Sprintf("must match pattern %q", k.Want)}}
	}
	// Render the library's English message without its location prefix.
	leaf := *e
	leaf.InstanceLocation, leaf.Causes = nil, nil
	return []InputProblem{{Path: path, Message: strings.TrimPrefix(leaf.Error(), "at '': ")}}
}

func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(escapePointer(t))
	}
	return b.String()
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}
