package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/cdc"
)

func TestNewValidates(t *testing.T) {
	t.Parallel()
	neg := -time.Second
	short := time.Millisecond
	tests := []struct {
		name string
		cfg  Config
		want []string // fragments of the error; none: valid
	}{
		{name: "minimal", cfg: Config{DSN: "postgres://u:p@h/db", TopicPrefix: "shop"}},
		{name: "kv dsn", cfg: Config{DSN: "host=h user=u password=secret dbname=db", TopicPrefix: "shop"}},
		{name: "missing dsn and prefix", cfg: Config{}, want: []string{"dsn: dsn is required", "topic_prefix: topic_prefix is required"}},
		{name: "bad values", cfg: Config{DSN: "postgres://u:p@h/db", TopicPrefix: "x", Slot: "Bad-Slot", Publication: "p p",
			IncludeTables: []string{"("}, ExcludeTables: []string{"[a"}, SnapshotMode: "sometimes", SnapshotChunkRows: -1,
			HeartbeatInterval: &neg, DecimalHandling: "exact"},
			want: []string{"slot:", "publication:", "include_tables:", "exclude_tables:", "snapshot_mode:", "snapshot_chunk_rows:", "heartbeat_interval:", "decimal_handling:"}},
		{name: "heartbeat too short", cfg: Config{DSN: "postgres://u:p@h/db", TopicPrefix: "x", HeartbeatInterval: &short}, want: []string{"too short"}},
		{name: "unparsable dsn keeps the password out", cfg: Config{DSN: "postgres://u:hunter2@h:notaport/db", TopicPrefix: "x"}, want: []string{"dsn:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := New(fakeDecoder{tt.cfg}, "pg", nil)
			if len(tt.want) == 0 {
				if err != nil || s == nil {
					t.Fatalf("New: %v", err)
				}
				if s.cfg.Slot == "" || s.cfg.Publication == "" || s.cfg.SnapshotMode != SnapshotInitial || s.heartbeat != defaultHeartbeat || s.cfg.DecimalHandling != DecimalString {
					t.Errorf("defaults not applied: %+v", s.cfg)
				}
				return
			}
			if err == nil {
				t.Fatal("New accepted a bad config")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func TestRedactDSN(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"url", "postgres://cdc:s3cret@127.0.0.1:5432/db?sslmode=disable", "postgres://cdc:xxxxx@127.0.0.1:5432/db?sslmode=disable"},
		{"url query", "postgres://cdc@h/db?password=s3cret", "postgres://cdc@h/db?password=xxxxx"},
		{"kv", "host=h password=s3cret user=u", "host=h password=xxxxx user=u"},
		{"kv quoted", "host=h password='s3 cret' user=u", "host=h password=xxxxx user=u"},
		{"none", "postgres://cdc@h/db", "postgres://cdc@h/db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := RedactDSN(tt.in); got != tt.want {
				t.Errorf("RedactDSN(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestConverters(t *testing.T) {
	t.Parallel()
	m := newTypeMapper(DecimalString, nil)
	conv := func(oid uint32, typmod int32, dec DecimalHandling) converter {
		m.decimal = dec
		_, c, err := m.mapType(oid, typmod, 0)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	enc := func(v any) string {
		b, err := cdc.AppendKey(nil, &cdc.Record{Key: cdc.Row{{Name: "v", Value: v}}})
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSuffix(strings.TrimPrefix(string(b), `{"v":`), "}")
	}
	numeric := func(p, s int32) int32 { return (p<<16 | s) + 4 }
	tests := []struct {
		name   string
		oid    uint32
		typmod int32
		dec    DecimalHandling
		in     string
		want   string
	}{
		{"int2", oidInt2, -1, "", "-32768", "-32768"},
		{"float4 shortest", oidFloat4, -1, "", "0.1", "0.1"},
		{"float8 nan", oidFloat8, -1, "", "NaN", `"NaN"`},
		{"numeric string", oidNumeric, numeric(10, 2), DecimalString, "-12.50", `"-12.50"`},
		{"numeric double", oidNumeric, numeric(10, 2), DecimalDouble, "-12.50", `-12.5`},
		{"numeric precise", oidNumeric, numeric(10, 2), DecimalPrecise, "-12.50", `"+x4="`},
		{"numeric precise positive high bit", oidNumeric, numeric(10, 0), DecimalPrecise, "128", `"AIA="`},
		{"numeric precise NaN", oidNumeric, numeric(10, 2), DecimalPrecise, "NaN", `null`},
		{"numeric variable precise", oidNumeric, -1, DecimalPrecise, "1.5", `{"scale":1,"value":"Dw=="}`},
		{"numeric infinity string", oidNumeric, -1, DecimalString, "Infinity", `"Infinity"`},
		{"money", oidMoney, -1, DecimalString, "-$1,234.56", `"-1234.56"`},
		{"bytea", oidBytea, -1, "", `\x00ff`, `"AP8="`},
		{"date bc", oidDate, -1, "", "0001-12-31 BC", "-719163"},
		{"time 24:00", oidTime, -1, "", "24:00:00", "86400000000"},
		{"timetz wraps", oidTimetz, -1, "", "01:00:00.25-02:30", `"03:30:00.25Z"`},
		{"timestamp ms", oidTimestamp, 3, "", "1970-01-01 00:00:01.5", "1500"},
		{"timestamptz", oidTimestamptz, -1, "", "2024-06-01 12:00:00+00", `"2024-06-01T12:00:00Z"`},
		{"interval negative", oidInterval, -1, "", "-1 mons +2 days -00:00:01", "-2457001000000"},
		{"bit(1)", oidBit, 1, "", "1", "true"},
		{"bits", oidBit, 9, "", "100000001", `"AQE="`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := conv(tt.oid, tt.typmod, tt.dec)([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := enc(v); got != tt.want {
				t.Errorf("%s → %s, want %s", tt.in, got, tt.want)
			}
		})
	}
	if v, err := convHstore([]byte(`"a"=>"1", "b \"q\""=>NULL`)); err != nil || v != `{"a":"1","b \"q\"":null}` {
		t.Errorf("hstore: %v %v", v, err)
	}
	v, err := arrayConverter(convInt)([]byte(`[0:1]={{1,2},{NULL,4}}`))
	if err != nil || enc(v) != `[[1,2],[null,4]]` {
		t.Errorf("array: %v %v", v, err)
	}
}
