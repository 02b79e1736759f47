package ollamaapi

import (
	"bytes"

	"github.com/ollamagw/ollama-gateway/jsonfield"
)

// includeUsage is the member that asks a stream for its usage.
const includeUsage = `"include_usage":true`

// AppendStreamUsage appends to dst the JSON request body of a StreamUsage
// route made to ask for its usage, and reports whether it changed
// anything: when body is an object with "stream": true and without
// "stream_options": {"include_usage": true}, "include_usage": true is set
// in its stream_options object (added, or replacing a null one), every
// other byte kept. A body that already asks, does not stream, is not valid
// JSON or has a stream_options that is not an object (which the backend
// refuses) is not changed: dst is returned as it was, with false. It does
// not allocate unless dst must grow.
func AppendStreamUsage(dst, body []byte) ([]byte, bool) {
	s, e, ok := jsonfield.Value(body, "stream")
	if !ok || string(body[s:e]) != "true" {
		return dst, false
	}
	s, e, ok = jsonfield.Value(body, "stream_options")
	if !ok {
		// After the opening brace: the object has a member (stream).
		i := bytes.IndexByte(body, '{') + 1
		dst = append(dst, body[:i]...)
		dst = append(dst, `"stream_options":{`+includeUsage+`},`...)
		return append(dst, body[i:]...), true
	}
	opts := body[s:e]
	switch {
	case string(opts) == "null":
		dst = append(dst, body[:s]...)
		dst = append(dst, `{`+includeUsage+`}`...)
		return append(dst, body[e:]...), true
	case opts[0] != '{':
		return dst, false
	}
	is, ie, ok := jsonfield.Value(opts, "include_usage")
	switch {
	case ok && string(opts[is:ie]) == "true":
		return dst, false
	case ok: // false or null: made true
		dst = append(dst, body[:s+is]...)
		dst = append(dst, "true"...)
		return append(dst, body[s+ie:]...), true
	}
	// Inside the object, before its first member if it has one.
	dst = append(dst, body[:s+1]...)
	dst = append(dst, includeUsage...)
	if len(bytes.TrimSpace(opts[1:len(opts)-1])) > 0 {
		dst = append(dst, ',')
	}
	return append(dst, body[s+1:]...), true
}

// IsUsageOnlyChunk reports whether an SSE event of a StreamUsage route's
// stream (its bytes, "data: {...}" and the blank line after it) is the
// chunk that carries the usage only, which the stream sends last, before
// "data: [DONE]", when the request asked for it: its "choices" are empty,
// where every other chunk has one. event may be the start of an event
// only (complete false): decided is false when that start is too short to
// tell. It does not allocate.
func IsUsageOnlyChunk(event []byte, complete bool) (usageOnly, decided bool) {
	const choices = `"choices":[`
	i := bytes.Index(event, []byte(choices))
	switch {
	case i < 0:
		return false, complete
	case i+len(choices) == len(event):
		return false, complete
	}
	return event[i+len(choices)] == ']', true
}
