package jsonfield

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth is encoding/json's nesting limit: an object or array nested
// deeper (the top-level object is depth 1) is a syntax error.
const maxDepth = 10000

// AppendString appends to dst the decoded value of the top-level member
// named key of the JSON object that body starts with, and reports whether
// there is one. It agrees with encoding/json decoding body into a struct
// whose only field is a string tagged key (see the package doc): ok is true
// exactly when that decoding succeeds and a matching member with a string
// value was seen; the value appended is the field's value. When ok is
// false, dst is returned unchanged.
//
// key is matched like a field name (exactly or with Unicode simple case
// folding). AppendString does not allocate unless dst must grow; it never
// panics, whatever body holds. It is safe for concurrent use.
func AppendString(dst, body []byte, key string) ([]byte, bool) {
	var s scanner
	start, end, esc, ok := s.find(body, key)
	if !ok {
		return dst, false
	}
	return appendUnquoted(dst, body[start:end], esc), true
}

// scanner validates a JSON value while skipping it. Its stack records, one
// bit per nesting level, whether the container is an object.
type scanner struct {
	stack [(maxDepth + 63) / 64]uint64
}

// find scans the object at the start of b (after optional white space) and
// returns the bounds of the raw content of the last string value of a
// member named key, and whether that content has escapes. ok is false if b
// is not a valid JSON object, has no such member, or has one whose value is
// neither a string nor null.
func (s *scanner) find(b []byte, key string) (start, end int, esc, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return 0, 0, false, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return 0, 0, false, false
	}
	found := false
	for {
		// A member: "name" : value
		if i >= len(b) || b[i] != '"' {
			return 0, 0, false, false
		}
		nameEnd, nameEsc := scanString(b, i+1)
		if nameEnd < 0 {
			return 0, 0, false, false
		}
		match := nameMatches(b[i+1:nameEnd-1], nameEsc, key)
		i = skipSpace(b, nameEnd)
		if i >= len(b) || b[i] != ':' {
			return 0, 0, false, false
		}
		i = skipSpace(b, i+1)
		switch {
		case match && i < len(b) && b[i] == '"':
			e, vEsc := scanString(b, i+1)
			if e < 0 {
				return 0, 0, false, false
			}
			start, end, esc, found = i+1, e-1, vEsc, true
			i = e
		case match && hasLiteral(b, i, "null"):
			// null leaves a string field as it was.
			i += len("null")
		case match:
			// A number, bool, object or array: encoding/json fails
			// with an UnmarshalTypeError, and Ollama refuses the body.
			return 0, 0, false, false
		default:
			if i = s.skipValue(b, i); i < 0 {
				return 0, 0, false, false
			}
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return 0, 0, false, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			// The end of the first value: what follows is not read,
			// as by a Decoder.
			return start, end, esc, found
		default:
			return 0, 0, false, false
		}
	}
}

// skipValue validates the value starting at b[i], nested in the top-level
// object, and returns the index after it, or -1 if it is not valid JSON.
// Containers are tracked on s.stack, so depth costs no Go stack.
func (s *scanner) skipValue(b []byte, i int) int {
	depth := 0 // containers open inside this value
	for {
		// A value starts at b[i].
		if i >= len(b) {
			return -1
		}
		switch c := b[i]; c {
		case '"':
			if i, _ = scanString(b, i+1); i < 0 {
				return -1
			}
		case '{', '[':
			// depth+1 containers inside the top-level object.
			if depth+2 > maxDepth {
				return -1
			}
			obj := c == '{'
			if obj {
				s.stack[depth/64] |= 1 << (depth % 64)
			} else {
				s.stack[depth/64] &^= 1 << (depth % 64)
			}
			depth++
			i = skipSpace(b, i+1)
			if i >= len(b) {
				return -1
			}
			if obj && b[i] == '}' || !obj && b[i] == ']' {
				depth--
				i++
				break
			}
			if obj {
				if i = skipName(b, i); i < 0 {
					return -1
				}
			}
			continue // to the first element's value
		case 't':
			if !hasLiteral(b, i, "true") {
				return -1
			}
			i += len("true")
		case 'f':
			if !hasLiteral(b, i, "false") {
				return -1
			}
			i += len("false")
		case 'n':
			if !hasLiteral(b, i, "null") {
				return -1
			}
			i += len("null")
		default:
			if i = skipNumber(b, i); i < 0 {
				return -1
			}
		}
		// After a value: close containers until a comma leads to the
		// next value.
		for {
			if depth == 0 {
				return i
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return -1
			}
			obj := s.stack[(depth-1)/64]&(1<<((depth-1)%64)) != 0
			c := b[i]
			if c == ',' {
				i = skipSpace(b, i+1)
				if obj {
					if i = skipName(b, i); i < 0 {
						return -1
					}
				}
				break
			}
			if obj && c == '}' || !obj && c == ']' {
				depth--
				i++
				continue
			}
			return -1
		}
	}
}

// skipName validates a member name and its colon at b[i] and returns the
// index of the member's value (white space skipped), or -1.
func skipName(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i, _ = scanString(b, i+1); i < 0 {
		return -1
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipSpace(b, i+1)
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// hasLiteral reports whether b holds lit at i.
func hasLiteral(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

// skipNumber validates a JSON number at b[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
// and returns the index after it, or -1.
func skipNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// scanString validates the string whose content starts at b[i] (after its
// opening quote) and returns the index after its closing quote and whether
// it has escapes; -1 if it is not a valid JSON string: unterminated, with a
// control byte or an invalid escape. Like encoding/json it accepts any
// other byte, invalid UTF-8 included.
//
// The quote and the backslashes are found with bytes.IndexByte (vector
// instructions), except that the eight bytes after an escape are first
// looked at as one word, since escapes often come close together (code,
// newlines). Control bytes are looked for in one branch-free pass at the
// end.
func scanString(b []byte, i int) (end int, esc bool) {
	start := i
	for {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			return -1, esc
		}
		q += i
		// Find the escapes before q; the last may be q's own ("\"").
		for i < q {
			if len(b)-i >= 8 {
				k := bits.TrailingZeros64(backslashes(binary.LittleEndian.Uint64(b[i:]))) / 8
				if i+k >= q {
					i = q
					break
				}
				if k < 8 {
					i += k
				} else if k = bytes.IndexByte(b[i+8:q], '\\'); k >= 0 {
					i += 8 + k
				} else {
					i = q
					break
				}
			} else if b[i] != '\\' {
				i++
				continue
			}
			// An escape at i; i+1 <= q < len(b).
			esc = true
			switch escapes[b[i+1]] {
			case 2:
				i += 2
			case 6:
				if !isHex4(b[i+2:]) {
					return -1, esc
				}
				i += 6
			default:
				return -1, esc
			}
		}
		if i == q {
			if hasControl(b[start:q]) {
				return -1, esc
			}
			return q + 1, esc
		}
		// The quote was escaped: look for the next one from i.
	}
}

// escapes gives the length of the escape sequence a backslash followed by
// the index byte starts (\n, \uXXXX), 0 for an invalid one.
var escapes = [256]uint8{'"': 2, '\\': 2, '/': 2, 'b': 2, 'f': 2, 'n': 2, 'r': 2, 't': 2, 'u': 6}

// isHex4 reports whether s starts with four hex digits.
func isHex4(s []byte) bool {
	return len(s) >= 4 && hexDigit[s[0]] && hexDigit[s[1]] && hexDigit[s[2]] && hexDigit[s[3]]
}

var hexDigit = [256]bool{
	'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true, '8': true, '9': true,
	'a': true, 'b': true, 'c': true, 'd': true, 'e': true, 'f': true,
	'A': true, 'B': true, 'C': true, 'D': true, 'E': true, 'F': true,
}

// SWAR constants: one bit or value per byte of a 64-bit word.
const (
	lows  = 0x0101010101010101
	highs = 0x8080808080808080
)

// backslashes returns a word with the high bit set in the lowest byte of x
// (in memory order) that is a backslash, if any. Bytes above the lowest
// match may be flagged wrongly (a borrow propagates upwards), never bytes
// below it: only the lowest set bit is exact.
func backslashes(x uint64) uint64 {
	e := x ^ (lows * '\\')
	return (e - lows) &^ e & highs
}

// hasControl reports whether s has a byte below 0x20, which a JSON string
// may not hold unescaped. Per 8-byte word x, (x - 0x20 per byte) &^ x sets
// the high bit of a byte below 0x20; a borrow only ever comes from such a
// byte, so the test is exact.
func hasControl(s []byte) bool {
	var acc uint64
	for len(s) >= 32 {
		x0 := binary.LittleEndian.Uint64(s)
		x1 := binary.LittleEndian.Uint64(s[8:])
		x2 := binary.LittleEndian.Uint64(s[16:])
		x3 := binary.LittleEndian.Uint64(s[24:])
		acc |= (x0-lows*0x20)&^x0 | (x1-lows*0x20)&^x1 | (x2-lows*0x20)&^x2 | (x3-lows*0x20)&^x3
		s = s[32:]
	}
	for len(s) >= 8 {
		x := binary.LittleEndian.Uint64(s)
		acc |= (x - lows*0x20) &^ x
		s = s[8:]
	}
	for _, c := range s {
		if c < 0x20 {
			return true
		}
	}
	return acc&highs != 0
}

// getu4 decodes \uXXXX at the start of s into a rune, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// nextRune decodes the rune at s[i] of a validated string content as
// encoding/json's unquote does (escapes, surrogate pairs, invalid UTF-8 and
// lone surrogates as U+FFFD) and returns it with the index after it.
func nextRune(s []byte, i int) (rune, int) {
	c := s[i]
	if c < utf8.RuneSelf && c != '\\' {
		return rune(c), i + 1
	}
	if c != '\\' {
		r, n := utf8.DecodeRune(s[i:])
		return r, i + n
	}
	switch s[i+1] {
	case 'b':
		return '\b', i + 2
	case 'f':
		return '\f', i + 2
	case 'n':
		return '\n', i + 2
	case 'r':
		return '\r', i + 2
	case 't':
		return '\t', i + 2
	case 'u':
		r := getu4(s[i:])
		i += 6
		if utf16.IsSurrogate(r) {
			if d := utf16.DecodeRune(r, getu4(s[i:])); d != unicode.ReplacementChar {
				return d, i + 6
			}
			return unicode.ReplacementChar, i
		}
		return r, i
	default: // '"', '\\', '/'
		return rune(s[i+1]), i + 2
	}
}

// appendUnquoted appends the decoded string content s (validated by
// scanString; esc says whether it has escapes) to dst.
func appendUnquoted(dst, s []byte, esc bool) []byte {
	if !esc && utf8.Valid(s) {
		return append(dst, s...)
	}
	for i := 0; i < len(s); {
		var r rune
		r, i = nextRune(s, i)
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// nameMatches reports whether the member name with raw content s (validated
// by scanString; esc says whether it has escapes) names key, the way
// encoding/json matches a field name: equal once decoded, or equal after
// folding both (ASCII letters to upper case, other runes to the smallest
// rune of their simple fold orbit).
func nameMatches(s []byte, esc bool, key string) bool {
	if !esc && len(s) == len(key) {
		ascii := true
		for i := 0; i < len(s); i++ {
			a, k := s[i], key[i]
			if a|k >= utf8.RuneSelf {
				ascii = false
				break
			}
			if a != k && upper(a) != upper(k) {
				return false
			}
		}
		if ascii {
			return true
		}
	}
	i, j := 0, 0
	for i < len(s) && j < len(key) {
		var a rune
		a, i = nextRune(s, i)
		k, n := utf8.DecodeRuneInString(key[j:])
		j += n
		if a != k && foldRune(a) != foldRune(k) {
			return false
		}
	}
	return i == len(s) && j == len(key)
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// foldRune returns the smallest rune of r's simple fold orbit, as
// encoding/json folds names.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		return rune(upper(byte(r)))
	}
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// Value returns the bounds in body of the raw value (a string with its
// quotes, a number, a literal, an object or an array) of the last
// top-level member named key of the JSON object that body starts with, and
// whether there is one; ok is false too when that object is not valid
// JSON. key is matched as by AppendString. Value does not allocate and
// never panics; it is safe for concurrent use.
func Value(body []byte, key string) (start, end int, ok bool) {
	var s scanner
	return s.findValue(body, key)
}

// findValue is find for a value of any type.
func (s *scanner) findValue(b []byte, key string) (start, end int, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return 0, 0, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return 0, 0, false
	}
	found := false
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, 0, false
		}
		nameEnd, nameEsc := scanString(b, i+1)
		if nameEnd < 0 {
			return 0, 0, false
		}
		match := nameMatches(b[i+1:nameEnd-1], nameEsc, key)
		i = skipSpace(b, nameEnd)
		if i >= len(b) || b[i] != ':' {
			return 0, 0, false
		}
		i = skipSpace(b, i+1)
		e := s.skipValue(b, i)
		if e < 0 {
			return 0, 0, false
		}
		if match {
			start, end, found = i, e, true
		}
		i = skipSpace(b, e)
		if i >= len(b) {
			return 0, 0, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return start, end, found
		default:
			return 0, 0, false
		}
	}
}
