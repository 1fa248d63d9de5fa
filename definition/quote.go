package definition

import (
	"bytes"
	"regexp"
)

// blockScalarPattern matches the end of a line that opens a YAML block
// scalar (key: |, - >-, key: |2).
var blockScalarPattern = regexp.MustCompile(`(^|[\s:-])[|>][-+0-9]*\s*$`)

// quoteExpressions rewrites unquoted ${ ... } expressions as double-quoted
// YAML strings. YAML does not allow { and } inside plain scalars of flow
// collections, so a body written as {amount: ${ input.amount }} is not
// valid YAML; Parse retries such a source after this rewrite. Only
// expressions that start a scalar and close on the same line are quoted;
// quoted strings, comments and block scalars are left alone, and no line
// moves, so problems keep their line numbers. It reports whether anything
// changed.
func quoteExpressions(src []byte) ([]byte, bool) {
	var out bytes.Buffer
	out.Grow(len(src) + 64)
	changed := false
	blockIndent := -1
	var quote byte // the quote of a quoted scalar spanning lines, or 0
	for _, line := range bytes.SplitAfter(src, []byte("\n")) {
		indent := len(line) - len(bytes.TrimLeft(line, " "))
		if blockIndent >= 0 {
			if len(bytes.TrimSpace(line)) == 0 || indent > blockIndent {
				out.Write(line)
				continue
			}
			blockIndent = -1
		}
		codeEnd := len(line)
		i := 0
		for i < len(line) {
			c := line[i]
			if quote != 0 {
				switch {
				case quote == '"' && c == '\\' && i+1 < len(line),
					quote == '\'' && c == '\'' && i+1 < len(line) && line[i+1] == '\'':
					out.Write(line[i : i+2])
					i += 2
					continue
				case c == quote:
					quote = 0
				}
				out.WriteByte(c)
				i++
				continue
			}
			prev := byte(' ')
			if i > 0 {
				prev = line[i-1]
			}
			switch {
			case c == '#' && (prev == ' ' || prev == '\t' || i == 0):
				out.Write(line[i:])
				codeEnd = i
				i = len(line)
				continue
			case (c == '"' || c == '\'') && startsScalar(line, i, true):
				quote = c
				out.WriteByte(c)
				i++
				continue
			case c == '$' && i+1 < len(line) && line[i+1] == '{' && startsScalar(line, i, false):
				if end := matchExpression(line, i); end > 0 {
					out.WriteByte('"')
					writeEscaped(&out, line[i:end])
					out.WriteByte('"')
					changed = true
					line = line[end:]
					i = 0
					codeEnd = len(line)
					continue
				}
			}
			out.WriteByte(c)
			i++
		}
		if quote == 0 && blockScalarPattern.Match(bytes.TrimRight(line[:min(codeEnd, len(line))], "\r\n")) {
			blockIndent = indent
		}
	}
	return out.Bytes(), changed
}

// startsScalar reports whether a scalar may start at line[i]: at the start
// of the line or after an indicator ([, {, ",", or ":", "-", "?" followed
// by a space; directly after ":" too when adjacent is set, as in JSON).
func startsScalar(line []byte, i int, adjacent bool) bool {
	j := i - 1
	for j >= 0 && (line[j] == ' ' || line[j] == '\t') {
		j--
	}
	if j < 0 {
		return true
	}
	switch line[j] {
	case '[', '{', ',':
		return true
	case ':', '-', '?':
		return adjacent && line[j] == ':' || j < i-1
	}
	return false
}

// matchExpression returns the index just past the } closing the ${ at
// line[start], or -1 when it does not close on this line or is followed
// by more text of the same scalar.
func matchExpression(line []byte, start int) int {
	depth := 0
	for j := start + 1; j < len(line); j++ {
		switch c := line[j]; c {
		case '"', '\'':
			for j++; j < len(line) && line[j] != c && line[j] != '\n'; j++ {
				if line[j] == '\\' {
					j++
				}
			}
			if j >= len(line) || line[j] != c {
				return -1
			}
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				end := j + 1
				if end < len(line) && bytes.IndexByte([]byte(" \t\r\n,]}#"), line[end]) < 0 {
					return -1
				}
				return end
			}
		case '\n':
			return -1
		}
	}
	return -1
}

func writeEscaped(out *bytes.Buffer, s []byte) {
	for _, c := range s {
		if c == '\\' || c == '"' {
			out.WriteByte('\\')
		}
		out.WriteByte(c)
	}
}
