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
//	  {"url": "http://gpu1:11434/", "maxConcurrent": 4}
//	]
//
// Parse keeps the URLs in Config.OllamaAddresses, so that everything
// reading them is unchanged, and the options in Config.AddressOptions.

// addressEntry decodes one ollamaAddresses entry in either form.
type addressEntry struct {
	URL           string `json:"url"`
	MaxConcurrent *int   `json:"maxConcurrent"`
	object        bool
}

// UnmarshalJSON takes a string or an object.
func (e *addressEntry) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &e.URL)
	}
	var o struct {
		URL           string `json:"url"`
		MaxConcurrent *int   `json:"maxConcurrent"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	e.URL, e.MaxConcurrent, e.object = o.URL, o.MaxConcurrent, true
	return nil
}

// setAddresses stores the decoded entries in c: the URLs in
// OllamaAddresses, the options in AddressOptions (nil when every entry is
// a string). An object's maxConcurrent, when given, must be >= 1.
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
		if e.MaxConcurrent != nil {
			if *e.MaxConcurrent < 1 {
				errs = append(errs, &FieldError{Field: addressField(i, "maxConcurrent"), Problem: "must be >= 1"})
				continue
			}
			c.AddressOptions[i].MaxConcurrent = *e.MaxConcurrent
		}
	}
	return errors.Join(errs...)
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
// of strings and objects with a string "url" and a whole-number
// "maxConcurrent".
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
			case strings.EqualFold(k, "maxConcurrent"):
				f, ok := v.(float64)
				switch {
				case v == nil:
				case !ok:
					add(addressField(i, "maxConcurrent"), "expected a number, got "+jsonKind(v))
				case f != math.Trunc(f):
					add(addressField(i, "maxConcurrent"), "expected a whole number, got "+strconv.FormatFloat(f, 'g', -1, 64))
				}
			default:
				add(addressField(i, k), "unknown field")
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
