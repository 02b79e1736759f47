package keyfile

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	json "github.com/goccy/go-json"
)

// This file edits a config document as text, so that everything the edit
// does not touch (member order, formatting, other values, the final newline)
// stays byte for byte as the operator wrote it. The document is tokenized by
// a small scanner that records where each value starts and ends; no regular
// expressions.

// maxEditDepth bounds the nesting the scanner follows. A config is four
// levels deep; the bound only keeps hostile input from exhausting the stack.
const maxEditDepth = 512

// jsonValue is a value of a document, located by byte offsets:
// data[start:end] is its text.
type jsonValue struct {
	start, end int
	kind       byte         // '{', '[', '"', 'n' (null), '0' (number), 't' (true or false)
	members    []jsonMember // of an object, in document order
	elems      []jsonValue  // of an array, in document order
}

// jsonMember is a member of an object.
type jsonMember struct {
	keyStart, keyEnd int    // data[keyStart:keyEnd] is the quoted key
	name             string // the key, unescaped
	val              jsonValue
}

// span returns where the member's text (key to end of value) starts and
// ends.
func (m jsonMember) span() (int, int) { return m.keyStart, m.val.end }

// editScanner tokenizes a JSON document.
type editScanner struct {
	data  []byte
	pos   int
	depth int
}

// parseEditable scans data, which must hold one JSON object (after an
// optional UTF-8 byte order mark) and nothing else but white space.
func parseEditable(data []byte) (jsonValue, error) {
	s := &editScanner{data: data}
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		s.pos = 3
	}
	v, err := s.value()
	if err != nil {
		return jsonValue{}, err
	}
	if v.kind != '{' {
		return jsonValue{}, errors.New("the document is not a JSON object")
	}
	s.space()
	if s.pos != len(data) {
		return jsonValue{}, s.errorf("data after the top-level object")
	}
	return v, nil
}

func (s *editScanner) errorf(format string, args ...any) error {
	return fmt.Errorf("cannot edit the document: "+format+" at byte %d", append(args, s.pos)...)
}

// space skips JSON white space.
func (s *editScanner) space() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *editScanner) value() (jsonValue, error) {
	s.space()
	if s.pos >= len(s.data) {
		return jsonValue{}, s.errorf("unexpected end of input")
	}
	start := s.pos
	switch c := s.data[s.pos]; {
	case c == '{':
		return s.object()
	case c == '[':
		return s.array()
	case c == '"':
		end, err := s.str()
		return jsonValue{start: start, end: end, kind: '"'}, err
	case c == 'n':
		return s.literal("null", 'n')
	case c == 't':
		return s.literal("true", 't')
	case c == 'f':
		return s.literal("false", 't')
	case c == '-' || c >= '0' && c <= '9':
		for s.pos < len(s.data) && strings.IndexByte("+-.eE0123456789", s.data[s.pos]) >= 0 {
			s.pos++
		}
		return jsonValue{start: start, end: s.pos, kind: '0'}, nil
	}
	return jsonValue{}, s.errorf("unexpected character %q", s.data[s.pos])
}

func (s *editScanner) literal(word string, kind byte) (jsonValue, error) {
	start := s.pos
	if !bytes.HasPrefix(s.data[s.pos:], []byte(word)) {
		return jsonValue{}, s.errorf("invalid literal")
	}
	s.pos += len(word)
	return jsonValue{start: start, end: s.pos, kind: kind}, nil
}

// str scans a string starting at its opening quote and returns the offset
// just after its closing quote.
func (s *editScanner) str() (int, error) {
	s.pos++ // the opening quote
	for s.pos < len(s.data) {
		switch c := s.data[s.pos]; {
		case c == '"':
			s.pos++
			return s.pos, nil
		case c == '\\':
			s.pos += 2 // the escaped character; \uXXXX digits are plain bytes
		case c < 0x20:
			return 0, s.errorf("control character in string")
		default:
			s.pos++
		}
	}
	return 0, s.errorf("unterminated string")
}

func (s *editScanner) enter() error {
	s.depth++
	if s.depth > maxEditDepth {
		return s.errorf("nesting deeper than %d", maxEditDepth)
	}
	return nil
}

func (s *editScanner) object() (jsonValue, error) {
	v := jsonValue{start: s.pos, kind: '{'}
	if err := s.enter(); err != nil {
		return v, err
	}
	defer func() { s.depth-- }()
	s.pos++ // {
	s.space()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		v.end = s.pos
		return v, nil
	}
	for {
		s.space()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return v, s.errorf("expected a member name")
		}
		m := jsonMember{keyStart: s.pos}
		end, err := s.str()
		if err != nil {
			return v, err
		}
		m.keyEnd = end
		if err := json.Unmarshal(s.data[m.keyStart:m.keyEnd], &m.name); err != nil {
			return v, s.errorf("invalid member name")
		}
		s.space()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return v, s.errorf("expected ':'")
		}
		s.pos++
		if m.val, err = s.value(); err != nil {
			return v, err
		}
		v.members = append(v.members, m)
		s.space()
		if s.pos < len(s.data) && s.data[s.pos] == ',' {
			s.pos++
			continue
		}
		if s.pos < len(s.data) && s.data[s.pos] == '}' {
			s.pos++
			v.end = s.pos
			return v, nil
		}
		return v, s.errorf("expected ',' or '}'")
	}
}

func (s *editScanner) array() (jsonValue, error) {
	v := jsonValue{start: s.pos, kind: '['}
	if err := s.enter(); err != nil {
		return v, err
	}
	defer func() { s.depth-- }()
	s.pos++ // [
	s.space()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		v.end = s.pos
		return v, nil
	}
	for {
		e, err := s.value()
		if err != nil {
			return v, err
		}
		v.elems = append(v.elems, e)
		s.space()
		if s.pos < len(s.data) && s.data[s.pos] == ',' {
			s.pos++
			continue
		}
		if s.pos < len(s.data) && s.data[s.pos] == ']' {
			s.pos++
			v.end = s.pos
			return v, nil
		}
		return v, s.errorf("expected ',' or ']'")
	}
}

// membersNamed returns the indices of obj's members named name, matched
// case-insensitively as the decoder matches them (see checkShape). The
// decoder applies them in order, so for a slice the last one wins.
func (obj jsonValue) membersNamed(name string) []int {
	var idx []int
	for i, m := range obj.members {
		if strings.EqualFold(m.name, name) {
			idx = append(idx, i)
		}
	}
	return idx
}

// jsonEdit replaces data[start:end] with text.
type jsonEdit struct {
	start, end int
	text       string
}

// applyEdits returns a copy of data with the edits, which must not overlap,
// applied.
func applyEdits(data []byte, edits []jsonEdit) []byte {
	edits = append([]jsonEdit(nil), edits...)
	// Few edits: insertion sort by start keeps this dependency-free.
	for i := 1; i < len(edits); i++ {
		for j := i; j > 0 && edits[j].start < edits[j-1].start; j-- {
			edits[j], edits[j-1] = edits[j-1], edits[j]
		}
	}
	var out bytes.Buffer
	out.Grow(len(data) + 64)
	last := 0
	for _, e := range edits {
		out.Write(data[last:e.start])
		out.WriteString(e.text)
		last = e.end
	}
	out.Write(data[last:])
	return out.Bytes()
}

// quoteJSON returns s as a JSON string. Unlike json.Marshal it leaves <, >
// and & alone, so a key reads in the file as it was given.
func quoteJSON(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// lineBreak returns the document's line break: "\r\n" if it uses those,
// else "\n".
func lineBreak(data []byte) string {
	if bytes.Contains(data, []byte("\r\n")) {
		return "\r\n"
	}
	return "\n"
}

// indentAfterBreak returns the white space after the last line break of ws
// and whether ws holds a line break at all.
func indentAfterBreak(ws []byte) (string, bool) {
	i := bytes.LastIndexByte(ws, '\n')
	if i < 0 {
		return "", false
	}
	return string(ws[i+1:]), true
}

// lineIndent returns the indentation of the line holding offset off when
// only white space precedes off on that line, else "".
func lineIndent(data []byte, off int) string {
	start := bytes.LastIndexByte(data[:off], '\n') + 1
	ind := data[start:off]
	if len(bytes.Trim(ind, " \t")) != 0 {
		return ""
	}
	return string(ind)
}

// removeItems returns the edit that removes the items of a container (the
// elements of an array or the members of an object) for which drop is
// true, with their separators; the kept items keep their own text and the
// separators that followed them. items are the items' spans; nil if
// nothing is dropped.
func removeItems(data []byte, container jsonValue, items [][2]int, drop []bool) *jsonEdit {
	var kept []int
	for i := range items {
		if !drop[i] {
			kept = append(kept, i)
		}
	}
	switch {
	case len(kept) == len(items):
		return nil
	case len(kept) == 0:
		// [] or {}: the white space inside goes too.
		return &jsonEdit{container.start + 1, container.end - 1, ""}
	}
	var b strings.Builder
	for j, i := range kept {
		b.Write(data[items[i][0]:items[i][1]])
		if j < len(kept)-1 {
			b.Write(data[items[i][1]:items[i+1][0]])
		}
	}
	return &jsonEdit{items[0][0], items[len(items)-1][1], b.String()}
}
