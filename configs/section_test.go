package configs

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// sectionOf parses text as the `config:` of a connector in c.yaml, so that
// positions in tests are the lines of text itself.
func sectionOf(t *testing.T, text string, env map[string]string) Section {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("parsing test YAML: %v", err)
	}
	root := doc.Content[0]
	info, problems := interpolate("c.yaml", root, envOf(env))
	if len(problems) > 0 {
		t.Fatalf("interpolating test YAML: %v", join(problems))
	}
	return Section{node: root, file: "c.yaml", path: "config", at: Pos{File: "c.yaml", Line: 1, Col: 1}, env: info}
}

// level implements yaml.Unmarshaler.
type level int

func (l *level) UnmarshalYAML(n *yaml.Node) error {
	switch n.Value {
	case "low":
		*l = 1
	case "high":
		*l = 2
	default:
		return fmt.Errorf("unknown level %q; use low or high", n.Value)
	}
	return nil
}

type retry struct {
	Attempts int           `yaml:"attempts"`
	Backoff  time.Duration `yaml:"backoff"`
}

type common struct {
	Debug bool `yaml:"debug"`
}

type connectorConfig struct {
	common   `yaml:",inline"`
	DSN      string               `yaml:"dsn"`
	Tables   []string             `yaml:"tables"`
	Labels   map[string]string    `yaml:"labels"`
	Weights  map[string]int       `yaml:"weights"`
	Retry    retry                `yaml:"retry"`
	Poll     Duration             `yaml:"poll"`
	TLS      *struct{ CA string } `yaml:"tls"`
	Level    level                `yaml:"level"`
	Addr     netip.Addr           `yaml:"addr"`
	Pair     [2]float64           `yaml:"pair"`
	Extra    any                  `yaml:"extra"`
	Snapshot Section              `yaml:"snapshot"`
	Untagged uint16
	Ignored  string `yaml:"-"`
}

func TestSectionDecode(t *testing.T) {
	t.Parallel()
	s := sectionOf(t, `
debug: true
dsn: postgres://${PG_USER:-app}@db/app
tables: [public.items, public.orders]
labels: {team: data, "k.v": x}
weights: {a: 1, b: 2}
retry:
  attempts: 5
  backoff: 1m30s
poll: 250ms
tls: {ca: /etc/ca.pem}
level: high
addr: 10.0.0.1
pair: [0.5, 2]
extra: {any: [thing, 1]}
snapshot: {mode: initial}
untagged: 7
`, nil)
	cfg := connectorConfig{Retry: retry{Attempts: 3}}
	if err := s.Decode(&cfg); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := connectorConfig{
		common:   common{Debug: true},
		DSN:      "postgres://app@db/app",
		Tables:   []string{"public.items", "public.orders"},
		Labels:   map[string]string{"team": "data", "k.v": "x"},
		Weights:  map[string]int{"a": 1, "b": 2},
		Retry:    retry{Attempts: 5, Backoff: 90 * time.Second},
		Poll:     Duration(250 * time.Millisecond),
		Level:    2,
		Addr:     netip.MustParseAddr("10.0.0.1"),
		Pair:     [2]float64{0.5, 2},
		Untagged: 7,
	}
	switch {
	case cfg.common != want.common, cfg.DSN != want.DSN, !slices.Equal(cfg.Tables, want.Tables),
		fmt.Sprint(cfg.Labels) != fmt.Sprint(want.Labels), fmt.Sprint(cfg.Weights) != fmt.Sprint(want.Weights),
		cfg.Retry != want.Retry, cfg.Poll != want.Poll, cfg.Level != want.Level, cfg.Addr != want.Addr,
		cfg.Pair != want.Pair, cfg.Untagged != want.Untagged:
		t.Errorf("Decode =\n%+v\nwant\n%+v", cfg, want)
	}
	if cfg.TLS == nil || cfg.TLS.CA != "/etc/ca.pem" {
		t.Errorf("TLS = %+v; want CA /etc/ca.pem", cfg.TLS)
	}
	if got := fmt.Sprint(cfg.Extra); got != "map[any:[thing 1]]" {
		t.Errorf("Extra = %s", got)
	}
	var snap struct {
		Mode string `yaml:"mode"`
	}
	if err := cfg.Snapshot.Decode(&snap); err != nil || snap.Mode != "initial" {
		t.Errorf("Snapshot.Decode = %+v, %v", snap, err)
	}
	if got, want := cfg.Snapshot.Path(), "config.snapshot"; got != want {
		t.Errorf("Snapshot.Path() = %q; want %q", got, want)
	}
}

func TestSectionDecodeNullKeepsDefaults(t *testing.T) {
	t.Parallel()
	s := sectionOf(t, "attempts:\nbackoff: ~\n", nil)
	cfg := retry{Attempts: 3, Backoff: time.Second}
	if err := s.Decode(&cfg); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if cfg != (retry{Attempts: 3, Backoff: time.Second}) {
		t.Errorf("Decode = %+v; want the defaults kept", cfg)
	}
}

func TestSectionDecodeZero(t *testing.T) {
	t.Parallel()
	cfg := retry{Attempts: 3}
	if err := (Section{}).Decode(&cfg); err != nil || cfg.Attempts != 3 {
		t.Errorf("zero Section Decode = %+v, %v; want out unchanged and nil", cfg, err)
	}
}

func TestSectionDecodeNeedsPointer(t *testing.T) {
	t.Parallel()
	s := sectionOf(t, "attempts: 1\n", nil)
	err := s.Decode(retry{})
	if err == nil || len(Problems(err)) != 0 {
		t.Errorf("Decode(non-pointer) = %v; want a plain error", err)
	}
}

func TestSectionDecodeProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string
	}{
		{
			name: "unknown key with suggestion",
			yaml: "retry:\n  attempts: 1\n  backof: 1s\n",
			want: []string{`c.yaml:3:3: config.retry.backof: unknown key "backof"; did you mean "backoff"?`},
		},
		{
			name: "unknown key without suggestion",
			yaml: "retry:\n  jitter: 0.1\n",
			want: []string{`c.yaml:2:3: config.retry.jitter: unknown key "jitter"; known keys: attempts, backoff`},
		},
		{
			name: "unknown key in an inline struct's parent suggests inline keys",
			yaml: "debgu: true\n",
			want: []string{`c.yaml:1:1: config.debgu: unknown key "debgu"; did you mean "debug"?`},
		},
		{
			name: "type error at the value",
			yaml: "tables: [a]\nretry:\n  attempts: many\n",
			want: []string{`c.yaml:3:13: config.retry.attempts: cannot use "many" as an integer`},
		},
		{
			name: "float is not an integer",
			yaml: "retry: {attempts: 1.5}\n",
			want: []string{`c.yaml:1:19: config.retry.attempts: cannot use 1.5 as an integer`},
		},
		{
			name: "out of range",
			yaml: "untagged: 70000\n",
			want: []string{`c.yaml:1:11: config.untagged: 70000 is out of range for uint16`},
		},
		{
			name: "negative unsigned",
			yaml: "untagged: -1\n",
			want: []string{`c.yaml:1:11: config.untagged: cannot use -1 as a non-negative integer`},
		},
		{
			name: "plain integer duration",
			yaml: "poll: 10\n",
			want: []string{`c.yaml:1:7: config.poll: cannot use 10 as a duration; write a duration such as 10s`},
		},
		{
			name: "list item of the wrong type",
			yaml: "tables: [a, {b: c}]\n",
			want: []string{`c.yaml:1:13: config.tables[1]: cannot use a mapping as a string`},
		},
		{
			name: "map value of the wrong type",
			yaml: "weights: {a: heavy}\n",
			want: []string{`c.yaml:1:14: config.weights.a: cannot use "heavy" as an integer`},
		},
		{
			name: "quoted map key in path",
			yaml: "weights: {a.b: heavy}\n",
			want: []string{`c.yaml:1:16: config.weights["a.b"]: cannot use "heavy" as an integer`},
		},
		{
			name: "boolean",
			yaml: "debug: maybe\n",
			want: []string{`c.yaml:1:8: config.debug: cannot use "maybe" as a boolean; write true or false`},
		},
		{
			name: "array length",
			yaml: "pair: [1, 2, 3]\n",
			want: []string{`c.yaml:1:7: config.pair: expected a list of 2 items, got 3`},
		},
		{
			name: "unmarshaler error",
			yaml: "level: medium\n",
			want: []string{`c.yaml:1:8: config.level: unknown level "medium"; use low or high`},
		},
		{
			name: "text unmarshaler error",
			yaml: "addr: nowhere\n",
			want: []string{`c.yaml:1:7: config.addr: invalid value "nowhere": ParseAddr("nowhere"): unable to parse IP`},
		},
		{
			name: "env values are not echoed",
			yaml: "addr: ${ADDR}\nretry: {attempts: \"${N}\"}\n",
			env:  map[string]string{"ADDR": "secret-host", "N": "secret-n"},
			want: []string{
				`c.yaml:1:7: config.addr: invalid value value from ${ADDR}: ParseAddr("value from ${ADDR}"): unable to parse IP`,
				`c.yaml:2:19: config.retry.attempts: cannot use value from ${N} as an integer`,
			},
		},
		{
			name: "duplicate key",
			yaml: "dsn: a\ndsn: b\n",
			want: []string{`c.yaml:2:1: config.dsn: duplicate key "dsn"; it is already set at line 1`},
		},
		{
			name: "several problems at once, in file order",
			yaml: "retry:\n  attempts: x\n  backoff: soon\ntabels: [a]\npoll: [1s]\nlevel: medium\n",
			want: []string{
				`c.yaml:2:13: config.retry.attempts: cannot use "x" as an integer`,
				`c.yaml:3:12: config.retry.backoff: cannot use "soon" as a duration; write a duration such as 10s`,
				`c.yaml:4:1: config.tabels: unknown key "tabels"; did you mean "tables"?`,
				`c.yaml:5:7: config.poll: cannot use a list as a duration; write a duration such as 10s`,
				`c.yaml:6:8: config.level: unknown level "medium"; use low or high`,
			},
		},
		{
			name: "bad merge",
			yaml: "<<: 5\ndsn: x\n",
			want: []string{`c.yaml:1:5: config["<<"]: cannot merge 5; merge a mapping or a list of mappings`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var cfg connectorConfig
			err := sectionOf(t, tt.yaml, tt.env).Decode(&cfg)
			if err == nil {
				t.Fatalf("Decode: no error; want %q", tt.want)
			}
			got := problemStrings(t, err)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Decode problems:\n got: %q\nwant: %q", got, tt.want)
			}
			for name, secret := range tt.env {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error shows the value of %s: %v", name, err)
				}
			}
		})
	}
}

func TestSectionDecodeKeepsGoodFields(t *testing.T) {
	t.Parallel()
	var cfg retry
	err := sectionOf(t, "attempts: x\nbackoff: 2s\n", nil).Decode(&cfg)
	if err == nil || cfg.Backoff != 2*time.Second {
		t.Errorf("Decode = %+v, %v; want backoff set and an error for attempts", cfg, err)
	}
}

func TestSectionDecodeInlineMap(t *testing.T) {
	t.Parallel()
	var cfg struct {
		Type string         `yaml:"type"`
		Rest map[string]any `yaml:",inline"`
	}
	if err := sectionOf(t, "type: filter\nwhen: x > 1\nlimit: 3\n", nil).Decode(&cfg); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if cfg.Type != "filter" || fmt.Sprint(cfg.Rest) != "map[limit:3 when:x > 1]" {
		t.Errorf("Decode = %+v", cfg)
	}
}

func TestSectionDecodeAliasBomb(t *testing.T) {
	t.Parallel()
	var text strings.Builder
	text.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&text, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	var cfg map[string][][][][][][][][][][]string
	err := sectionOf(t, text.String(), nil).Decode(&cfg)
	if err == nil || !strings.Contains(err.Error(), "too many alias expansions") {
		t.Errorf("Decode = %v; want a too many alias expansions error", err)
	}
}

func TestSectionField(t *testing.T) {
	t.Parallel()
	s := sectionOf(t, "tls:\n  ca: /ca.pem\nempty:\nrate: 0\n", nil)
	tests := []struct {
		name     string
		section  Section
		wantZero bool
		wantPath string
		wantPos  string
	}{
		{name: "present", section: s.Field("tls"), wantPath: "config.tls", wantPos: "c.yaml:2:3"},
		{name: "nested", section: s.Field("tls").Field("ca"), wantPath: "config.tls.ca", wantPos: "c.yaml:2:7"},
		{name: "null value", section: s.Field("empty"), wantZero: true, wantPath: "config.empty", wantPos: "c.yaml:3:7"},
		{name: "absent", section: s.Field("sasl"), wantZero: true, wantPath: "config.sasl", wantPos: "c.yaml:1:1"},
		{name: "under absent", section: s.Field("sasl").Field("user"), wantZero: true, wantPath: "config.sasl.user", wantPos: "c.yaml:1:1"},
		{name: "under a scalar", section: s.Field("rate").Field("x"), wantZero: true, wantPath: "config.rate.x", wantPos: "c.yaml:4:7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.section.IsZero(); got != tt.wantZero {
				t.Errorf("IsZero() = %v; want %v", got, tt.wantZero)
			}
			if got := tt.section.Path(); got != tt.wantPath {
				t.Errorf("Path() = %q; want %q", got, tt.wantPath)
			}
			if got := tt.section.Pos().String(); got != tt.wantPos {
				t.Errorf("Pos() = %s; want %s", got, tt.wantPos)
			}
		})
	}
}

func TestSectionErrorf(t *testing.T) {
	t.Parallel()
	s := sectionOf(t, "tls:\n  ca: /ca.pem\nrate: 0\n", nil)
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{name: "at a key's value", err: s.Errorf("rate", "must be > 0, got %d", 0), want: "c.yaml:3:7: config.rate: must be > 0, got 0"},
		{name: "at an absent key", err: s.Errorf("dsn", "is required"), want: "c.yaml:1:1: config.dsn: is required"},
		{name: "at the section", err: s.Field("tls").Errorf("", "needs a certificate"), want: "c.yaml:2:3: config.tls: needs a certificate"},
		{name: "in a nested section", err: s.Field("tls").Errorf("cert", "is required"), want: "c.yaml:2:3: config.tls.cert: is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Errorf = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestSectionErrorfWraps(t *testing.T) {
	t.Parallel()
	errDial := errors.New("dial refused")
	err := sectionOf(t, "dsn: x\n", nil).Errorf("dsn", "cannot connect: %w", errDial)
	if !errors.Is(err, errDial) {
		t.Errorf("errors.Is(%v, errDial) = false; want true", err)
	}
}

func TestDurationUnmarshalYAML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		yaml    string
		want    Duration
		wantErr string
	}{
		{name: "seconds", yaml: "d: 10s", want: Duration(10 * time.Second)},
		{name: "compound", yaml: "d: 1m30s", want: Duration(90 * time.Second)},
		{name: "plain integer", yaml: "d: 10", wantErr: "cannot use 10 as a duration; write a duration such as 10s"},
		{name: "word", yaml: "d: soon", wantErr: `cannot use "soon" as a duration; write a duration such as 10s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var v struct{ D Duration }
			err := yaml.Unmarshal([]byte(tt.yaml), &v)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Unmarshal error = %v; want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || v.D != tt.want {
				t.Errorf("Unmarshal = %v, %v; want %v", v.D, err, tt.want)
			}
		})
	}
}
