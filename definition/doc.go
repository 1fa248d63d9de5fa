// Package definition parses, validates and compiles Waymark workflow
// definitions.
//
// A definition is a YAML or JSON document (JSON is read by the same YAML
// parser, so problems carry line numbers in both) describing a graph of
// activities. [Parse] turns the source into an immutable [Definition]: it
// decodes every field, rejects unknown ones, checks the graph (transitions,
// reachability, joins, user task outcomes, endless cycles), compiles every
// CEL expression (see package expr) and the JSON Schema of the start input.
// All problems found are returned together as a *[ValidationError], each
// with the path of the offending field (for example activities[3].next) and
// its line.
//
// A Definition is safe for concurrent use. Its [Definition.Hash] identifies
// its meaning rather than its bytes: two sources that differ only in key
// order, comments, whitespace, or YAML versus JSON hash the same, so a
// deploy of an unchanged definition can be recognised.
//
// The language itself is described by a JSON Schema, [LanguageSchema], for
// editors and other tools; Parse is stricter than the schema.
package definition
