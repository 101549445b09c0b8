package view

import (
	"bytes"

	"github.com/connectd/connectd/cdc"
)

// DecodeLean decodes what a view needs of a change event: op, key, the
// row after the change and, when withBefore is set, the row before it.
// The source block, the transaction and the row before (unless asked for)
// are skipped without being decoded, which makes it several times cheaper
// than m.Decode for typical events. Anything unusual — a schema/payload
// wrapper, malformed JSON, a missing member — falls back to m.Decode, so
// results and errors (which name topic, partition and offset) are the
// same.
func DecodeLean(m *cdc.Message, withBefore bool) (cdc.Record, error) {
	v := bytes.TrimSpace(m.Value)
	if m.Value == nil || !bytes.HasPrefix(v, []byte("{")) || bytes.HasPrefix(v, []byte(`{"schema"`)) {
		return m.Decode()
	}
	var op, before, after []byte
	ok := eachTop(v, func(name, raw []byte) {
		switch string(name) {
		case "op":
			op = raw
		case "before":
			before = raw
		case "after":
			after = raw
		}
	})
	if !ok || op == nil {
		return m.Decode()
	}
	if !withBefore || before == nil {
		before = []byte("null")
	}
	if after == nil {
		after = []byte("null")
	}
	buf := make([]byte, 0, len(op)+len(before)+len(after)+32)
	buf = append(buf, `{"op":`...)
	buf = append(buf, op...)
	buf = append(buf, `,"before":`...)
	buf = append(buf, before...)
	buf = append(buf, `,"after":`...)
	buf = append(buf, after...)
	buf = append(buf, '}')
	lean := *m
	lean.Value = buf
	rec, err := lean.Decode()
	if err != nil {
		return m.Decode() // report the error as the full decoder words it
	}
	rec.Headers = m.Headers
	return rec, nil
}

// eachTop calls fn with the name (still quoted-content, undecoded: member
// names with escapes do not match the names DecodeLean looks for) and raw
// value of each member of the JSON object b. It reports false when b is
// not a well-formed object at the top level.
func eachTop(b []byte, fn func(name, raw []byte)) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return false
		}
		end := strEnd(b, i)
		if end < 0 {
			return false
		}
		name := b[i+1 : end-1]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		vend := valEnd(b, i)
		if vend < 0 {
			return false
		}
		fn(name, b[i:vend])
		i = skipSpace(b, vend)
		if i >= len(b) {
			return false
		}
		if b[i] == '}' {
			return skipSpace(b, i+1) == len(b)
		}
		if b[i] != ',' {
			return false
		}
		i = skipSpace(b, i+1)
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// strEnd returns the index after the closing quote of the string starting
// at b[i], or -1.
func strEnd(b []byte, i int) int {
	j := i + 1
	for {
		q := bytes.IndexByte(b[j:], '"')
		if q < 0 {
			return -1
		}
		j += q
		// The quote ends the string unless an odd number of backslashes
		// escapes it.
		n := 0
		for k := j - 1; k > i && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return j + 1
		}
		j++
	}
}

// valEnd returns the index after the JSON value starting at b[i], or -1.
// Scalars are delimited, not validated: the decoder of the parts that are
// used validates them.
func valEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; c {
	case '"':
		return strEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e := strEnd(b, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}
