package configs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// envOf returns a lookup function over a fixed environment.
func envOf(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// problemStrings returns the messages of every *Error in err, checking that
// err holds nothing else and that err.Error() lists them one per line.
func problemStrings(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var got []string
	for _, p := range Problems(err) {
		got = append(got, p.Error())
	}
	if want := strings.Join(got, "\n"); err.Error() != want {
		t.Errorf("err.Error() = %q; want the problems one per line: %q", err.Error(), want)
	}
	return got
}

// mustParse parses a config that must be valid.
func mustParse(t *testing.T, file, text string, env map[string]string) *Pipeline {
	t.Helper()
	p, err := Parse(file, []byte(text), envOf(env))
	if err != nil {
		t.Fatalf("Parse: unexpected error:\n%v", err)
	}
	return p
}

func TestParseReportsProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string
	}{
		{
			name: "bad indentation",
			yaml: "sources:\n  - name: gen\n     type: generator\n",
			want: []string{`pipeline.yaml:3:1: invalid YAML: mapping values are not allowed in this context; check the indentation, or quote a value that contains ": "`},
		},
		{
			name: "unclosed quote",
			yaml: "sources:\n  - name: \"gen\n    type: generator\n",
			want: []string{`pipeline.yaml:2:1: invalid YAML: found unexpected end of stream; check for an unclosed quote or bracket`},
		},
		{
			name: "tab indentation",
			yaml: "sources:\n\t- name: gen\n",
			want: []string{`pipeline.yaml:2:1: invalid YAML: found character that cannot start any token; indent with spaces, not tabs`},
		},
		{
			name: "unknown anchor",
			yaml: "sources:\n  - name: gen\n    type: *gen\n",
			want: []string{`pipeline.yaml:3:11: invalid YAML: unknown anchor 'gen' referenced`},
		},
		{
			name: "empty file",
			yaml: "",
			want: []string{`pipeline.yaml:1:1: empty config: expected a mapping with sources and/or sinks`},
		},
		{
			name: "only comments",
			yaml: "# nothing yet\n",
			want: []string{`pipeline.yaml:1:1: empty config: expected a mapping with sources and/or sinks`},
		},
		{
			name: "document is a list",
			yaml: "- name: gen\n  type: generator\n",
			want: []string{`pipeline.yaml:1:1: cannot use a list as a config; expected a mapping with sources and/or sinks`},
		},
		{
			name: "two documents",
			yaml: "sources: []\n---\nsinks: []\n",
			want: []string{`pipeline.yaml:3:1: found a second YAML document; put the whole pipeline in one document`},
		},
		{
			name: "no connectors",
			yaml: "kafka:\n  client_id: x\n",
			want: []string{`pipeline.yaml:1:1: no sources and no sinks: a pipeline needs at least one connector`},
		},
		{
			name: "unknown top-level key",
			yaml: "sorces:\n  - name: gen\n    type: generator\n",
			want: []string{`pipeline.yaml:1:1: sorces: unknown key "sorces"; did you mean "sources"?`},
		},
		{
			name: "unknown key under worker",
			yaml: "worker:\n  data_dri: /tmp\nsources: [{name: gen, type: generator}]\n",
			want: []string{`pipeline.yaml:2:3: worker.data_dri: unknown key "data_dri"; did you mean "data_dir"?`},
		},
		{
			name: "unknown key without a close match",
			yaml: "kafka:\n  zookeeper: zk:2181\nsources: [{name: gen, type: generator}]\n",
			want: []string{`pipeline.yaml:2:3: kafka.zookeeper: unknown key "zookeeper"; known keys: brokers, topic_partitions, embedded_listen, client_id`},
		},
		{
			name: "string for int",
			yaml: "kafka:\n  topic_partitions: three\nsources: [{name: gen, type: generator}]\n",
			want: []string{`pipeline.yaml:2:21: kafka.topic_partitions: cannot use "three" as an integer`},
		},
		{
			name: "mapping for list",
			yaml: "kafka:\n  brokers: {host: 127.0.0.1}\nsources: [{name: gen, type: generator}]\n",
			want: []string{`pipeline.yaml:2:12: kafka.brokers: cannot use a mapping as a list`},
		},
		{
			name: "scalar for mapping",
			yaml: "worker: fast\nsources: [{name: gen, type: generator}]\n",
			want: []string{`pipeline.yaml:1:9: worker: cannot use "fast" as a mapping`},
		},
		{
			name: "source is not a mapping",
			yaml: "sources:\n  - gen\n",
			want: []string{`pipeline.yaml:2:5: sources[0]: cannot use "gen" as a mapping`},
		},
		{
			name: "missing name",
			yaml: "sources:\n  - type: generator\n",
			want: []string{`pipeline.yaml:2:5: sources[0]: missing required key "name"`},
		},
		{
			name: "missing type",
			yaml: "sources:\n  - name: gen\n",
			want: []string{`pipeline.yaml:2:5: sources[0]: missing required key "type"`},
		},
		{
			name: "empty type",
			yaml: "sources:\n  - name: gen\n    type: \"\"\n",
			want: []string{`pipeline.yaml:3:11: sources[0].type: must not be empty`},
		},
		{
			name: "invalid name",
			yaml: "sources:\n  - name: my gen\n    type: generator\n",
			want: []string{`pipeline.yaml:2:11: sources[0].name: invalid name "my gen"; use letters, digits, '.', '_' and '-', starting with a letter or digit`},
		},
		{
			name: "duplicate name across source and sink",
			yaml: "sources:\n  - name: gen\n    type: generator\nsinks:\n  - name: gen\n    type: file\n    topics: [t]\n",
			want: []string{`pipeline.yaml:5:11: sinks[0].name: duplicate name "gen": sources[0] at line 2 already uses it (sources and sinks share one namespace)`},
		},
		{
			name: "duplicate key",
			yaml: "sources:\n  - name: gen\n    type: generator\n    name: gen2\n",
			want: []string{`pipeline.yaml:4:5: sources[0].name: duplicate key "name"; it is already set at line 2`},
		},
		{
			name: "sink with both topics and topics_regex",
			yaml: "sinks:\n  - name: out\n    type: file\n    topics: [a]\n    topics_regex: 'a.*'\n",
			want: []string{`pipeline.yaml:5:19: sinks[0]: set either topics or topics_regex, not both`},
		},
		{
			name: "sink with neither topics nor topics_regex",
			yaml: "sinks:\n  - name: out\n    type: file\n",
			want: []string{`pipeline.yaml:2:5: sinks[0]: missing required key "topics" or "topics_regex"`},
		},
		{
			name: "sink with an empty topic list",
			yaml: "sinks:\n  - name: out\n    type: file\n    topics: []\n",
			want: []string{`pipeline.yaml:4:13: sinks[0].topics: must list at least one topic`},
		},
		{
			name: "bad topic name",
			yaml: "sinks:\n  - name: out\n    type: file\n    topics: [ok, 'not ok']\n",
			want: []string{`pipeline.yaml:4:18: sinks[0].topics[1]: invalid topic name "not ok"; use up to 249 letters, digits, '.', '_' and '-'`},
		},
		{
			name: "bad regex",
			yaml: "sinks:\n  - name: out\n    type: file\n    topics_regex: 'demo\\.(inventory'\n",
			want: []string{"pipeline.yaml:4:19: sinks[0].topics_regex: invalid regular expression: error parsing regexp: missing closing ): `demo\\.(inventory`"},
		},
		{
			name: "transform without type",
			yaml: "sources:\n  - name: gen\n    type: generator\n    transforms:\n      - when: x\n",
			want: []string{`pipeline.yaml:5:9: sources[0].transforms[0]: missing required key "type"`},
		},
		{
			name: "config is not a mapping",
			yaml: "sources:\n  - name: gen\n    type: generator\n    config: [a]\n",
			want: []string{`pipeline.yaml:4:13: sources[0].config: cannot use a list as a mapping`},
		},
		{
			name: "unset env var",
			yaml: "sources:\n  - name: pg\n    type: postgres\n    config:\n      dsn: postgres://app:${PG_PASSWORD}@db/app\n",
			want: []string{`pipeline.yaml:5:12: sources[0].config.dsn: environment variable PG_PASSWORD is not set; export it or write ${PG_PASSWORD:-default}`},
		},
		{
			name: "unterminated interpolation",
			yaml: "sources:\n  - name: pg\n    type: postgres\n    config:\n      dsn: ${PG_DSN\n",
			want: []string{`pipeline.yaml:5:12: sources[0].config.dsn: unterminated "${": close it with "}", or write "$${" for a literal "${"`},
		},
		{
			name: "env value is not echoed",
			yaml: "kafka:\n  topic_partitions: ${PARTITIONS}\nsources: [{name: gen, type: generator}]\n",
			env:  map[string]string{"PARTITIONS": "hunter2"},
			want: []string{`pipeline.yaml:2:21: kafka.topic_partitions: cannot use value from ${PARTITIONS} as an integer`},
		},
		{
			name: "bad duration",
			yaml: "worker:\n  shutdown_timeout: 10\n  offset_flush_interval: soon\nsources: [{name: gen, type: generator}]\n",
			want: []string{
				`pipeline.yaml:2:21: worker.shutdown_timeout: cannot use 10 as a duration; write a duration such as 10s`,
				`pipeline.yaml:3:26: worker.offset_flush_interval: cannot use "soon" as a duration; write a duration such as 10s`,
			},
		},
		{
			name: "durations not positive",
			yaml: "worker:\n  shutdown_timeout: 0s\n  offset_flush_interval: -1s\nsources: [{name: gen, type: generator}]\n",
			want: []string{
				`pipeline.yaml:2:21: worker.shutdown_timeout: must be greater than 0`,
				`pipeline.yaml:3:26: worker.offset_flush_interval: must be greater than 0`,
			},
		},
		{
			name: "topic_partitions below 1",
			yaml: "kafka:\n  topic_partitions: 0\nsources: [{name: gen, type: generator}]\n",
			want: []string{`pipeline.yaml:2:21: kafka.topic_partitions: must be at least 1`},
		},
		{
			name: "bad addresses",
			yaml: "kafka:\n  brokers: [127.0.0.1:9092, kafka]\nworker:\n  http: 8083\nsources: [{name: gen, type: generator}]\n",
			want: []string{
				`pipeline.yaml:2:29: kafka.brokers[1]: invalid address "kafka"; write host:port such as 127.0.0.1:9092`,
				`pipeline.yaml:4:9: worker.http: invalid address 8083; write host:port such as 127.0.0.1:8083, or "off"`,
			},
		},
		{
			name: "unknown offset store",
			yaml: "worker:\n  offsets: {store: redis}\nsources: [{name: gen, type: generator}]\n",
			want: []string{`pipeline.yaml:2:20: worker.offsets.store: cannot use "redis" as an offset store; use kafka or file`},
		},
		{
			name: "offsets path with the kafka store",
			yaml: "worker:\n  offsets: {store: kafka, path: ./offsets.json}\nsources: [{name: gen, type: generator}]\n",
			want: []string{`pipeline.yaml:2:33: worker.offsets.path: only used when store is file`},
		},
		{
			name: "two problems in one file",
			yaml: "kafka:\n  topic_partitions: three\nsinks:\n  - name: out\n    type: file\n",
			want: []string{
				`pipeline.yaml:2:21: kafka.topic_partitions: cannot use "three" as an integer`,
				`pipeline.yaml:4:5: sinks[0]: missing required key "topics" or "topics_regex"`,
			},
		},
		{
			name: "problems in file order",
			yaml: "sinks:\n  - name: out\n    type: file\nsources:\n  - type: generator\nworker:\n  nmae: w\n",
			want: []string{
				`pipeline.yaml:2:5: sinks[0]: missing required key "topics" or "topics_regex"`,
				`pipeline.yaml:5:5: sources[0]: missing required key "name"`,
				`pipeline.yaml:7:3: worker.nmae: unknown key "nmae"; did you mean "name"?`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("pipeline.yaml", []byte(tt.yaml), envOf(tt.env))
			if err == nil {
				t.Fatalf("Parse: no error; want %q", tt.want)
			}
			got := problemStrings(t, err)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Parse problems:\n got: %q\nwant: %q", got, tt.want)
			}
			for name, secret := range tt.env {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error shows the value of %s: %v", name, err)
				}
			}
		})
	}
}

func TestParseFillsDefaults(t *testing.T) {
	t.Parallel()
	p := mustParse(t, "/etc/connectd/pipeline.yaml", `
sources:
  - name: gen
    type: generator
`, nil)
	want := Pipeline{
		File: "/etc/connectd/pipeline.yaml",
		Dir:  "/etc/connectd",
		Kafka: Kafka{
			TopicPartitions: 3,
			EmbeddedListen:  "127.0.0.1:0",
			ClientID:        "connectd",
		},
		Worker: Worker{
			Name:                "worker-1",
			DataDir:             "/etc/connectd/data",
			HTTP:                "127.0.0.1:8083",
			Offsets:             Offsets{Store: "kafka", Topic: "connectd-offsets"},
			OffsetFlushInterval: Duration(time.Second),
			ShutdownTimeout:     Duration(10 * time.Second),
		},
	}
	if p.File != want.File || p.Dir != want.Dir {
		t.Errorf("File, Dir = %q, %q; want %q, %q", p.File, p.Dir, want.File, want.Dir)
	}
	if len(p.Kafka.Brokers) != 0 || p.Kafka.TopicPartitions != want.Kafka.TopicPartitions ||
		p.Kafka.EmbeddedListen != want.Kafka.EmbeddedListen || p.Kafka.ClientID != want.Kafka.ClientID {
		t.Errorf("Kafka = %+v; want %+v", p.Kafka, want.Kafka)
	}
	if p.Worker != want.Worker {
		t.Errorf("Worker = %+v; want %+v", p.Worker, want.Worker)
	}
}

func TestParseKeepsExplicitValues(t *testing.T) {
	t.Parallel()
	p := mustParse(t, "/srv/pipeline.yaml", `
kafka:
  brokers: ["10.0.0.1:9092", "10.0.0.2:9092"]
  topic_partitions: 12
  client_id: cdc
worker:
  name: w2
  data_dir: /var/lib/connectd
  http: "off"
  offsets: {store: file}
  offset_flush_interval: 250ms
  shutdown_timeout: 1m30s
sinks:
  - name: out
    type: file
    topics_regex: "demo\\..*"
`, nil)
	if got, want := p.Kafka.Brokers, []string{"10.0.0.1:9092", "10.0.0.2:9092"}; !slices.Equal(got, want) {
		t.Errorf("Brokers = %q; want %q", got, want)
	}
	if p.Kafka.TopicPartitions != 12 || p.Kafka.ClientID != "cdc" {
		t.Errorf("Kafka = %+v", p.Kafka)
	}
	want := Worker{
		Name:                "w2",
		DataDir:             "/var/lib/connectd",
		HTTP:                "",
		Offsets:             Offsets{Store: "file", Path: "/var/lib/connectd/offsets.json"},
		OffsetFlushInterval: Duration(250 * time.Millisecond),
		ShutdownTimeout:     Duration(90 * time.Second),
	}
	if p.Worker != want {
		t.Errorf("Worker = %+v; want %+v", p.Worker, want)
	}
	if p.Sinks[0].TopicsRegex != `demo\..*` || p.Sinks[0].Topics != nil {
		t.Errorf("sink topics = %q, regex %q", p.Sinks[0].Topics, p.Sinks[0].TopicsRegex)
	}
}

func TestParseHTTP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		line string // the worker.http line, if any
		want string
	}{
		{name: "absent", line: "", want: "127.0.0.1:8083"},
		{name: "address", line: "http: 0.0.0.0:9000", want: "0.0.0.0:9000"},
		{name: "off", line: "http: off", want: ""},
		{name: "empty string", line: `http: ""`, want: ""},
		{name: "empty value", line: "http:", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mustParse(t, "p.yaml", "worker:\n  name: w\n  "+tt.line+"\nsources: [{name: gen, type: generator}]\n", nil)
			if p.Worker.HTTP != tt.want {
				t.Errorf("HTTP = %q; want %q", p.Worker.HTTP, tt.want)
			}
		})
	}
}

func TestParseResolvesRelativePaths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		file        string
		worker      string
		wantDataDir string
		wantOffsets string
	}{
		{
			name:        "default data dir and offsets file",
			file:        "/etc/connectd/pipeline.yaml",
			worker:      "offsets: {store: file}",
			wantDataDir: "/etc/connectd/data",
			wantOffsets: "/etc/connectd/data/offsets.json",
		},
		{
			name:        "relative data dir",
			file:        "/etc/connectd/pipeline.yaml",
			worker:      "data_dir: ../state\n  offsets: {store: file}",
			wantDataDir: "/etc/state",
			wantOffsets: "/etc/state/offsets.json",
		},
		{
			name:        "relative offsets path",
			file:        "/etc/connectd/pipeline.yaml",
			worker:      "data_dir: /var/lib/cd\n  offsets: {store: file, path: ./offsets/o.json}",
			wantDataDir: "/var/lib/cd",
			wantOffsets: "/etc/connectd/offsets/o.json",
		},
		{
			name:        "file in the working directory",
			file:        "pipeline.yaml",
			worker:      "offsets: {store: file}",
			wantDataDir: "data",
			wantOffsets: filepath.Join("data", "offsets.json"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mustParse(t, tt.file, "worker:\n  "+tt.worker+"\nsources: [{name: gen, type: generator}]\n", nil)
			if p.Worker.DataDir != tt.wantDataDir {
				t.Errorf("DataDir = %q; want %q", p.Worker.DataDir, tt.wantDataDir)
			}
			if p.Worker.Offsets.Path != tt.wantOffsets {
				t.Errorf("Offsets.Path = %q; want %q", p.Worker.Offsets.Path, tt.wantOffsets)
			}
		})
	}
}

func TestParseInterpolatesEnvironment(t *testing.T) {
	t.Parallel()
	p := mustParse(t, "p.yaml", `
kafka:
  brokers: ["${KAFKA_HOST:-127.0.0.1}:${KAFKA_PORT}"]
  topic_partitions: ${PARTITIONS:-6}
sources:
  - name: pg
    type: postgres
    config:
      dsn: "postgres://app:${PG_PASSWORD}@${PG_HOST:-127.0.0.1}/app"
      literal: $${NOT_A_VAR} costs $$5
      empty_default: "${EMPTY:-fallback}"
      keys_are_kept: {"${KEY}": x}
`, map[string]string{"KAFKA_PORT": "9093", "PG_PASSWORD": "s3cret", "EMPTY": ""})
	if got, want := p.Kafka.Brokers, []string{"127.0.0.1:9093"}; !slices.Equal(got, want) {
		t.Errorf("Brokers = %q; want %q", got, want)
	}
	if p.Kafka.TopicPartitions != 6 {
		t.Errorf("TopicPartitions = %d; want 6 (a plain scalar is re-typed after interpolation)", p.Kafka.TopicPartitions)
	}
	var cfg struct {
		DSN          string            `yaml:"dsn"`
		Literal      string            `yaml:"literal"`
		EmptyDefault string            `yaml:"empty_default"`
		Keys         map[string]string `yaml:"keys_are_kept"`
	}
	if err := p.Sources[0].Config.Decode(&cfg); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	checks := []struct{ name, got, want string }{
		{"dsn", cfg.DSN, "postgres://app:s3cret@127.0.0.1/app"},
		{"literal", cfg.Literal, "${NOT_A_VAR} costs $$5"},
		{"empty_default", cfg.EmptyDefault, "fallback"},
		{"keys_are_kept", cfg.Keys["${KEY}"], "x"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q; want %q", c.name, c.got, c.want)
		}
	}
}

func TestParseConnectors(t *testing.T) {
	t.Parallel()
	p := mustParse(t, "p.yaml", `x-common: &pg
  host: db
sources:
  - name: gen
    type: generator
    config:
      <<: *pg
      rate: 10
    transforms:
      - type: filter
        when: 'x > 1'
      - {type: mask, fields: [ssn]}
    errors: {tolerance: all}
sinks:
  - name: out.file_1
    type: file
    topics: [demo.inventory.items, other]
`, nil)
	if len(p.Sources) != 1 || len(p.Sinks) != 1 {
		t.Fatalf("got %d sources and %d sinks; want 1 and 1", len(p.Sources), len(p.Sinks))
	}
	src := p.Sources[0]
	if src.Name != "gen" || src.Type != "generator" || src.Path != "sources[0]" {
		t.Errorf("source = %q %q %q", src.Name, src.Type, src.Path)
	}
	if got, want := src.Pos.String(), "p.yaml:4:5"; got != want {
		t.Errorf("source Pos = %s; want %s", got, want)
	}
	if got, want := src.TypePos.String(), "p.yaml:5:11"; got != want {
		t.Errorf("source TypePos = %s; want %s", got, want)
	}
	var cfg struct {
		Host string `yaml:"host"`
		Rate int    `yaml:"rate"`
	}
	if err := src.Config.Decode(&cfg); err != nil || cfg.Host != "db" || cfg.Rate != 10 {
		t.Errorf("config = %+v, %v; want host db (merged) and rate 10", cfg, err)
	}
	if src.Errors.IsZero() || src.Errors.Path() != "sources[0].errors" {
		t.Errorf("errors section = %+v", src.Errors)
	}

	if len(src.Transforms) != 2 {
		t.Fatalf("got %d transforms; want 2", len(src.Transforms))
	}
	tr := src.Transforms[1]
	if tr.Type != "mask" || tr.Path != "sources[0].transforms[1]" || tr.Pos.String() != "p.yaml:12:9" || tr.TypePos.String() != "p.yaml:12:16" {
		t.Errorf("transform = %q %q at %s, type at %s", tr.Type, tr.Path, tr.Pos, tr.TypePos)
	}
	var mask struct {
		Type   string   `yaml:"type"`
		Fields []string `yaml:"fields"`
	}
	if err := tr.Config.Decode(&mask); err != nil || mask.Type != "mask" || !slices.Equal(mask.Fields, []string{"ssn"}) {
		t.Errorf("transform config = %+v, %v", mask, err)
	}

	sink := p.Sinks[0]
	if sink.Name != "out.file_1" || sink.Path != "sinks[0]" || !slices.Equal(sink.Topics, []string{"demo.inventory.items", "other"}) {
		t.Errorf("sink = %+v", sink)
	}
	if !sink.Config.IsZero() {
		t.Errorf("absent sink config is not zero")
	}
	// An absent config still points at its connector, for "missing key" errors.
	if got, want := sink.Config.Errorf("path", "is required").Error(), "p.yaml:15:5: sinks[0].config.path: is required"; got != want {
		t.Errorf("absent config Errorf = %q; want %q", got, want)
	}
}

func TestParseReturnsPartialPipeline(t *testing.T) {
	t.Parallel()
	p, err := Parse("p.yaml", []byte("kafka:\n  topic_partitions: x\nsources: [{name: gen, type: generator}]\n"), nil)
	if err == nil {
		t.Fatal("Parse: no error")
	}
	if p == nil || len(p.Sources) != 1 || p.Sources[0].Name != "gen" {
		t.Fatalf("Parse returned %+v with the error; want the decoded source", p)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "pipeline.yaml")
	text := "worker:\n  data_dir: ${DATA:-state}\nsources: [{name: gen, type: generator}]\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Load(path, envOf(nil))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if p.File != path || p.Dir != dir || p.Worker.DataDir != filepath.Join(dir, "state") {
		t.Errorf("File, Dir, DataDir = %q, %q, %q", p.File, p.Dir, p.Worker.DataDir)
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("sources:\n  - name: gen\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(bad, nil)
	if got, want := problemStrings(t, err), []string{bad + `:2:5: sources[0]: missing required key "type"`}; !slices.Equal(got, want) {
		t.Errorf("Load(bad) problems = %q; want %q", got, want)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"), nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v; want an error wrapping fs.ErrNotExist", err)
	}
	if len(Problems(err)) != 0 {
		t.Errorf("Load(missing) problems = %v; want none", Problems(err))
	}
}
