// Package jsonfield reads one top-level string member of a JSON object
// without decoding the rest, and without allocating: the gateway uses it to
// learn which model a request body names, to route it to a backend that has
// that model.
//
// The answer is the one Ollama itself gets when it decodes the body (gin's
// ShouldBindJSON: an encoding/json Decoder into a struct with a
// `Model string` field tagged "model"):
//
//   - member names match as encoding/json matches a field name: exactly or
//     case-insensitively with Unicode simple folding ("MODEL", "Model" and
//     "mod\u0065l" all name "model");
//   - when several members match, the last one wins; a null value leaves
//     the earlier one in place;
//   - a value with escapes (\" \\ \n \uXXXX, surrogate pairs) is decoded,
//     and invalid UTF-8 becomes U+FFFD, as encoding/json does;
//   - the whole first JSON value is validated (structure, strings, numbers,
//     literals, nesting up to encoding/json's 10,000 levels); bytes after it
//     are ignored, as a Decoder ignores them. A body encoding/json would
//     refuse (a syntax error, or a matching member that is neither a string
//     nor null) yields no value.
//
// Strings are skipped eight bytes at a time (looking for a quote, a
// backslash or a control byte in one word), so a 100 KB chat body is
// scanned in a few tens of microseconds.
package jsonfield
