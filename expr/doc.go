// Package expr compiles and evaluates the expressions of Waymark workflow
// definitions.
//
// Expressions are written in CEL (https://cel.dev). In a definition a string
// is an expression only when the whole string, ignoring surrounding
// whitespace, has the form ${ ... }; every other string is a literal. Use
// [Unwrap] to recognise an expression and [Compile] to turn its source into a
// [Program].
//
// Programs are compiled once, when a definition is deployed, against one
// shared, immutable CEL environment, and evaluated many times against a
// [Context]. Evaluation is bounded: every program carries a CEL cost limit
// ([CostLimit]) and checks its context for cancellation inside
// comprehensions, so a hostile expression cannot hang the engine.
//
// The expression context declares these variables, all dynamically typed so
// that any field access compiles:
//
//	input     the start input of the instance
//	vars      the instance variables
//	steps     outputs of completed activities, by activity id
//	instance  {id, businessKey, definition, version}
//	now       the current time (a CEL timestamp)
//	task      {outcome, data, user} while completing a user task
//	message   the message being received by a receive activity
//	secrets   secrets by name, in the request of an http activity
//	response  {status, headers, body} in an http activity's response rules
//
// The engine sets task, message, secrets and response only where the list says; elsewhere an
// expression that reads them fails to evaluate with an error saying when
// they are available.
//
// Numbers arrive as encoding/json decodes them, as float64. An integral one
// (within ±2^53, where float64 integers are exact) is a CEL int, at any
// depth inside maps and lists, and every other number a double, so
// vars.count + 1 works on a count read from JSON. Because the type of a
// number then depends on its value, +, -, * and / also accept an int and a
// double, converting the int to double: input.amount * 1.1 works whether
// amount is 100 or 100.5. Between two ints, / is integer division (7 / 2 is
// 3); write 7 / 2.0 or double(x) / 2 for a fraction. Comparisons and ==
// compare numbers of either type by value.
//
// Results are converted to plain Go values that encoding/json can marshal:
// nil, bool, float64 (and int64/uint64 beyond ±2^53), string, []any and
// map[string]any. Timestamps become RFC 3339 strings in UTC, durations Go
// duration strings such as "1h30m0s", bytes base64 strings.
package expr
