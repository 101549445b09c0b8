package configs

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Defaults filled in by Parse and Load.
const (
	defaultTopicPartitions     = 3
	defaultEmbeddedListen      = "127.0.0.1:0"
	defaultClientID            = "connectd"
	defaultWorkerName          = "worker-1"
	defaultDataDir             = "./data"
	defaultHTTP                = "127.0.0.1:8083"
	defaultOffsetsTopic        = "connectd-offsets"
	defaultOffsetsFile         = "offsets.json" // inside the data directory
	defaultOffsetFlushInterval = Duration(time.Second)
	defaultShutdownTimeout     = Duration(10 * time.Second)
)

// Offset stores accepted in worker.offsets.store.
const (
	OffsetStoreKafka = "kafka"
	OffsetStoreFile  = "file"
)

var (
	// namePattern is what source and sink names may look like.
	namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	// topicPattern is what Kafka accepts as a topic name.
	topicPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)
)

// Pipeline is a loaded, validated pipeline file with its defaults filled in.
type Pipeline struct {
	File    string // path it was loaded from, as given
	Dir     string // directory of File, against which relative paths were resolved
	Kafka   Kafka
	Worker  Worker
	Sources []Source
	Sinks   []Sink
}

// Kafka says which Kafka cluster carries the change events.
type Kafka struct {
	// Brokers are host:port seed addresses; empty means connectd runs an
	// embedded broker.
	Brokers []string `yaml:"brokers"`
	// TopicPartitions is the partition count of topics connectd creates.
	TopicPartitions int `yaml:"topic_partitions"`
	// EmbeddedListen is the listen address of the embedded broker, used only
	// when Brokers is empty.
	EmbeddedListen string `yaml:"embedded_listen"`
	// ClientID identifies connectd to the brokers.
	ClientID string `yaml:"client_id"`
}

// Worker configures the connectd process itself.
type Worker struct {
	Name string `yaml:"name"`
	// DataDir is where local state lives, resolved against Pipeline.Dir.
	DataDir string `yaml:"data_dir"`
	// HTTP is the REST API's listen address (host:port); empty when disabled
	// (written as "", "off" or left empty in the file).
	HTTP                string   `yaml:"http"`
	Offsets             Offsets  `yaml:"offsets"`
	OffsetFlushInterval Duration `yaml:"offset_flush_interval"`
	ShutdownTimeout     Duration `yaml:"shutdown_timeout"`
}

// Offsets says where source offsets are stored.
type Offsets struct {
	// Store is OffsetStoreKafka or OffsetStoreFile.
	Store string `yaml:"store"`
	// Topic is the compacted offsets topic; set when Store is kafka.
	Topic string `yaml:"topic"`
	// Path is the offsets file, resolved against Pipeline.Dir; set when
	// Store is file (default: offsets.json in DataDir).
	Path string `yaml:"path"`
}

// Source is one entry of `sources:`.
type Source struct {
	Name, Type string
	// Config is the `config:` mapping, decoded by the connector itself. It is
	// zero (with a nil node) when absent, but still positioned at the source
	// so the connector can report a missing key.
	Config     Section
	Transforms []Transform
	// Errors is the `errors:` mapping, decoded by the error handling code.
	Errors Section
	// Schemas writes change events in Kafka Connect's JSON form with
	// schemas ({"schema":…,"payload":…}, schemas.enable=true), so consumers
	// learn column types from the events themselves.
	Schemas bool
	Pos     Pos    // position of the list item
	TypePos Pos    // position of the `type` value, for "unknown type" errors
	Path    string // key path, such as "sources[0]"
}

// Sink is one entry of `sinks:`. Exactly one of Topics and TopicsRegex is set.
type Sink struct {
	Name, Type  string
	Topics      []string
	TopicsRegex string // valid Go regexp
	Config      Section
	Transforms  []Transform
	Errors      Section
	Pos         Pos    // position of the list item
	TypePos     Pos    // position of the `type` value
	Path        string // key path, such as "sinks[0]"
}

// Transform is one entry of a `transforms:` list.
type Transform struct {
	Type string
	// Config is the whole mapping, `type` included: decoding it into a struct
	// needs a field for `type`.
	Config  Section
	Pos     Pos    // position of the list item
	TypePos Pos    // position of the `type` value
	Path    string // key path, such as "sources[0].transforms[1]"
}

// Load reads, interpolates, decodes and validates the pipeline file at path;
// see Parse. Relative paths in it are resolved against its directory, made
// absolute. lookupEnv is typically os.LookupEnv.
func Load(path string, lookupEnv func(string) (string, bool)) (*Pipeline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolving config path: %w", err)
	}
	return parse(path, filepath.Dir(abs), data, lookupEnv)
}

// Parse is Load for a file already read: file is used in positions and to
// resolve relative paths (against filepath.Dir(file), left relative when file
// is). A nil lookupEnv behaves as an empty environment.
//
// It interpolates ${VAR} and ${VAR:-default} in scalar values, decodes the
// fixed top-level shape strictly, validates it and fills in defaults. The
// `config:`, `errors:` and transform mappings are kept as Sections for their
// owners to decode.
//
// On failure the error is errors.Join of one *Error per problem, in file
// order, and the Pipeline holds what could be decoded, defaults included; it
// is nil only when the file is not a YAML mapping (syntax error, empty file,
// list or scalar document).
func Parse(file string, data []byte, lookupEnv func(string) (string, bool)) (*Pipeline, error) {
	return parse(file, filepath.Dir(file), data, lookupEnv)
}

func parse(file, dir string, data []byte, lookupEnv func(string) (string, bool)) (*Pipeline, error) {
	root, problem := parseDocument(file, data)
	if problem != nil {
		return nil, join([]*Error{problem})
	}
	env, problems := interpolate(file, root, lookupEnv)
	l := &loader{p: &Pipeline{File: file, Dir: dir}, d: newDecoder(file, env)}
	l.d.errs = problems
	l.load(Section{node: root, file: file, at: Pos{File: file, Line: 1, Col: 1}, env: env})
	return l.p, join(l.d.errs)
}

// parseDocument parses data into the root mapping of its single document.
func parseDocument(file string, data []byte) (*yaml.Node, *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, emptyConfig(file)
		}
		return nil, syntaxError(file, data, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(file, data, err)
	case len(next.Content) > 0 && !isNull(next.Content[0]):
		n := next.Content[0]
		return nil, Errorf(Pos{File: file, Line: n.Line, Col: n.Column}, "",
			"found a second YAML document; put the whole pipeline in one document")
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, emptyConfig(file)
		}
		root = doc.Content[0]
	}
	if isNull(root) {
		return nil, emptyConfig(file)
	}
	if root.Kind != yaml.MappingNode {
		return nil, Errorf(Pos{File: file, Line: root.Line, Col: root.Column}, "",
			"cannot use %s as a config; expected a mapping with sources and/or sinks", describeKind(root))
	}
	return root, nil
}

func emptyConfig(file string) *Error {
	return Errorf(Pos{File: file, Line: 1, Col: 1}, "", "empty config: expected a mapping with sources and/or sinks")
}

// syntaxError turns a yaml.v3 parse error ("yaml: line 3: did not find
// expected key") into an *Error at that line, column 1, with a hint for the
// usual causes.
func syntaxError(file string, data []byte, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	pos := Pos{File: file}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, after, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(num); err == nil {
				pos.Line, pos.Col, msg = line, 1, after
			}
		}
	}
	if name, ok := strings.CutPrefix(msg, "unknown anchor '"); ok && pos.Line == 0 {
		pos = aliasPos(file, data, strings.TrimSuffix(name, "' referenced"))
	}
	hint := ""
	switch {
	case pos.Line > 0 && indentedWithTab(data, pos.Line):
		hint = "; indent with spaces, not tabs"
	case strings.Contains(msg, "mapping values are not allowed"):
		hint = `; check the indentation, or quote a value that contains ": "`
	case strings.Contains(msg, "did not find expected"):
		hint = "; check the indentation"
	case strings.Contains(msg, "found unexpected end of stream"):
		hint = "; check for an unclosed quote or bracket"
	}
	return &Error{Pos: pos, Msg: "invalid YAML: " + msg + hint, cause: err}
}

// aliasPos guesses where the alias *name is used, for yaml.v3's "unknown
// anchor" error, which has no position.
func aliasPos(file string, data []byte, name string) Pos {
	i := bytes.Index(data, []byte("*"+name))
	if i < 0 {
		return Pos{File: file}
	}
	line := 1 + bytes.Count(data[:i], []byte("\n"))
	col := 1 + utf8.RuneCount(data[bytes.LastIndexByte(data[:i], '\n')+1:i])
	return Pos{File: file, Line: line, Col: col}
}

// indentedWithTab reports whether the 1-based line of data has a tab in its
// indentation.
func indentedWithTab(data []byte, line int) bool {
	lines := bytes.Split(data, []byte("\n"))
	if line > len(lines) {
		return false
	}
	l := lines[line-1]
	indent := l[:len(l)-len(bytes.TrimLeft(l, " \t"))]
	return bytes.IndexByte(indent, '\t') >= 0
}

// loader decodes and checks the fixed shape of a pipeline file. Its problems
// go to the decoder's list, so that they stay in the order they were found.
type loader struct {
	p     *Pipeline
	d     *decoder
	names map[string]Section // connector name -> its `name` value, for duplicates
}

// decode decodes s into out, collecting problems.
func (l *loader) decode(s Section, out any) {
	if s.node != nil {
		l.d.decode(s.node, s.path, reflect.ValueOf(out).Elem())
	}
}

// ok reports whether s is present and decoded cleanly.
func (l *loader) ok(s Section) bool { return l.d.ok(s.node) }

func (l *loader) errorf(pos Pos, path, format string, args ...any) {
	l.add(Errorf(pos, path, format, args...))
}

// add records a problem.
func (l *loader) add(e *Error) { l.d.errs = append(l.d.errs, e) }

func (l *loader) load(root Section) {
	var top struct {
		Kafka   Section   `yaml:"kafka"`
		Worker  Section   `yaml:"worker"`
		Sources []Section `yaml:"sources"`
		Sinks   []Section `yaml:"sinks"`
	}
	root = withoutExtensions(root)
	l.decode(root, &top)
	l.kafka(root.Field("kafka"))
	l.worker(root.Field("worker"))
	l.names = make(map[string]Section)
	for _, item := range top.Sources {
		l.source(item)
	}
	for _, item := range top.Sinks {
		l.sink(item)
	}
	// An empty pipeline is worth a word unless a misspelt or malformed
	// sources/sinks key explains it already.
	if len(top.Sources) == 0 && len(top.Sinks) == 0 && !hasUnknownKeys(root, "kafka", "worker", "sources", "sinks") &&
		!l.d.bad[root.Field("sources").node] && !l.d.bad[root.Field("sinks").node] {
		l.errorf(root.Pos(), "", "no sources and no sinks: a pipeline needs at least one connector")
	}
}

// withoutExtensions returns the top-level mapping without its "x-" keys.
// Like in Compose files, they hold values to share through YAML anchors.
func withoutExtensions(root Section) Section {
	n := *root.node
	n.Content = nil
	for i := 0; i+1 < len(root.node.Content); i += 2 {
		if k := root.node.Content[i]; !strings.HasPrefix(k.Value, "x-") {
			n.Content = append(n.Content, k, root.node.Content[i+1])
		}
	}
	root.node = &n
	return root
}

// hasUnknownKeys reports whether the mapping s has a key not in known.
func hasUnknownKeys(s Section, known ...string) bool {
	pairs, _ := mappingPairs(s.node)
	for _, p := range pairs {
		if !slices.Contains(known, p.key.Value) {
			return true
		}
	}
	return false
}

func (l *loader) kafka(s Section) {
	k := &l.p.Kafka
	l.decode(s, k)
	brokers := s.Field("brokers")
	for i, b := range k.Brokers {
		if item := brokers.item(i); l.ok(item) {
			l.checkAddress(item, b, false)
		}
	}
	if f := s.Field("topic_partitions"); l.ok(f) && k.TopicPartitions < 1 {
		l.add(f.Errorf("", "must be at least 1"))
	}
	if f := s.Field("embedded_listen"); l.ok(f) {
		l.checkAddress(f, k.EmbeddedListen, true)
	}
	if k.TopicPartitions == 0 {
		k.TopicPartitions = defaultTopicPartitions
	}
	k.EmbeddedListen = cmp.Or(k.EmbeddedListen, defaultEmbeddedListen)
	k.ClientID = cmp.Or(k.ClientID, defaultClientID)
}

func (l *loader) worker(s Section) {
	w := &l.p.Worker
	l.decode(s, w)
	w.Name = cmp.Or(w.Name, defaultWorkerName)
	w.DataDir = l.resolvePath(cmp.Or(w.DataDir, defaultDataDir))

	switch f := s.Field("http"); {
	case !s.has("http"):
		w.HTTP = defaultHTTP
	case w.HTTP == "off":
		w.HTTP = ""
	case w.HTTP != "" && l.ok(f):
		l.checkAddress(f, w.HTTP, true)
	}

	for _, d := range []struct {
		key   string
		value *Duration
		def   Duration
	}{
		{"offset_flush_interval", &w.OffsetFlushInterval, defaultOffsetFlushInterval},
		{"shutdown_timeout", &w.ShutdownTimeout, defaultShutdownTimeout},
	} {
		if f := s.Field(d.key); l.ok(f) && *d.value <= 0 {
			l.add(f.Errorf("", "must be greater than 0"))
		}
		if *d.value == 0 {
			*d.value = d.def
		}
	}

	l.offsets(s.Field("offsets"))
}

func (l *loader) offsets(s Section) {
	o := &l.p.Worker.Offsets
	store := s.Field("store")
	switch o.Store {
	case "":
		o.Store = OffsetStoreKafka
	case OffsetStoreKafka, OffsetStoreFile:
	default:
		if l.ok(store) {
			l.add(store.Errorf("", "cannot use %s as an offset store; use %s or %s",
				l.d.describe(store.node), OffsetStoreKafka, OffsetStoreFile))
		}
		return
	}
	switch o.Store {
	case OffsetStoreKafka:
		if s.has("path") {
			l.add(s.Errorf("path", "only used when store is %s", OffsetStoreFile))
		}
		if f := s.Field("topic"); l.ok(f) {
			l.checkTopic(f, o.Topic)
		}
		o.Topic = cmp.Or(o.Topic, defaultOffsetsTopic)
	case OffsetStoreFile:
		if s.has("topic") {
			l.add(s.Errorf("topic", "only used when store is %s", OffsetStoreKafka))
		}
		if o.Path == "" {
			o.Path = filepath.Join(l.p.Worker.DataDir, defaultOffsetsFile)
		} else {
			o.Path = l.resolvePath(o.Path)
		}
	}
}

// connector is what sources and sinks have in common.
type connector struct {
	Name       string    `yaml:"name"`
	Type       string    `yaml:"type"`
	Config     Section   `yaml:"config"`
	Transforms []Section `yaml:"transforms"`
	Errors     Section   `yaml:"errors"`
}

func (l *loader) source(item Section) {
	if !l.checkMapping(item) {
		return
	}
	var raw struct {
		connector `yaml:",inline"`
		Schemas   bool `yaml:"schemas"`
	}
	l.decode(item, &raw)
	src := Source{
		Name:    raw.Name,
		Type:    raw.Type,
		Schemas: raw.Schemas,
		Config:  item.Field("config"),
		Errors:  item.Field("errors"),
		Pos:     item.Pos(),
		TypePos: item.Field("type").Pos(),
		Path:    item.Path(),
	}
	l.checkConnector(item, raw.connector)
	src.Transforms = l.transforms(raw.Transforms)
	l.p.Sources = append(l.p.Sources, src)
}

func (l *loader) sink(item Section) {
	if !l.checkMapping(item) {
		return
	}
	var raw struct {
		connector   `yaml:",inline"`
		Topics      []string `yaml:"topics"`
		TopicsRegex string   `yaml:"topics_regex"`
	}
	l.decode(item, &raw)
	sink := Sink{
		Name:        raw.Name,
		Type:        raw.Type,
		Topics:      raw.Topics,
		TopicsRegex: raw.TopicsRegex,
		Config:      item.Field("config"),
		Errors:      item.Field("errors"),
		Pos:         item.Pos(),
		TypePos:     item.Field("type").Pos(),
		Path:        item.Path(),
	}
	l.checkConnector(item, raw.connector)
	l.checkTopics(item, raw.Topics, raw.TopicsRegex)
	sink.Transforms = l.transforms(raw.Transforms)
	l.p.Sinks = append(l.p.Sinks, sink)
}

// checkConnector checks the keys sources and sinks share.
func (l *loader) checkConnector(item Section, raw connector) {
	l.checkName(item, raw.Name)
	l.checkRequired(item, "type", raw.Type)
	for _, key := range []string{"config", "errors"} {
		if f := item.Field(key); l.ok(f) {
			l.checkMapping(f)
		}
	}
}

// checkName checks a connector name: present, well-formed, not used yet.
func (l *loader) checkName(item Section, name string) {
	if !l.checkRequired(item, "name", name) {
		return
	}
	f := item.Field("name")
	if !namePattern.MatchString(name) {
		l.add(f.Errorf("", "invalid name %s; use letters, digits, '.', '_' and '-', starting with a letter or digit",
			l.d.describe(f.node)))
		return
	}
	if first, dup := l.names[name]; dup {
		l.add(f.Errorf("", "duplicate name %s: %s at line %d already uses it (sources and sinks share one namespace)",
			l.d.describe(f.node), strings.TrimSuffix(first.Path(), ".name"), first.Pos().Line))
		return
	}
	l.names[name] = f
}

// checkRequired checks that the string key of item is set, reporting a
// problem unless that value was reported already. It returns whether the
// value can be checked further.
func (l *loader) checkRequired(item Section, key, value string) bool {
	f := item.Field(key)
	switch {
	case !item.has(key):
		l.errorf(item.Pos(), item.Path(), "missing required key %q", key)
		return false
	case f.node != nil && !l.ok(f):
		return false
	case value == "":
		l.add(f.Errorf("", "must not be empty"))
		return false
	}
	return true
}

// checkTopics checks that a sink sets exactly one of topics and topics_regex,
// and that it is valid.
func (l *loader) checkTopics(item Section, topics []string, regex string) {
	hasTopics, hasRegex := item.has("topics"), item.has("topics_regex")
	switch {
	case hasTopics && hasRegex:
		second := item.Field("topics_regex")
		if p, q := second.Pos(), item.Field("topics").Pos(); q.Line > p.Line || q.Line == p.Line && q.Col > p.Col {
			second = item.Field("topics")
		}
		l.errorf(second.Pos(), item.Path(), "set either topics or topics_regex, not both")
	case !hasTopics && !hasRegex:
		l.errorf(item.Pos(), item.Path(), `missing required key "topics" or "topics_regex"`)
	case hasTopics:
		f := item.Field("topics")
		if f.node != nil && !l.ok(f) {
			return
		}
		if len(topics) == 0 {
			l.add(f.Errorf("", "must list at least one topic"))
		}
		for i, topic := range topics {
			if t := f.item(i); l.ok(t) {
				l.checkTopic(t, topic)
			}
		}
	case hasRegex:
		f := item.Field("topics_regex")
		switch {
		case f.node != nil && !l.ok(f):
		case regex == "":
			l.add(f.Errorf("", "must not be empty"))
		default:
			if _, err := regexp.Compile(regex); err != nil {
				msg := l.d.redact(f.node, err.Error())
				l.add(&Error{Pos: f.Pos(), Path: f.Path(), Msg: "invalid regular expression: " + msg, cause: err})
			}
		}
	}
}

// transforms checks a transforms list; each item needs a type.
func (l *loader) transforms(items []Section) []Transform {
	var out []Transform
	for _, item := range items {
		if !l.checkMapping(item) {
			continue
		}
		var typ string
		f := item.Field("type")
		l.decode(f, &typ)
		l.checkRequired(item, "type", typ)
		out = append(out, Transform{Type: typ, Config: item, Pos: item.Pos(), TypePos: f.Pos(), Path: item.Path()})
	}
	return out
}

// checkMapping reports s unless it is a mapping.
func (l *loader) checkMapping(s Section) bool {
	if s.node != nil && s.node.Kind == yaml.MappingNode {
		return true
	}
	if s.node == nil {
		l.errorf(s.Pos(), s.Path(), "empty item; expected a mapping")
		return false
	}
	if l.ok(s) {
		l.errorf(s.Pos(), s.Path(), "cannot use %s as a mapping", l.d.describe(s.node))
		l.d.bad[s.node] = true
	}
	return false
}

// checkAddress checks a host:port value; listen addresses may use port 0.
func (l *loader) checkAddress(s Section, addr string, listen bool) {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		var n int
		n, err = strconv.Atoi(port)
		if err == nil && (n < 0 || n > 65535 || n == 0 && !listen) {
			err = errors.New("port out of range")
		}
	}
	if err == nil {
		return
	}
	want := "host:port such as 127.0.0.1:9092"
	if listen {
		want = "host:port such as 127.0.0.1:8083"
	}
	if s.Path() == "worker.http" {
		want += `, or "off"`
	}
	l.add(s.Errorf("", "invalid address %s; write %s", l.d.describe(s.node), want))
}

// checkTopic checks a Kafka topic name.
func (l *loader) checkTopic(s Section, topic string) {
	if !topicPattern.MatchString(topic) || topic == "." || topic == ".." {
		l.add(s.Errorf("", "invalid topic name %s; use up to 249 letters, digits, '.', '_' and '-'",
			l.d.describe(s.node)))
	}
}

// resolvePath makes a relative path relative to the pipeline's directory.
func (l *loader) resolvePath(path string) string {
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join(l.p.Dir, path)
}
