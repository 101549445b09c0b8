package view

import (
	"fmt"
	"strings"

	"github.com/connectd/connectd/cdc"
)

// TopicField is the placeholder name that renders the record's topic
// instead of a field: "{$topic}:{id}" keeps two tables apart.
const TopicField = "$topic"

// Template is a parsed key template such as "customer:{id}": literal text
// with {field} placeholders, each replaced by the text of that field's value
// (see AppendText). "{{" and "}}" stand for literal braces.
type Template struct {
	src    string
	parts  []part
	fields []string // distinct field names, in order of first use
}

type part struct {
	lit   string // literal text, when field == ""
	field string
}

// ParseTemplate parses a key template. A template without fields is
// valid (one stream per topic, say); sinks that keep one key per row check
// UsesRow.
func ParseTemplate(s string) (*Template, error) {
	t := &Template{src: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{':
			lit.WriteByte('{')
			i++
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte('}')
			i++
		case c == '{':
			end := strings.IndexByte(s[i+1:], '}')
			if end < 0 {
				return nil, fmt.Errorf("key template %q: '{' at byte %d has no closing '}' (write {{ for a literal brace)", s, i)
			}
			name := strings.TrimSpace(s[i+1 : i+1+end])
			if name == "" || strings.ContainsAny(name, "{") {
				return nil, fmt.Errorf("key template %q: empty or malformed placeholder at byte %d; write {column}", s, i)
			}
			flush()
			t.parts = append(t.parts, part{field: name})
			if !contains(t.fields, name) {
				t.fields = append(t.fields, name)
			}
			i += end + 1
		case c == '}':
			return nil, fmt.Errorf("key template %q: '}' at byte %d has no opening '{' (write }} for a literal brace)", s, i)
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	if len(t.parts) == 0 {
		return nil, fmt.Errorf("key template is empty; write e.g. \"customer:{id}\"")
	}
	return t, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// String returns the template as written.
func (t *Template) String() string { return t.src }

// Fields returns the distinct field names the template uses, in order
// ({$topic} included).
func (t *Template) Fields() []string { return append([]string(nil), t.fields...) }

// UsesRow reports whether the template names at least one field besides
// {$topic}: without one, every row of a topic renders the same key.
func (t *Template) UsesRow() bool {
	for _, f := range t.fields {
		if f != TopicField {
			return true
		}
	}
	return false
}

// InRow reports whether every field of the template (except {$topic}) is
// present in row: a template over key fields only renders the same key
// before and after an update.
func (t *Template) InRow(row cdc.Row) bool {
	for _, f := range t.fields {
		if f == TopicField {
			continue
		}
		if _, ok := row.Get(f); !ok {
			return false
		}
	}
	return true
}

// Append renders the template for a record of topic into dst. Each field is
// looked up in rows in order — callers pass the key first, then the row
// after the change, then the row before it — and the first row holding it
// wins. A field found nowhere, or NULL where found, is a
// *MissingFieldError. An unchanged-TOAST value is skipped like an absent
// one.
func (t *Template) Append(dst []byte, topic string, rows ...cdc.Row) ([]byte, error) {
	for _, p := range t.parts {
		if p.field == "" {
			dst = append(dst, p.lit...)
			continue
		}
		if p.field == TopicField {
			dst = append(dst, topic...)
			continue
		}
		found, null := false, false
		for _, r := range rows {
			f, ok := r.Get(p.field)
			if !ok || f.Unchanged {
				continue
			}
			var isText bool
			if dst, isText = AppendText(dst, f.Value); isText {
				found = true
			} else {
				null = true
			}
			break
		}
		if !found {
			return dst, &MissingFieldError{Template: t.src, Field: p.field, Topic: topic, Null: null}
		}
	}
	return dst, nil
}
