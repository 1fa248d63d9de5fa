package definition

import _ "embed"

// LanguageSchema is the JSON Schema (draft 2020-12) of the definition
// language, for editors and other tools. It checks the shape of a
// definition; Parse checks more (transitions, reachability, joins,
// expressions, cycles). Treat it as read-only.
//
//go:embed schema/definition.schema.json
var LanguageSchema []byte
