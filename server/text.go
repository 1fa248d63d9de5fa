package server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// textHeaders are the request headers whose values reach the engine or
// the database.
var textHeaders = []string{"Idempotency-Key", "If-Match", "Last-Event-ID", HeaderUser, HeaderRoles}

// checkText refuses a request whose path, query, headers or body is not
// text both stores keep as sent: valid UTF-8 without NUL characters (and,
// in a JSON body, without \u0000 or unpaired surrogate escapes). Both
// stores then agree on every request, and no such value reaches a
// database that would refuse it mid-transaction. It reads the body, within
// MaxBodyBytes, and puts it back for the handler.
func (s *Server) checkText(r *http.Request) *Error {
	if !validText(r.URL.Path) {
		return textError("path", "the path")
	}
	for name, values := range r.URL.Query() {
		for _, v := range values {
			if !validText(name) || !validText(v) {
				return textError("query."+safeName(name), "query parameter "+strconv.Quote(safeName(name)))
			}
		}
	}
	for _, h := range textHeaders {
		for _, v := range r.Header.Values(h) {
			if !validText(v) {
				return textError("header."+h, "header "+h)
			}
		}
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBodyBytes+1))
	r.Body.Close()
	var maxErr *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &maxErr), err == nil && int64(len(body)) > s.cfg.MaxBodyBytes:
		return newError(http.StatusRequestEntityTooLarge, CodeTooLarge,
			"the request body is larger than "+strconv.FormatInt(s.cfg.MaxBodyBytes, 10)+" bytes (maxBodyBytes)")
	case errors.As(err, &netErr) && netErr.Timeout():
		return newError(http.StatusRequestTimeout, CodeTimeout, "the request body did not arrive in time")
	case err != nil:
		return newError(http.StatusBadRequest, CodeInvalid, "the request body could not be read: the client sent it incompletely")
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if !utf8.Valid(body) {
		return textError("body", "the request body")
	}
	if bytes.IndexByte(body, 0) >= 0 {
		return newError(http.StatusBadRequest, CodeInvalid, "the request body contains a NUL character",
			ErrorDetail{Path: "body", Message: "must not contain NUL characters"})
	}
	if msg := jsonEscapeProblem(body); msg != "" {
		return newError(http.StatusBadRequest, CodeInvalid, "the request body "+msg,
			ErrorDetail{Path: "body", Message: msg})
	}
	return nil
}

func textError(path, what string) *Error {
	return newError(http.StatusBadRequest, CodeInvalid, what+" is not valid UTF-8 text without NUL characters",
		ErrorDetail{Path: path, Message: "must be valid UTF-8 without NUL characters"})
}

// safeName is a parameter name fit for a message: invalid bytes replaced.
func safeName(s string) string { return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "?") }

func validText(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

// jsonEscapeProblem finds, in what may be JSON, a \u escape that no store
// keeps as text: \u0000, or half of a surrogate pair. In JSON a backslash
// occurs only inside strings, so no parse is needed; in YAML these escapes
// mean the same.
func jsonEscapeProblem(b []byte) string {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if i+1 >= len(b) || b[i+1] != 'u' {
			i++ // an escape of one character, perhaps \\ itself
			continue
		}
		r, ok := hex4(b, i+2)
		if !ok {
			i++
			continue
		}
		switch {
		case r == 0:
			return "contains \\u0000 (a NUL character) at byte " + strconv.Itoa(i)
		case r >= 0xDC00 && r <= 0xDFFF:
			return "contains an unpaired surrogate escape at byte " + strconv.Itoa(i)
		case r >= 0xD800 && r <= 0xDBFF:
			low, ok := rune(0), i+7 < len(b) && b[i+6] == '\\' && b[i+7] == 'u'
			if ok {
				low, ok = hex4(b, i+8)
			}
			if !ok || low < 0xDC00 || low > 0xDFFF {
				return "contains an unpaired surrogate escape at byte " + strconv.Itoa(i)
			}
			i += 11
			continue
		}
		i += 5
	}
	return ""
}

// hex4 reads four hex digits at b[at:].
func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[at:at+4]), 16, 32)
	return rune(v), err == nil
}

// validPrincipal reports whether p's user and roles are text.
func validPrincipal(p *Principal) bool {
	if !validText(p.User) {
		return false
	}
	for _, r := range p.Roles {
		if !validText(r) {
			return false
		}
	}
	return true
}
