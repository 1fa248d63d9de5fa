package cli

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGraphCommand(t *testing.T) {
	t.Parallel()

	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"graph", "../../definition/testdata/valid/expense-approval.yaml"}, nil, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	require.Empty(t, stderr.String())
	require.Equal(t, `flowchart TD
  start((start))
  n0["validate<br/>task"]
  n1{"route<br/>switch"}
  n2[/"approve<br/>userTask"/]
  n3["pay<br/>http"]
  n4[/"wait_receipt<br/>receive"/]
  n5[/"cool_off<br/>timer"/]
  n6["notify_rejected<br/>emit"]
  n7(["done<br/>end"])
  n8["refund<br/>task"]
  n9["escalate<br/>emit"]
  start --> n0
  n0 --> n1
  n1 -->|"input.amount #gt; 1000"| n2
  n1 -->|"default"| n3
  n2 -->|"approved"| n3
  n2 -->|"rejected"| n6
  n2 -->|"onTimeout"| n9
  n3 --> n4
  n3 -.->|"compensate"| n8
  n4 --> n5
  n4 -->|"onTimeout"| n6
  n5 --> n7
  n9 --> n2
`, stdout.String())
}

func TestGraphCommandLabels(t *testing.T) {
	t.Parallel()

	path := writeDefinition(t, "labels.yaml", `id: labels
activities:
  - id: begin
    type: task
    handler: h
    onError: {card_declined: stop, "*": stop}
    next: fork
  - id: fork
    type: parallel
    branches: [left, right]
  - id: left
    type: switch
    cases:
      - when: ${ input.name == "a#b" && input.note.size() > 1000000 && input.kind == "some rather long text" }
        next: merge
    default: merge
  - id: right
    type: task
    handler: r
    next: merge
  - id: merge
    type: join
    next: stop
  - id: stop
    type: fail
    code: stopped
`)
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"graph", path}, nil, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	out := stdout.String()
	require.Contains(t, out, `n0 -->|"onError"| n5`)
	require.Contains(t, out, `n0 -->|"onError: card_declined"| n5`)
	require.Contains(t, out, "n1 --> n2\n  n1 --> n3\n")
	require.Contains(t, out, `n1{{"fork<br/>parallel"}}`)
	require.Contains(t, out, `n4{{"merge<br/>join"}}`)
	require.Contains(t, out, `n5(["stop<br/>fail"])`)
	require.Contains(t, out, `n2 -->|"input.name == #quot;a#35;b#quot; && input.note.size() #gt; 1000000 && input…"| n4`)
}

func TestGraphCommandInvalidDefinition(t *testing.T) {
	t.Parallel()

	path := writeDefinition(t, "invalid.yaml", invalidDefinition)
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"graph", path}, nil, &stdout, &stderr)
	require.Equal(t, 1, code)
	require.Empty(t, stdout.String())
	require.Contains(t, stderr.String(), path+`:6: activities[0].next: activity "greet": unknown activity "dnoe"`)
}

func TestGraphForEach(t *testing.T) {
	t.Parallel()
	def := writeDefinition(t, "votes.yaml", `id: votes
activities:
  - id: each
    type: forEach
    items: '${ input.approvers }'
    parallel: true
    maxConcurrency: 5
    body: vote
    completionCondition: '${ iterations.completed >= 2 }'
    next: done
  - {id: vote, type: userTask, outcomes: [approved, rejected]}
  - {id: done, type: end}
`)
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"graph", def}, nil, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	require.Equal(t, `flowchart TD
  start((start))
  n0[["each<br/>forEach"]]
  n1[/"vote<br/>userTask"/]
  n2(["done<br/>end"])
  start --> n0
  n0 --> n2
  n0 ==>|"each item, in parallel (at most 5), until iterations.comple…"| n1
`, stdout.String())
}

func TestGraphBoundary(t *testing.T) {
	t.Parallel()
	def := writeDefinition(t, "remind.yaml", `id: remind
activities:
  - id: approve
    type: userTask
    next: done
    boundary:
      - {after: 24h, every: 24h, interrupting: false, next: remind}
      - {after: 72h, next: done}
  - {id: remind, type: emit, event: reminder}
  - {id: done, type: end}
`)
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"graph", def}, nil, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	require.Contains(t, stdout.String(), `  n0 -->|"boundary: after 24h0m0s, every 24h0m0s (non-interrupting)"| n1
  n0 -->|"boundary: after 72h0m0s"| n2
`)
}

// TestGraphCommandScopes: a scope is a subgraph with its own start; its
// boundary events and next leave the subgraph, a cancel end points at it.
func TestGraphCommandScopes(t *testing.T) {
	t.Parallel()

	path := writeDefinition(t, "scopes.yaml", `id: scopes
activities:
  - id: work
    type: scope
    next: done
    boundary: [{after: 1h, next: late}]
    activities:
      - {id: a, type: userTask, next: stop}
      - {id: stop, type: end, cancel: work}
  - {id: late, type: end}
  - {id: done, type: end}
`)
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"graph", path}, nil, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	require.Equal(t, `flowchart TD
  start((start))
  subgraph n0["work<br/>scope"]
    n0_start((start))
    n1[/"a<br/>userTask"/]
    n2(["stop<br/>end"])
  end
  n3(["late<br/>end"])
  n4(["done<br/>end"])
  start --> n0
  n0_start --> n1
  n0 --> n4
  n0 -->|"boundary: after 1h0m0s"| n3
  n1 --> n2
  n2 -.-x|"cancel"| n0
`, stdout.String())
}
