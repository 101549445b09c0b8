package configs

import (
	"fmt"
	"reflect"

	"gopkg.in/yaml.v3"
)

// Section is a part of the config that is not decoded yet, such as a
// connector's `config:` mapping. It keeps its yaml.Node so that the code which
// knows its shape reports problems at their line and column.
//
// A Section is immutable; several may be decoded concurrently. A struct being
// decoded may itself hold Section (or []Section) fields to defer parts further.
type Section struct {
	node *yaml.Node // nil when absent or null
	file string
	path string   // key path, such as "sources[0].config"
	at   Pos      // where to report problems about an absent section
	env  *envInfo // what came from the environment; may be nil
}

// IsZero reports whether the section is absent (or written as null).
func (s Section) IsZero() bool { return s.node == nil }

// Pos returns the position of the section's value. For an absent section it is
// the position of the mapping that lacks it, so problems still point somewhere
// useful.
func (s Section) Pos() Pos {
	if s.node == nil {
		return s.at
	}
	return Pos{File: s.file, Line: s.node.Line, Col: s.node.Column}
}

// Path returns the key path of the section, such as "sources[0].config".
func (s Section) Path() string { return s.path }

// Decode decodes the section strictly into out, a non-nil pointer, usually to
// a struct with `yaml:"..."` tags:
//   - a key with no matching field is an error that names the key and
//     suggests the closest known one;
//   - a value of the wrong type is an error at the value's line and column
//     that names the expected type;
//   - structs, slices, arrays, maps, pointers, time.Duration and Duration,
//     Section, yaml.Node, yaml.Unmarshaler and encoding.TextUnmarshaler
//     fields work, and so do `yaml:",inline"` structs and maps;
//   - null leaves a field as it was (clearing pointers, maps, slices and
//     interfaces), so defaults set before decoding survive.
//
// Every problem is reported: the error is errors.Join of *Error values (see
// Problems). Fields that decoded cleanly are set even then. A zero Section
// decodes to nothing: out is left unchanged and the error is nil.
func (s Section) Decode(out any) error {
	if s.node == nil {
		return nil
	}
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Errorf("decoding %s: want a non-nil pointer, got %T", s.path, out)
	}
	d := newDecoder(s.file, s.env)
	d.decode(s.node, s.path, v.Elem())
	return join(d.errs)
}

// Field returns the sub-section under key. It is a zero Section, positioned
// at s, when s is not a mapping or has no such key; a null value gives a zero
// Section positioned at that value.
func (s Section) Field(key string) Section {
	f := Section{file: s.file, path: keyPath(s.path, key), at: s.Pos(), env: s.env}
	if v := s.lookup(key); v != nil {
		f.at = Pos{File: s.file, Line: v.Line, Col: v.Column}
		if !isNull(v) {
			f.node = v
		}
	}
	return f
}

// Errorf makes an *Error about the value of key in the section, with the path
// "<section path>.<key>". It is positioned at that value, or at the section
// itself when key is "" or absent. Connectors use it for problems that
// decoding cannot see, such as "must be greater than 0".
func (s Section) Errorf(key, format string, args ...any) *Error {
	if key == "" {
		return Errorf(s.Pos(), s.path, format, args...)
	}
	f := s.Field(key)
	return Errorf(f.Pos(), f.path, format, args...)
}

// has reports whether the section is a mapping holding key, even with a null
// value.
func (s Section) has(key string) bool { return s.lookup(key) != nil }

// lookup returns the value of key, aliases resolved; nil when absent.
func (s Section) lookup(key string) *yaml.Node {
	pairs, _ := mappingPairs(resolveAlias(s.node))
	for _, p := range pairs {
		if p.key.Kind == yaml.ScalarNode && p.key.Value == key {
			return resolveAlias(p.value)
		}
	}
	return nil
}

// item returns the i-th element of a list section; a zero Section when s is
// not a list that long.
func (s Section) item(i int) Section {
	it := Section{file: s.file, path: indexPath(s.path, i), at: s.Pos(), env: s.env}
	if n := resolveAlias(s.node); n != nil && n.Kind == yaml.SequenceNode && i < len(n.Content) {
		v := resolveAlias(n.Content[i])
		it.at = Pos{File: s.file, Line: v.Line, Col: v.Column}
		if !isNull(v) {
			it.node = v
		}
	}
	return it
}
