package config

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	json "github.com/goccy/go-json"

	"github.com/ollamagw/ollama-gateway/internal/atomicfile"
)

// errEmpty is returned by Parse for a file holding nothing but white space.
var errEmpty = errors.New("empty file")

// Load reads the file at path and parses it with [Parse]. Every line of an
// error is prefixed with the path, e.g.
//
//	config.json: rateLimit.maxRequests: must be > 0 when enabled
//	config.json: open config.json: no such file or directory
//
// The returned error wraps the underlying ones, so errors.As finds a
// [*FieldError] or an *fs.PathError.
//
// The file is read with atomicfile.ReadFile: when it does not parse but is
// what an interrupted in-place rewrite (atomicfile.WriteFile) leaves, Load
// restores it from the rewrite's recovery copy, path+".new" or
// ollama-gateway-<h>.json.new in [os.TempDir] (<h>: the first 16 hex
// digits of the SHA-256 of the file's absolute name), under the file's
// lock, and returns the copy's config. Load writes nothing in any other
// case.
func Load(path string) (*Config, error) {
	data, err := atomicfile.ReadFile(path, func(b []byte) bool {
		_, err := Parse(b)
		return err == nil
	})
	if err != nil {
		return nil, &fileError{path: path, err: err}
	}
	c, err := Parse(data)
	if err != nil {
		return nil, &fileError{path: path, err: err}
	}
	return c, nil
}

// fileError prefixes every line of err with the file's path.
type fileError struct {
	path string
	err  error
}

func (e *fileError) Error() string {
	lines := strings.Split(e.err.Error(), "\n")
	for i, l := range lines {
		lines[i] = e.path + ": " + l
	}
	return strings.Join(lines, "\n")
}

func (e *fileError) Unwrap() error { return e.err }

// Parse decodes data onto [Default], normalises and validates the result.
// Absent fields keep their defaults and explicit values win; an explicitly
// empty string for a string field that has a default also gives the default.
//
// On error it returns nil and one of:
//   - "empty file", for data that is empty or only white space;
//   - a syntax error naming line and column ("line 3, column 7: invalid
//     character ..."), which wraps the decoder's *json.SyntaxError;
//   - decoding problems (unknown fields, values of the wrong type) or
//     validation problems, joined with errors.Join, each a [*FieldError].
//
// A leading UTF-8 byte order mark is ignored. Parse never panics.
func Parse(data []byte) (*Config, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if len(bytes.TrimLeft(data, " \t\r\n")) == 0 {
		return nil, errEmpty
	}

	// First pass: check syntax, then check the shape of the document
	// against Config, which reports unknown fields and type errors with
	// their JSON paths, all at once.
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, decodeError(data, err)
	}
	var errs []error
	checkKeyObjects(doc, &errs)
	checkShape(withoutAddresses(doc), reflect.TypeFor[Config](), "", &errs)
	checkAddressesShape(doc, &errs)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	// Second pass: decode onto the defaults. It fails only on what the
	// first pass does not check, such as 1e3 for an integer. The Ollama
	// addresses decode through addressEntry, which takes both forms
	// (decodeConfig).
	c := Default()
	if err := decodeConfig(data, &c); err != nil {
		return nil, decodeError(data, err)
	}
	c.normalise()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// normalise applies the defaults of explicitly empty strings and trims the
// Ollama addresses.
func (c *Config) normalise() {
	def := Default()
	orDefault := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	orDefault(&c.GatewayAddress, def.GatewayAddress)
	orDefault(&c.AuthHeaderName, def.AuthHeaderName)
	orDefault(&c.LoadBalancer.HealthCheckEndpoint, def.LoadBalancer.HealthCheckEndpoint)
	orDefault(&c.LoadBalancer.Strategy, def.LoadBalancer.Strategy)
	orDefault(&c.Metrics.Endpoint, def.Metrics.Endpoint)
	orDefault(&c.Metrics.Namespace, def.Metrics.Namespace)
	orDefault(&c.Console.Path, def.Console.Path)
	for i, a := range c.OllamaAddresses {
		c.OllamaAddresses[i] = strings.TrimSpace(a)
	}
	if r := c.Redis; r != nil {
		orDefault(&r.KeyPrefix, defaultRedisKeyPrefix)
		orDefault(&r.FailMode, defaultRedisFailMode)
		if r.TimeoutMilliseconds == 0 {
			r.TimeoutMilliseconds = defaultRedisTimeoutMilliseconds
		}
		if r.LeaseMilliseconds == 0 {
			r.LeaseMilliseconds = defaultRedisLeaseMilliseconds
		}
	}
}

// syntaxError is a JSON syntax error with its position in the input.
type syntaxError struct {
	line, column int
	msg          string
	err          error
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.line, e.column, e.msg)
}

func (e *syntaxError) Unwrap() error { return e.err }

// decodeError turns an error of the decoder into one that names a position
// or a field.
func decodeError(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		msg := strings.TrimPrefix(se.Error(), "json: ")
		// Offset counts the bytes read, the offending one included; at the
		// end of the input there is no offending byte.
		pos := int(min(max(se.Offset-1, 0), int64(len(data))))
		if strings.Contains(msg, "unexpected end of JSON input") {
			pos = len(data)
		}
		line, col := position(data, pos)
		return &syntaxError{line: line, column: col, msg: msg, err: err}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return typeError(te)
	}
	return err
}

// position returns the 1-based line and column (in characters) of the byte
// at offset off of data.
func position(data []byte, off int) (line, column int) {
	before := data[:off]
	line = 1 + bytes.Count(before, []byte{'\n'})
	start := bytes.LastIndexByte(before, '\n') + 1
	return line, 1 + utf8.RuneCount(before[start:])
}

// typeError turns a type error of the decoder into a *FieldError.
func typeError(te *json.UnmarshalTypeError) *FieldError {
	// The decoder's path is dotted, with array indices as elements.
	var path string
	if te.Field != "" {
		for _, seg := range strings.Split(te.Field, ".") {
			if _, err := strconv.Atoi(seg); err == nil {
				path += "[" + seg + "]"
			} else {
				path = joinPath(path, seg)
			}
		}
	}
	got := te.Value
	var problem string
	if num, ok := strings.CutPrefix(got, "number "); ok && te.Type != nil {
		switch te.Type.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			if strings.ContainsAny(num, ".eE") {
				problem = "expected a whole number without fraction or exponent, got " + num
			} else {
				problem = "number " + num + " is out of range"
			}
		default:
			problem = "number " + num + " is out of range"
		}
	} else {
		problem = "expected " + expected(te.Type) + ", got " + got
	}
	return &FieldError{Field: path, Problem: problem}
}

// keyEntryType is the one type of the config that takes two JSON forms.
var keyEntryType = reflect.TypeFor[KeyEntry]()

// checkShape checks that v, a decoded JSON value, fits a Go value of type t:
// objects have only known fields, and every value has the right JSON type.
// It appends a *FieldError to errs for each problem. Keys match field names
// case-insensitively, as the decoder matches them.
func checkShape(v any, t reflect.Type, path string, errs *[]error) {
	mismatch := func() {
		*errs = append(*errs, &FieldError{
			Field:   path,
			Problem: "expected " + expected(t) + ", got " + jsonKind(v),
		})
	}
	if t == keyEntryType {
		if _, ok := v.(string); ok {
			return // the string form of a key entry
		}
		if _, ok := v.(map[string]any); !ok {
			*errs = append(*errs, &FieldError{Field: path, Problem: "expected a string or an object, got " + jsonKind(v)})
			return
		}
	}
	switch t.Kind() {
	case reflect.Pointer: // an optional block
		checkShape(v, t.Elem(), path, errs)
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			mismatch()
			return
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		known := make(map[string]bool, len(obj))
		for _, f := range jsonFields(t) {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			for _, k := range keys {
				if !strings.EqualFold(k, name) {
					continue
				}
				known[k] = true
				if obj[k] != nil { // null leaves the field as it is
					checkShape(obj[k], f.Type, joinPath(path, name), errs)
				}
			}
		}
		for _, k := range keys {
			if !known[k] {
				*errs = append(*errs, &FieldError{Field: joinPath(path, k), Problem: "unknown field"})
			}
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			mismatch()
			return
		}
		names := slices.Sorted(maps.Keys(obj))
		for i, k := range names {
			if obj[k] != nil {
				// Map keys may be secrets (RateLimit.PerKey): name the
				// entry the way validation does.
				checkShape(obj[k], t.Elem(), path+"["+publicKeyName(k, i)+"]", errs)
			}
		}
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			mismatch()
			return
		}
		for i, e := range arr {
			checkShape(e, t.Elem(), path+"["+strconv.Itoa(i)+"]", errs)
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			mismatch()
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			mismatch()
		}
	case reflect.Int, reflect.Int64:
		f, ok := v.(float64)
		switch {
		case !ok:
			mismatch()
		case f != math.Trunc(f):
			*errs = append(*errs, &FieldError{
				Field:   path,
				Problem: "expected a whole number, got " + strconv.FormatFloat(f, 'g', -1, 64),
			})
		}
		// The range is left to the decoder, which reads the exact digits.
	default:
		// Config holds no other kinds; the decoder reports any problem.
	}
}

// expected describes the JSON value a Go type takes.
func expected(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.String {
			return "an array of strings"
		}
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a " + t.String()
}

// jsonKind names the JSON type of a decoded value, never its content.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

// joinPath appends the object key k to a JSON path. A key that is not a
// plain name is quoted: rateLimit["max requests"].
func joinPath(path, k string) string {
	plain := k != ""
	for _, r := range k {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	switch {
	case !plain:
		return path + "[" + strconv.Quote(k) + "]"
	case path == "":
		return k
	}
	return path + "." + k
}

// jsonFields returns the fields of struct type t as JSON sees them: those
// of an embedded struct without a JSON name (KeyPolicy) in its place.
func jsonFields(t reflect.Type) []reflect.StructField {
	fields := make([]reflect.StructField, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			fields = append(fields, jsonFields(f.Type)...)
			continue
		}
		fields = append(fields, f)
	}
	return fields
}
