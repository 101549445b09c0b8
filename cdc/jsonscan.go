package cdc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// A small JSON reader for the hot path of sinks: change events are flat
// objects of scalars, and encoding/json's reflection and token API cost
// several times more than the rest of a sink. Nested objects and arrays,
// and strings with escapes, fall back to encoding/json, so the accepted
// language is exactly JSON.

var errSyntax = errors.New("invalid JSON")

// eachMember calls fn with each member's name and raw value of the JSON
// object b, in order.
func eachMember(b []byte, fn func(name string, raw []byte) error) error {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return fmt.Errorf("%w: expected an object", errSyntax)
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		if skipWS(b, i+1) != len(b) {
			return fmt.Errorf("%w: data after the object", errSyntax)
		}
		return nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return fmt.Errorf("%w: expected a member name at byte %d", errSyntax, i)
		}
		end, err := stringEnd(b, i)
		if err != nil {
			return err
		}
		name, err := decodeString(b[i:end])
		if err != nil {
			return err
		}
		i = skipWS(b, end)
		if i >= len(b) || b[i] != ':' {
			return fmt.Errorf("%w: expected ':' after %q", errSyntax, name)
		}
		i = skipWS(b, i+1)
		vend, err := valueEnd(b, i)
		if err != nil {
			return fmt.Errorf("member %q: %w", name, err)
		}
		if err := fn(name, b[i:vend]); err != nil {
			return err
		}
		i = skipWS(b, vend)
		if i >= len(b) {
			return fmt.Errorf("%w: unterminated object", errSyntax)
		}
		if b[i] == '}' {
			if skipWS(b, i+1) != len(b) {
				return fmt.Errorf("%w: data after the object", errSyntax)
			}
			return nil
		}
		if b[i] != ',' {
			return fmt.Errorf("%w: expected ',' or '}' at byte %d", errSyntax, i)
		}
		i = skipWS(b, i+1)
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the closing quote of the string that
// starts at b[i].
func stringEnd(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("%w: unterminated string", errSyntax)
}

// valueEnd returns the index after the JSON value that starts at b[i].
func valueEnd(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, fmt.Errorf("%w: missing value", errSyntax)
	}
	switch c := b[i]; {
	case c == '"':
		return stringEnd(b, i)
	case c == '{' || c == '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e, err := stringEnd(b, j)
				if err != nil {
					return 0, err
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("%w: unterminated %c", errSyntax, c)
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
			j++
		}
		if j == i {
			return 0, fmt.Errorf("%w: missing value", errSyntax)
		}
		return j, nil
	}
}

// decodeString decodes a quoted JSON string.
func decodeString(q []byte) (string, error) {
	body := q[1 : len(q)-1]
	if bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) && !hasControl(body) {
		return string(body), nil
	}
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return "", err
	}
	return s, nil
}

func hasControl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}

// decodeValue decodes one raw JSON value: nil, string, json.Number, bool,
// or (through encoding/json) []any and map[string]any.
func decodeValue(raw []byte) (any, error) {
	switch raw[0] {
	case '"':
		return decodeString(raw)
	case 'n':
		if string(raw) == "null" {
			return nil, nil
		}
	case 't':
		if string(raw) == "true" {
			return true, nil
		}
	case 'f':
		if string(raw) == "false" {
			return false, nil
		}
	case '{', '[':
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		return v, nil
	default:
		if validNumber(raw) {
			return json.Number(raw), nil
		}
	}
	return nil, fmt.Errorf("%w: bad value %.40q", errSyntax, raw)
}

// validNumber checks JSON's number grammar.
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return false
	}
	if b[i] == '0' {
		i++
	} else if b[i] >= '1' && b[i] <= '9' {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	} else {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(b)
}

// trimJSONSpace trims JSON whitespace (space, tab, CR, LF) from both ends.
func trimJSONSpace(b []byte) []byte {
	b = b[skipWS(b, 0):]
	for len(b) > 0 {
		switch b[len(b)-1] {
		case ' ', '\t', '\n', '\r':
			b = b[:len(b)-1]
			continue
		}
		break
	}
	return b
}
