package keyfile

import (
	"encoding/hex"
	"errors"
	"strings"

	json "github.com/goccy/go-json"

	"github.com/ollamagw/ollama-gateway/config"
)

// The textual edits of AddKey and RemoveKey, on the scanner of
// jsonedit.go.

// insertAPIKey returns a copy of data, a config document, with key
// appended to its top-level "apiKeys" array, formatted like the
// surrounding text; the rest of data is unchanged. Of several "apiKeys"
// members (in any letter case) it edits the last, the one the decoder
// keeps; a null one becomes a one-element array, and a missing one is
// added as the object's first member. The result is not validated.
func insertAPIKey(data []byte, key string) ([]byte, error) {
	return insertAPIElem(data, quoteJSON(key))
}

// insertEntry is insertAPIKey for a key entry: a string when it holds
// nothing but a key, else its object, written on one line.
func insertEntry(data []byte, e config.KeyEntry) ([]byte, error) {
	if !e.HasPolicy() && e.SHA256 == "" {
		return insertAPIKey(data, e.Key)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return insertAPIElem(data, string(b))
}

// insertAPIElem is insertAPIKey for q, the JSON text of an element.
func insertAPIElem(data []byte, q string) ([]byte, error) {
	doc, err := parseEditable(data)
	if err != nil {
		return nil, err
	}
	idx := doc.membersNamed("apiKeys")
	if len(idx) == 0 {
		return applyEdits(data, []jsonEdit{insertFirstMember(data, doc, `"apiKeys"`, "["+q+"]")}), nil
	}
	m := doc.members[idx[len(idx)-1]]
	switch m.val.kind {
	case 'n':
		return applyEdits(data, []jsonEdit{{m.val.start, m.val.end, "[" + q + "]"}}), nil
	case '[':
		return applyEdits(data, []jsonEdit{appendElem(data, m, q)}), nil
	}
	return nil, errors.New("apiKeys is not an array")
}

// appendElem returns the edit that appends the JSON text q to the array
// value of m.
func appendElem(data []byte, m jsonMember, q string) jsonEdit {
	arr := m.val
	n := len(arr.elems)
	switch {
	case n >= 2:
		// Repeat the separator between the last two elements.
		last := arr.elems[n-1]
		sep := string(data[arr.elems[n-2].end:last.start])
		return jsonEdit{last.end, last.end, sep + q}
	case n == 1:
		only := arr.elems[0]
		sep := ", "
		if ind, multiline := indentAfterBreak(data[arr.start+1 : only.start]); multiline {
			sep = "," + lineBreak(data) + ind
		}
		return jsonEdit{only.end, only.end, sep + q}
	}
	inner := data[arr.start+1 : arr.end-1] // white space only
	closing, multiline := indentAfterBreak(inner)
	if !multiline {
		return jsonEdit{arr.start + 1, arr.end - 1, q}
	}
	// One level deeper than the closing bracket; the member's own
	// indentation is the document's first level, so it is one level.
	nl := lineBreak(data)
	elem := closing + lineIndent(data, m.keyStart)
	return jsonEdit{arr.start + 1, arr.end - 1, nl + elem + q + nl + closing}
}

// insertFirstMember returns the edit that inserts the member name: val
// (both JSON text) as the first member of obj, spaced like the members
// already there.
func insertFirstMember(data []byte, obj jsonValue, name, val string) jsonEdit {
	if len(obj.members) == 0 {
		return jsonEdit{obj.start + 1, obj.start + 1, name + ": " + val}
	}
	first := obj.members[0]
	colon := string(data[first.keyEnd:first.val.start]) // ':' and its spacing
	var sep string
	switch ind, multiline := indentAfterBreak(data[obj.start+1 : first.keyStart]); {
	case len(obj.members) >= 2:
		sep = string(data[first.val.end:obj.members[1].keyStart])
	case multiline:
		sep = "," + lineBreak(data) + ind
	case colon == ":":
		sep = "," // compact
	default:
		sep = ", "
	}
	return jsonEdit{first.keyStart, first.keyStart, name + colon + val + sep}
}

// removeKeyID returns a copy of data, a config document, without the
// entries of every top-level "apiKeys" and "adminKeys" member whose key id
// (KeyID of KeyDigest, or of a publicKey entry's Fingerprint) is id, and n, how many entries it removed. It also
// removes the rateLimit.perKey entries that named only removed keys, which
// would otherwise no longer validate. The rest of data is unchanged. The
// result is not validated.
func removeKeyID(data []byte, id string) (out []byte, n int, err error) {
	doc, err := parseEditable(data)
	if err != nil {
		return nil, 0, err
	}
	var edits []jsonEdit
	removed := map[string]bool{} // the names perKey may use for a removed key
	remaining := map[string]bool{}
	for _, field := range []string{"apiKeys", "adminKeys"} {
		idx := doc.membersNamed(field)
		for j, mi := range idx {
			arr := doc.members[mi].val
			if arr.kind != '[' {
				continue
			}
			items := make([][2]int, len(arr.elems))
			drop := make([]bool, len(arr.elems))
			for i, e := range arr.elems {
				items[i] = [2]int{e.start, e.end}
				if e.kind != '"' && e.kind != '{' {
					continue
				}
				var ke config.KeyEntry
				if json.Unmarshal(data[e.start:e.end], &ke) != nil {
					// A publicKey entry: its id is that of its fingerprint.
					// No perKey entry can name it.
					var pk config.PublicKey
					if e.kind == '{' && json.Unmarshal(data[e.start:e.end], &pk) == nil &&
						pk.Fingerprint() != ([32]byte{}) && config.KeyID(pk.Fingerprint()) == id {
						drop[i] = true
						n++
					}
					continue
				}
				k := ke.Credential()
				if k == "" {
					continue // no secret key: no id to match
				}
				if config.KeyID(config.KeyDigest(k)) == id {
					drop[i] = true
					n++
					addKeyNames(removed, k)
				} else if j == len(idx)-1 { // the member the decoder keeps
					addKeyNames(remaining, k)
				}
			}
			if e := removeItems(data, arr, items, drop); e != nil {
				edits = append(edits, *e)
			}
		}
	}
	if n > 0 {
		edits = append(edits, removePerKey(data, doc, removed, remaining)...)
	}
	return applyEdits(data, edits), n, nil
}

// addKeyNames adds the names by which a rateLimit.perKey entry may name
// key k to set, as validation reads them (see perKey in config/validate.go).
func addKeyNames(set map[string]bool, k string) {
	d := config.KeyDigest(k)
	set[config.KeyID(d)] = true
	set["sha256:"+hex.EncodeToString(d[:])] = true
	set[k] = true
}

// removePerKey returns the edits that remove every rateLimit.perKey entry
// that names a removed key and no remaining one. The decoder merges
// repeated objects, so every rateLimit and perKey member is edited.
func removePerKey(data []byte, doc jsonValue, removed, remaining map[string]bool) []jsonEdit {
	names := func(set map[string]bool, name string) bool {
		return set[strings.ToLower(name)] || set[name]
	}
	var edits []jsonEdit
	for _, ri := range doc.membersNamed("rateLimit") {
		rl := doc.members[ri].val
		if rl.kind != '{' {
			continue
		}
		for _, pi := range rl.membersNamed("perKey") {
			pk := rl.members[pi].val
			if pk.kind != '{' {
				continue
			}
			items := make([][2]int, len(pk.members))
			drop := make([]bool, len(pk.members))
			for i, m := range pk.members {
				items[i][0], items[i][1] = m.span()
				drop[i] = names(removed, m.name) && !names(remaining, m.name)
			}
			if e := removeItems(data, pk, items, drop); e != nil {
				edits = append(edits, *e)
			}
		}
	}
	return edits
}
