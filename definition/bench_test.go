package definition

import (
	"fmt"
	"strings"
	"testing"
)

// fiftyActivities generates a definition of 50 activities mixing every
// kind of step and about 40 expressions.
func fiftyActivities() []byte {
	var b strings.Builder
	b.WriteString(`id: bench
input:
  type: object
  required: [amount]
  properties: {amount: {type: number, minimum: 0}, region: {type: string}}
defaults:
  retry: {maxAttempts: 3, initialInterval: 1s}
activities:
`)
	const n = 50
	for i := range n - 1 {
		next := fmt.Sprintf("a%d", i+1)
		switch i % 5 {
		case 0:
			fmt.Fprintf(&b, "  - id: a%d\n    type: task\n    handler: h%d\n    input: {amount: ${ input.amount }, i: %d}\n    output: out%d\n    next: %s\n", i, i, i, i, next)
		case 1:
			fmt.Fprintf(&b, "  - id: a%d\n    type: switch\n    cases:\n      - when: ${ input.amount > %d && vars.region == \"eu\" }\n        next: %s\n    default: %s\n", i, i*10, next, next)
		case 2:
			fmt.Fprintf(&b, "  - id: a%d\n    type: http\n    request:\n      method: POST\n      url: ${ \"https://svc.internal/items/\" + string(%d) }\n      body: {amount: ${ input.amount * 2.0 }, region: ${ vars.region }}\n    retry: {maxAttempts: 5}\n    next: %s\n", i, i, next)
		case 3:
			fmt.Fprintf(&b, "  - id: a%d\n    type: set\n    vars:\n      v%d: ${ steps.a%d.?x.orValue(0) }\n      region: eu\n    next: %s\n", i, i, i-3, next)
		case 4:
			fmt.Fprintf(&b, "  - id: a%d\n    type: userTask\n    title: ${ \"Step \" + string(%d) }\n    outcomes: [ok, ko]\n    due: 2d\n    next: {ok: %s, ko: a0}\n", i, i, next)
		}
	}
	fmt.Fprintf(&b, "  - id: a%d\n    type: end\n", n-1)
	return []byte(b.String())
}

func BenchmarkParse50Activities(b *testing.B) {
	src := fiftyActivities()
	if _, err := Parse(src); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := Parse(src); err != nil {
			b.Fatal(err)
		}
	}
}
