package configs

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// maxAliasExpansions bounds the work aliases can cause ("billion laughs").
const maxAliasExpansions = 10000

// maxMergeDepth bounds nested "<<" merges, which may also form cycles.
const maxMergeDepth = 32

var (
	sectionType      = reflect.TypeFor[Section]()
	nodeType         = reflect.TypeFor[yaml.Node]()
	durationType     = reflect.TypeFor[Duration]()
	timeDurationType = reflect.TypeFor[time.Duration]()
	unmarshalerType  = reflect.TypeFor[yaml.Unmarshaler]()
	textType         = reflect.TypeFor[encoding.TextUnmarshaler]()

	// yamlTypeError matches the messages in a *yaml.TypeError.
	yamlTypeError = regexp.MustCompile("^cannot unmarshal !!([a-z]+) `(.*)` into (.+)$")
)

// decoder decodes yaml.Node trees into Go values strictly, collecting every
// problem as an *Error instead of stopping at the first.
type decoder struct {
	file string
	env  *envInfo // may be nil
	errs []*Error

	bad        map[*yaml.Node]bool // nodes already reported, so checks do not pile on
	expanding  map[*yaml.Node]bool // aliases being expanded, to catch cycles
	expansions int
}

func newDecoder(file string, env *envInfo) *decoder {
	return &decoder{
		file:      file,
		env:       env,
		bad:       make(map[*yaml.Node]bool),
		expanding: make(map[*yaml.Node]bool),
	}
}

func (d *decoder) pos(n *yaml.Node) Pos {
	return Pos{File: d.file, Line: n.Line, Col: n.Column}
}

// errorf records a problem with the value n.
func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, Errorf(d.pos(n), path, format, args...))
	d.bad[n] = true
}

// typeError records that n cannot be decoded into a value of type t.
func (d *decoder) typeError(n *yaml.Node, path string, t reflect.Type) {
	want, hint := expected(t)
	if hint != "" {
		hint = "; " + hint
	}
	d.errorf(n, path, "cannot use %s as %s%s", d.describe(n), want, hint)
}

// ok reports whether n is present and was neither reported nor left
// unexpanded; checks on a value only make sense then.
func (d *decoder) ok(n *yaml.Node) bool {
	return n != nil && !d.bad[n] && !d.env.hasFailed(n)
}

// decode decodes n into v, which must be settable, under the key path path.
func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode {
		d.alias(n, path, v)
		return
	}
	if d.env.hasFailed(n) {
		d.bad[n] = true // reported while interpolating
		return
	}
	t := v.Type()
	switch {
	case t == sectionType:
		v.Set(reflect.ValueOf(d.section(n, path)))
		return
	case t == nodeType:
		v.Set(reflect.ValueOf(*n))
		return
	case isNull(n):
		// Like yaml.v3: null clears what can be nil and leaves the rest, so
		// defaults set before decoding survive `key:` and `key: ~`.
		switch t.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
			v.SetZero()
		}
		return
	case t.Kind() == reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.decode(n, path, v.Elem())
		return
	case t == durationType || t == timeDurationType:
		dur, ok := parseDuration(n)
		if !ok {
			d.typeError(n, path, t)
			return
		}
		v.SetInt(int64(dur))
		return
	case reflect.PointerTo(t).Implements(unmarshalerType):
		d.unmarshaler(v.Addr().Interface().(yaml.Unmarshaler), n, path)
		return
	case reflect.PointerTo(t).Implements(textType):
		d.text(v.Addr().Interface().(encoding.TextUnmarshaler), n, path, t)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		d.structure(n, path, v)
	case reflect.Map:
		d.mapping(n, path, v)
	case reflect.Slice, reflect.Array:
		d.sequence(n, path, v)
	case reflect.Interface:
		d.any(n, path, v)
	case reflect.Bool, reflect.String, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		d.scalar(n, path, v)
	default:
		d.errorf(n, path, "cannot decode into Go type %s", t)
	}
}

func (d *decoder) alias(n *yaml.Node, path string, v reflect.Value) {
	d.expansions++
	switch {
	case d.expansions == maxAliasExpansions+1:
		d.errorf(n, path, "too many alias expansions (more than %d)", maxAliasExpansions)
		return
	case d.expansions > maxAliasExpansions:
		return
	case d.expanding[n] || n.Alias == nil:
		d.errorf(n, path, "alias *%s refers to a value that contains it", n.Value)
		return
	}
	d.expanding[n] = true
	d.decode(n.Alias, path, v)
	delete(d.expanding, n)
}

// section keeps n undecoded, for the code that knows its shape.
func (d *decoder) section(n *yaml.Node, path string) Section {
	s := Section{file: d.file, path: path, at: d.pos(n), env: d.env}
	if !isNull(n) {
		s.node = n
	}
	return s
}

func (d *decoder) structure(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.typeError(n, path, v.Type())
		return
	}
	info, err := structInfoOf(v.Type())
	if err != nil {
		d.errorf(n, path, "cannot decode into Go type %s: %w", v.Type(), err)
		return
	}
	d.eachPair(n, path, func(key *yaml.Node, name, kp string, value *yaml.Node) {
		f, ok := info.fields[name]
		switch {
		case ok:
			d.decode(value, kp, fieldByIndex(v, f))
		case info.rest != nil:
			d.mapEntry(key, value, kp, fieldByIndex(v, info.rest))
		default:
			d.errorf(key, kp, "%s", unknownKey(name, info.names))
		}
	})
}

func (d *decoder) mapping(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.typeError(n, path, v.Type())
		return
	}
	d.eachPair(n, path, func(key *yaml.Node, _, kp string, value *yaml.Node) {
		d.mapEntry(key, value, kp, v)
	})
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type())) // an empty mapping is an empty map, not nil
	}
}

// mapEntry decodes one key and value into the map m.
func (d *decoder) mapEntry(key, value *yaml.Node, kp string, m reflect.Value) {
	t := m.Type()
	k := reflect.New(t.Key()).Elem()
	if t.Key().Kind() == reflect.String {
		k.SetString(key.Value)
	} else {
		errs := len(d.errs)
		d.decode(key, kp, k)
		if len(d.errs) > errs {
			return
		}
	}
	e := reflect.New(t.Elem()).Elem()
	d.decode(value, kp, e)
	if m.IsNil() {
		m.Set(reflect.MakeMap(t))
	}
	m.SetMapIndex(k, e)
}

// eachPair calls fn for every key of the mapping n, merges ("<<") included,
// after checking that keys are scalars and not repeated.
func (d *decoder) eachPair(n *yaml.Node, path string, fn func(key *yaml.Node, name, kp string, value *yaml.Node)) {
	pairs, badMerge := mappingPairs(n)
	if badMerge != nil {
		d.errorf(badMerge, keyPath(path, "<<"), "cannot merge %s; merge a mapping or a list of mappings", d.describe(badMerge))
	}
	seen := make(map[string]*yaml.Node, len(pairs))
	for _, p := range pairs {
		if p.key.Kind != yaml.ScalarNode {
			d.errorf(p.key, path, "cannot use %s as a key; keys must be strings", describeKind(p.key))
			continue
		}
		name := p.key.Value
		kp := keyPath(path, name)
		if first, dup := seen[name]; dup {
			if !p.merged { // a key written out overrides merged ones silently
				d.errorf(p.key, kp, "duplicate key %q; it is already set at line %d", name, first.Line)
			}
			continue
		}
		seen[name] = p.key
		fn(p.key, name, kp, p.value)
	}
}

func (d *decoder) sequence(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.typeError(n, path, v.Type())
		return
	}
	items := n.Content
	if v.Kind() == reflect.Array {
		if len(items) != v.Len() {
			d.errorf(n, path, "expected a list of %d items, got %d", v.Len(), len(items))
			return
		}
	} else {
		v.Set(reflect.MakeSlice(v.Type(), len(items), len(items)))
	}
	for i, item := range items {
		d.decode(item, indexPath(path, i), v.Index(i))
	}
}

// any decodes into an interface{} the way yaml.v3 does: maps, slices and
// scalars of the types their tags resolve to.
func (d *decoder) any(n *yaml.Node, path string, v reflect.Value) {
	if v.NumMethod() > 0 {
		d.errorf(n, path, "cannot decode into Go interface type %s", v.Type())
		return
	}
	var x any
	if err := n.Decode(&x); err != nil {
		d.yamlError(n, path, err)
		return
	}
	if x == nil {
		v.SetZero()
		return
	}
	v.Set(reflect.ValueOf(x))
}

// scalar decodes booleans, numbers and strings. Types are checked here so that
// a float never truncates into an integer field; yaml.v3 does the parsing.
func (d *decoder) scalar(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.typeError(n, path, v.Type())
		return
	}
	tag := n.ShortTag()
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if tag != "!!int" {
			d.typeError(n, path, v.Type())
			return
		}
	case reflect.Float32, reflect.Float64:
		if tag != "!!int" && tag != "!!float" {
			d.typeError(n, path, v.Type())
			return
		}
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		if tag == "!!int" {
			if k := v.Kind(); k >= reflect.Uint && k <= reflect.Uintptr && strings.HasPrefix(n.Value, "-") {
				d.typeError(n, path, v.Type())
				return
			}
			d.errorf(n, path, "%s is out of range for %s", d.describe(n), v.Type())
			return
		}
		d.typeError(n, path, v.Type())
	}
}

func (d *decoder) unmarshaler(u yaml.Unmarshaler, n *yaml.Node, path string) {
	err := u.UnmarshalYAML(n)
	if err == nil {
		return
	}
	d.bad[n] = true
	if problems := Problems(err); len(problems) > 0 {
		for _, p := range problems {
			if p.Pos.File == "" {
				p.Pos.File = d.file
			}
			d.errs = append(d.errs, p)
		}
		return
	}
	d.yamlError(n, path, err)
}

func (d *decoder) text(u encoding.TextUnmarshaler, n *yaml.Node, path string, t reflect.Type) {
	if n.Kind != yaml.ScalarNode {
		d.typeError(n, path, t)
		return
	}
	if err := u.UnmarshalText([]byte(n.Value)); err != nil {
		msg := fmt.Sprintf("invalid value %s: %s", d.describe(n), d.redact(n, err.Error()))
		d.errs = append(d.errs, &Error{Pos: d.pos(n), Path: path, Msg: msg, cause: err})
		d.bad[n] = true
	}
}

// yamlError records an error returned by yaml.v3 or by an UnmarshalYAML
// method, rewriting yaml.v3's "line N: cannot unmarshal" texts.
func (d *decoder) yamlError(n *yaml.Node, path string, err error) {
	d.bad[n] = true
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		msg := d.redact(n, strings.TrimPrefix(err.Error(), "yaml: "))
		d.errs = append(d.errs, &Error{Pos: d.pos(n), Path: path, Msg: msg, cause: err})
		return
	}
	for _, msg := range te.Errors {
		pos := d.pos(n)
		line, rest, found := strings.Cut(strings.TrimPrefix(msg, "line "), ": ")
		if l, err := strconv.Atoi(line); found && err == nil {
			if l != pos.Line {
				pos.Col = 0
			}
			pos.Line = l
			msg = rest
		}
		if m := yamlTypeError.FindStringSubmatch(msg); m != nil {
			value := m[2]
			if m[1] == "str" {
				value = strconv.Quote(value)
			}
			msg = fmt.Sprintf("cannot use %s as %s", value, m[3])
		}
		d.errs = append(d.errs, &Error{Pos: pos, Path: path, Msg: d.redact(n, msg)})
	}
}

// describe names the value n for a message. Values that came from the
// environment are never shown: they may be secrets.
func (d *decoder) describe(n *yaml.Node) string {
	if subs := d.env.fromEnv(n); len(subs) > 0 {
		names := make([]string, len(subs))
		for i, s := range subs {
			names[i] = "${" + s.name + "}"
		}
		return "value from " + strings.Join(names, ", ")
	}
	return describeKind(n)
}

// redact removes from msg what the environment put into n.
func (d *decoder) redact(n *yaml.Node, msg string) string {
	subs := d.env.fromEnv(n)
	if len(subs) == 0 {
		return msg
	}
	if n.Value != "" {
		msg = strings.ReplaceAll(msg, n.Value, d.describe(n))
	}
	for _, s := range subs {
		if s.secret && s.value != "" {
			msg = strings.ReplaceAll(msg, s.value, "${"+s.name+"}")
		}
	}
	return msg
}

// describeKind names n by kind, or by value for scalars: a mapping, a list,
// "text" for strings, 12 or true for other scalars.
func describeKind(n *yaml.Node) string {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if utf8.RuneCountInString(v) > 60 {
			v = string([]rune(v)[:57]) + "..."
		}
		switch n.ShortTag() {
		case "!!null":
			return "an empty value"
		case "!!int", "!!float", "!!bool":
			return v
		}
		return strconv.Quote(v)
	}
	return "an empty document"
}

// expected names what a Go type accepts, with a hint on how to write it.
func expected(t reflect.Type) (want, hint string) {
	switch {
	case t == durationType || t == timeDurationType:
		return "a duration", durationHint
	case reflect.PointerTo(t).Implements(textType):
		return "a string", ""
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "a mapping", ""
	case reflect.Slice, reflect.Array:
		return "a list", ""
	case reflect.String:
		return "a string", ""
	case reflect.Bool:
		return "a boolean", "write true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer", ""
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "a non-negative integer", ""
	case reflect.Float32, reflect.Float64:
		return "a number", ""
	}
	return "a value of Go type " + t.String(), ""
}

// isNull reports whether n is an empty value, ~ or null.
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// resolveAlias returns the node an alias stands for.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxMergeDepth; i++ {
		n = n.Alias
	}
	return n
}

// pair is one key and value of a mapping.
type pair struct {
	key, value *yaml.Node
	merged     bool // comes from a "<<" merge
}

// mappingPairs lists the pairs of the mapping n: first those written in it,
// then those merged in with "<<", in merge order, so that the first pair
// with a given key wins. badMerge is a merge value that is not a mapping.
func mappingPairs(n *yaml.Node) (pairs []pair, badMerge *yaml.Node) {
	var merged []pair
	var walk func(n *yaml.Node, depth int, isMerged bool)
	walk = func(n *yaml.Node, depth int, isMerged bool) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if !isMerge(k) {
				p := pair{key: k, value: v, merged: isMerged}
				if isMerged {
					merged = append(merged, p)
				} else {
					pairs = append(pairs, p)
				}
				continue
			}
			sources := []*yaml.Node{v}
			if rv := resolveAlias(v); rv != nil && rv.Kind == yaml.SequenceNode {
				sources = rv.Content
			}
			for _, src := range sources {
				m := resolveAlias(src)
				if m == nil || m.Kind != yaml.MappingNode || depth >= maxMergeDepth {
					if badMerge == nil {
						badMerge = src
					}
					continue
				}
				walk(m, depth+1, true)
			}
		}
	}
	if n != nil && n.Kind == yaml.MappingNode {
		walk(n, 0, false)
	}
	return append(pairs, merged...), badMerge
}

// isMerge reports whether the key k is the merge key "<<".
func isMerge(k *yaml.Node) bool {
	if k.Kind != yaml.ScalarNode || k.Value != "<<" {
		return false
	}
	switch k.Tag {
	case "", "!", "!!merge", "tag:yaml.org,2002:merge":
		return true
	}
	return false
}

// keyPath appends a mapping key to a key path: "sources[0]" + "name" is
// "sources[0].name". Keys that would be ambiguous are quoted: `config["a.b"]`.
func keyPath(base, key string) string {
	if !isPlainKey(key) {
		return base + "[" + strconv.Quote(key) + "]"
	}
	if base == "" {
		return key
	}
	return base + "." + key
}

// indexPath appends a list index to a key path: "sources" + 0 is "sources[0]".
func indexPath(base string, i int) string {
	return base + "[" + strconv.Itoa(i) + "]"
}

func isPlainKey(key string) bool {
	if key == "" {
		return false
	}
	for _, r := range key {
		switch {
		case r == '_', r == '-', 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		default:
			return false
		}
	}
	return true
}

// structInfo is how the keys of a mapping map onto the fields of a struct.
type structInfo struct {
	fields map[string][]int // key -> field index path
	names  []string         // keys in field order, for messages
	rest   []int            // the `yaml:",inline"` map collecting other keys, if any
}

// structInfoOf reads the yaml tags of t like yaml.v3 does: `yaml:"name"`,
// `yaml:"-"` to skip, `yaml:",inline"` on a struct, *struct or map; untagged
// fields use their lower-cased name.
func structInfoOf(t reflect.Type) (*structInfo, error) {
	info := &structInfo{fields: make(map[string][]int)}
	var walk func(t reflect.Type, prefix []int) error
	walk = func(t reflect.Type, prefix []int) error {
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() && !f.Anonymous {
				continue
			}
			tag := f.Tag.Get("yaml")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			index := append(append([]int(nil), prefix...), i)
			if hasOption(opts, "inline") {
				ft := f.Type
				if !f.IsExported() && ft.Kind() != reflect.Struct {
					return fmt.Errorf("unexported inline field %s must be a struct", f.Name)
				}
				switch {
				case ft.Kind() == reflect.Map && ft.Key().Kind() == reflect.String:
					if info.rest != nil {
						return errors.New("more than one inline map")
					}
					info.rest = index
					continue
				case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct:
					ft = ft.Elem()
				}
				if ft.Kind() != reflect.Struct {
					return fmt.Errorf("inline field %s must be a struct, a pointer to one or a map with string keys", f.Name)
				}
				if err := walk(ft, index); err != nil {
					return err
				}
				continue
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			if _, dup := info.fields[name]; dup {
				return fmt.Errorf("key %q is used by two fields", name)
			}
			info.fields[name] = index
			info.names = append(info.names, name)
		}
		return nil
	}
	if err := walk(t, nil); err != nil {
		return nil, err
	}
	return info, nil
}

func hasOption(opts, want string) bool {
	for opt := range strings.SplitSeq(opts, ",") {
		if opt == want {
			return true
		}
	}
	return false
}

// fieldByIndex is reflect.Value.FieldByIndex, allocating nil inline pointers.
func fieldByIndex(v reflect.Value, index []int) reflect.Value {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v
}

// unknownKey says that key is not one of known, suggesting the closest.
func unknownKey(key string, known []string) string {
	if s := closest(key, known); s != "" {
		return fmt.Sprintf("unknown key %q; did you mean %q?", key, s)
	}
	if len(known) == 0 {
		return fmt.Sprintf("unknown key %q; no keys are allowed here", key)
	}
	return fmt.Sprintf("unknown key %q; known keys: %s", key, strings.Join(known, ", "))
}

// closest returns the candidate that key is most likely a misspelling of:
// the nearest by edit distance (ignoring case and '-' versus '_') when close
// enough, else the only candidate that key is a prefix of. It returns "" when
// nothing fits.
func closest(key string, candidates []string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	k := norm(key)
	best, bestDist := "", -1
	for _, c := range candidates {
		if dist := editDistance(k, norm(c)); bestDist < 0 || dist < bestDist {
			best, bestDist = c, dist
		}
	}
	limit := min(1+utf8.RuneCountInString(k)/4, 3)
	if bestDist >= 0 && bestDist <= limit && bestDist < utf8.RuneCountInString(k) {
		return best
	}
	prefixed := ""
	for _, c := range candidates {
		if utf8.RuneCountInString(k) >= 3 && strings.HasPrefix(norm(c), k) {
			if prefixed != "" {
				return ""
			}
			prefixed = c
		}
	}
	return prefixed
}

// editDistance is the optimal string alignment distance between a and b, in
// runes: insertions, deletions, substitutions and swaps of neighbours each
// count one, so "tabels" is as close to "tables" as "labels" is.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// d[i][j] is the distance between ra[:i] and rb[:j].
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
