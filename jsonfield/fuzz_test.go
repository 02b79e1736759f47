package jsonfield

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzModelField checks AppendString against encoding/json on any input:
// found exactly when a Decoder decodes the body into struct{Model string}
// without error and a "model" member had a string value, with the same
// value; never a panic. On inputs encoding/json refuses, nothing is found.
// Each input is also tried as the raw content of the value and of a member
// name, where random bytes rarely land otherwise.
func FuzzModelField(f *testing.F) {
	for _, tt := range fieldTests {
		if tt.key == "" && len(tt.body) < 1000 {
			f.Add([]byte(tt.body))
		}
	}
	f.Add(chatBody(2<<10, false))
	f.Add(chatBody(2<<10, true))
	f.Add([]byte(`{"MoDeL":"a\u0000b","x":[{"y":[1,2,{"z":null}]}],"model":"\ud800\udc00"}`))
	f.Add([]byte(`mod\u0065l`))
	f.Add([]byte(`\ud83d\ude00\"\\\/\b\f\n\r\t`))
	f.Fuzz(func(t *testing.T, in []byte) {
		check(t, in)
		check(t, []byte(`{"a":[1],"model":"`+string(in)+`","b":{}}`))
		check(t, []byte(`{"`+string(in)+`":"value"}`))
	})
}

// check compares AppendString with encoding/json on body.
func check(t *testing.T, body []byte) {
	t.Helper()
	got, ok := AppendString(nil, body, "model")
	want, wantOK := reference(body, "model")
	if ok != wantOK || ok && string(got) != want {
		t.Fatalf("AppendString(%q) = %q, %v; encoding/json: %q, %v", body, got, ok, want, wantOK)
	}
	if !ok && got != nil {
		t.Fatalf("AppendString(%q) appended %q without finding a value", body, got)
	}
	if ok && !utf8.Valid(got) {
		t.Fatalf("AppendString(%q) = %q: not UTF-8", body, got)
	}
	checkValue(t, body, got, ok)
}

// checkValue checks Value against AppendString's verdict on body: where a
// string (or null) was found, Value finds that value; any value it finds
// is valid JSON.
func checkValue(t *testing.T, body, str []byte, strOK bool) {
	t.Helper()
	start, end, ok := Value(body, "model")
	if !ok {
		if strOK {
			t.Fatalf("Value(%q) found nothing; AppendString found %q", body, str)
		}
		return
	}
	raw := body[start:end]
	if !json.Valid(raw) {
		t.Fatalf("Value(%q) = %q: not JSON", body, raw)
	}
	var v string
	if strOK && string(raw) != "null" && (json.Unmarshal(raw, &v) != nil || v != string(str)) {
		t.Fatalf("Value(%q) = %q; AppendString found %q", body, raw, str)
	}
}
