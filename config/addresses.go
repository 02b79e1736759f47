package config

import (
	"errors"
	"math"
	"strconv"
	"strings"

	json "github.com/goccy/go-json"
)

// An ollamaAddresses entry is a URL string, as the spec has it, or an
// object with the URL and its options:
//
//	"ollamaAddresses": [
//	  "http://gpu0:11434/",
//	  {"url": "http://gpu1:11434/", "maxConcurrent": 4, "numParallel": 2, "maxLoadedModels": 2}
//	]
//
// Parse keeps the URLs in Config.OllamaAddresses, so that everything
// reading them is unchanged, and the options in Config.AddressOptions.

// addressObject is the object form of an ollamaAddresses entry.
type addressObject struct {
	URL             string `json:"url"`
	MaxConcurrent   *int   `json:"maxConcurrent"`
	NumParallel     *int   `json:"numParallel"`
	MaxLoadedModels *int   `json:"maxLoadedModels"`
}

// addressEntry decodes one ollamaAddresses entry in either form.
type addressEntry struct {
	addressObject
	object bool
}

// UnmarshalJSON takes a string or an object.
func (e *addressEntry) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &e.URL)
	}
	e.object = true
	return json.Unmarshal(b, &e.addressObject)
}

// addressCounts are the whole-number options of an object entry, by
// their names in the file; each, when given, must be >= 1.
var addressCounts = []struct {
	name string
	in   func(*addressObject) *int
	out  func(*AddressOptions) *int
}{
	{"maxConcurrent", func(o *addressObject) *int { return o.MaxConcurrent }, func(o *AddressOptions) *int { return &o.MaxConcurrent }},
	{"numParallel", func(o *addressObject) *int { return o.NumParallel }, func(o *AddressOptions) *int { return &o.NumParallel }},
	{"maxLoadedModels", func(o *addressObject) *int { return o.MaxLoadedModels }, func(o *AddressOptions) *int { return &o.MaxLoadedModels }},
}

// setAddresses stores the decoded entries in c: the URLs in
// OllamaAddresses, the options in AddressOptions (nil when every entry is
// a string). An object's counts, when given, must be >= 1.
func (c *Config) setAddresses(entries []addressEntry) error {
	if entries == nil {
		return nil
	}
	var errs []error
	c.OllamaAddresses = make([]string, len(entries))
	c.AddressOptions = nil
	for i, e := range entries {
		c.OllamaAddresses[i] = e.URL
		if !e.object {
			continue
		}
		if c.AddressOptions == nil {
			c.AddressOptions = make([]AddressOptions, len(entries))
		}
		for _, f := range addressCounts {
			v := f.in(&e.addressObject)
			switch {
			case v == nil:
			case *v < 1:
				errs = append(errs, &FieldError{Field: addressField(i, f.name), Problem: "must be >= 1"})
			default:
				*f.out(&c.AddressOptions[i]) = *v
			}
		}
	}
	return errors.Join(errs...)
}

// isAddressCount reports whether k names one of addressCounts, matched as
// the decoder matches keys, without case, and returns its spelling.
func isAddressCount(k string) (string, bool) {
	for _, f := range addressCounts {
		if strings.EqualFold(k, f.name) {
			return f.name, true
		}
	}
	return "", false
}

// withoutAddresses returns the document without its ollamaAddresses
// member (matched as the decoder matches keys, without case), which
// checkAddressesShape checks instead. doc itself is not modified.
func withoutAddresses(doc any) any {
	obj, ok := doc.(map[string]any)
	if !ok {
		return doc
	}
	rest := make(map[string]any, len(obj))
	for k, v := range obj {
		if !strings.EqualFold(k, "ollamaAddresses") {
			rest[k] = v
		}
	}
	return rest
}

// checkAddressesShape checks the ollamaAddresses member of doc: an array
// of strings and objects with a string "url" and whole-number counts
// (addressCounts).
func checkAddressesShape(doc any, errs *[]error) {
	obj, _ := doc.(map[string]any)
	for k, v := range obj {
		if !strings.EqualFold(k, "ollamaAddresses") || v == nil {
			continue
		}
		arr, ok := v.([]any)
		if !ok {
			*errs = append(*errs, &FieldError{Field: "ollamaAddresses",
				Problem: "expected an array of strings or objects, got " + jsonKind(v)})
			continue
		}
		for i, e := range arr {
			checkAddressShape(i, e, errs)
		}
	}
}

func checkAddressShape(i int, e any, errs *[]error) {
	add := func(field, problem string) {
		*errs = append(*errs, &FieldError{Field: field, Problem: problem})
	}
	switch e := e.(type) {
	case string:
		return
	case map[string]any:
		hasURL := false
		for k, v := range e {
			switch {
			case strings.EqualFold(k, "url"):
				if _, ok := v.(string); !ok {
					add(addressField(i, "url"), "expected a string, got "+jsonKind(v))
				}
				hasURL = true
			default:
				name, ok := isAddressCount(k)
				if !ok {
					add(addressField(i, k), "unknown field")
					break
				}
				f, ok := v.(float64)
				switch {
				case v == nil:
				case !ok:
					add(addressField(i, name), "expected a number, got "+jsonKind(v))
				case f != math.Trunc(f):
					add(addressField(i, name), "expected a whole number, got "+strconv.FormatFloat(f, 'g', -1, 64))
				}
			}
		}
		if !hasURL {
			add(addressField(i, "url"), "is required")
		}
	default:
		add("ollamaAddresses["+strconv.Itoa(i)+"]", "expected a string or an object, got "+jsonKind(e))
	}
}

func addressField(i int, name string) string {
	return "ollamaAddresses[" + strconv.Itoa(i) + "]." + name
}
