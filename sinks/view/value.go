package view

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/connectd/connectd/cdc"
)

// AppendText appends the text form of v to dst: a string as it is, a
// number with every digit it arrived with, true/false, bytes as base64 (as
// Debezium encodes them in JSON), arrays, maps and structs as compact JSON.
// It reports false, appending nothing, for nil: NULL has no text form.
func AppendText(dst []byte, v any) ([]byte, bool) {
	switch x := v.(type) {
	case nil:
		return dst, false
	case string:
		return append(dst, x...), true
	case json.Number:
		return append(dst, x...), true
	case bool:
		return strconv.AppendBool(dst, x), true
	case int64:
		return strconv.AppendInt(dst, x, 10), true
	case int:
		return strconv.AppendInt(dst, int64(x), 10), true
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), true
	case uint64:
		return strconv.AppendUint(dst, x, 10), true
	case float64:
		return appendFloat(dst, x, 64), true
	case float32:
		return appendFloat(dst, float64(x), 32), true
	case []byte:
		return base64.StdEncoding.AppendEncode(dst, x), true
	case time.Time:
		return x.AppendFormat(dst, time.RFC3339Nano), true
	}
	return AppendJSON(dst, v), true
}

// appendFloat writes the shortest text that reads back as f (NaN, +Inf
// and -Inf as such).
func appendFloat(dst []byte, f float64, bits int) []byte {
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

// AppendJSON appends v as JSON: numbers verbatim, strings escaped (without
// HTML escaping), map members sorted by name, a cdc.Row as an object in its
// field order (unchanged-TOAST fields left out). NaN and infinities, which
// JSON cannot hold, become strings.
func AppendJSON(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case string:
		return AppendJSONString(dst, x)
	case json.Number:
		if x == "" {
			return append(dst, '0')
		}
		return append(dst, x...)
	case bool:
		return strconv.AppendBool(dst, x)
	case int64, int, int32, uint64, time.Time:
		if t, ok := x.(time.Time); ok {
			return AppendJSONString(dst, t.Format(time.RFC3339Nano))
		}
		b, _ := AppendText(dst, x)
		return b
	case float64, float32:
		f, _ := x.(float64)
		if g, ok := x.(float32); ok {
			f = float64(g)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			s, _ := AppendText(nil, x)
			return AppendJSONString(dst, string(s))
		}
		b, _ := AppendText(dst, x)
		return b
	case []byte:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, x)
		return append(dst, '"')
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendJSON(dst, e)
		}
		return append(dst, ']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendJSONString(dst, k)
			dst = append(dst, ':')
			dst = AppendJSON(dst, x[k])
		}
		return append(dst, '}')
	case cdc.Row:
		dst = append(dst, '{')
		first := true
		for _, f := range x {
			if f.Unchanged {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = AppendJSONString(dst, f.Name)
			dst = append(dst, ':')
			dst = AppendJSON(dst, f.Value)
		}
		return append(dst, '}')
	}
	// Anything else: let encoding/json decide, without HTML escaping.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return AppendJSONString(dst, fmt.Sprint(v))
	}
	return append(dst, bytes.TrimRight(buf.Bytes(), "\n")...)
}

// AppendObject appends row as a JSON object in field order, leaving out
// NULL fields (absent, as in a Redis hash) and unchanged-TOAST fields.
func AppendObject(dst []byte, row cdc.Row) []byte {
	dst = append(dst, '{')
	first := true
	for _, f := range row {
		if f.Unchanged || f.Value == nil {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = AppendJSONString(dst, f.Name)
		dst = append(dst, ':')
		dst = AppendJSON(dst, f.Value)
	}
	return append(dst, '}')
}

// AppendJSONString appends s as a JSON string (cdc.AppendString). Invalid
// UTF-8 becomes U+FFFD; <, > and & are not escaped.
func AppendJSONString(dst []byte, s string) []byte { return cdc.AppendString(dst, s) }

// DecodeObject parses a JSON object into a Row in member order, numbers as
// json.Number (every digit kept). Sinks use it to read back a document they
// stored, for instance to merge unchanged-TOAST fields into it.
func DecodeObject(b []byte) (cdc.Row, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("decoding JSON object: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("decoding JSON object: found %v, want an object", tok)
	}
	var row cdc.Row
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("decoding JSON object: %w", err)
		}
		name, _ := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("decoding JSON object member %q: %w", name, err)
		}
		row = append(row, cdc.Field{Name: name, Value: v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("decoding JSON object: %w", err)
	}
	return row, nil
}
