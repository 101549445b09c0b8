package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/configs"
	"github.com/connectd/connectd/integration/servers"
	"github.com/connectd/connectd/sources/generator"
)

// section builds a cdc.ConfigDecoder from YAML text.
func section(t testing.TB, yaml string) cdc.ConfigDecoder {
	t.Helper()
	p, err := configs.Parse("test.yaml", []byte("sinks:\n  - name: pg\n    type: postgres\n    topics: [x]\n    config:\n"+indent(yaml)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("parsing config: %v", err)
	}
	return decoder{p.Sinks[0].Config}
}

type decoder struct{ s configs.Section }

func (d decoder) Decode(out any) error { return d.s.Decode(out) }
func (d decoder) Errorf(key, format string, args ...any) error {
	return d.s.Errorf(key, format, args...)
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		b.WriteString("      " + l + "\n")
	}
	return b.String()
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, yaml, want string }{
		{"no dsn", `table: x`, "config.dsn: dsn is required"},
		{"bad delete mode", "dsn: postgres://a@h/db\ndelete_mode: hard", `delete_mode must be delete or soft, not "hard"`},
		{"bad template", "dsn: postgres://a@h/db\ntable: \"{tabel}\"", "unknown variable {tabel}"},
		{"fields and exclude", "dsn: postgres://a@h/db\nfields: [a]\nexclude_fields: [b]", "not both"},
		{"unknown key", "dsn: postgres://a@h/db\nauto_creat: true", `unknown key "auto_creat"; did you mean "auto_create"?`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(section(t, tc.yaml), "pg", nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "test.yaml:") {
				t.Fatalf("err = %v, want %q with a position", err, tc.want)
			}
		})
	}
}

func TestTextConversions(t *testing.T) {
	t.Parallel()
	typ := func(k cdc.Kind, logical string, params map[string]string) *cdc.Type {
		return &cdc.Type{Kind: k, Logical: logical, Params: params}
	}
	cases := []struct {
		name string
		f    cdc.Field
		pg   string
		want string
	}{
		{"date", cdc.Field{Type: typ(cdc.KindInt32, "io.debezium.time.Date", nil), Value: json.Number("19000")}, "date", "2022-01-08"},
		{"micro timestamp", cdc.Field{Type: typ(cdc.KindInt64, "io.debezium.time.MicroTimestamp", nil), Value: json.Number("1700000000123456")}, "timestamp", "2023-11-14 22:13:20.123456"},
		{"negative micro time", cdc.Field{Type: typ(cdc.KindInt64, "io.debezium.time.MicroTime", nil), Value: json.Number("-3723000001")}, "time", "-01:02:03.000001"},
		{"precise decimal", cdc.Field{Type: typ(cdc.KindBytes, "org.apache.kafka.connect.data.Decimal", map[string]string{"scale": "2"}), Value: "/4M="}, "numeric", "-1.25"},
		{"big number", cdc.Field{Value: json.Number("18446744073709551615")}, "numeric", "18446744073709551615"},
		{"bytes", cdc.Field{Type: typ(cdc.KindBytes, "", nil), Value: "AAEC"}, "bytea", `\x000102`},
		{"json object", cdc.Field{Value: map[string]any{"b": json.Number("1"), "a": "x"}}, "jsonb", `{"a":"x","b":1}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := text(&tc.f, tc.pg)
			if err != nil || !ok || got != tc.want {
				t.Fatalf("text = %q, %v, %v; want %q", got, ok, err, tc.want)
			}
		})
	}
	if typ, _ := pgType(&cdc.Field{Value: json.Number("18446744073709551615")}); typ != "numeric" {
		t.Fatalf("a value beyond bigint gets %s, want numeric", typ)
	}
	for _, w := range []struct {
		old, new, want string
		ok             bool
	}{{"integer", "bigint", "bigint", true}, {"bigint", "numeric", "numeric", true}, {"bigint", "integer", "bigint", true}, {"real", "double precision", "double precision", true}, {"boolean", "bigint", "boolean", false}} {
		if got, ok := widen(w.old, w.new); got != w.want || ok != w.ok {
			t.Errorf("widen(%s, %s) = %s, %v; want %s, %v", w.old, w.new, got, ok, w.want, w.ok)
		}
	}
}

// fixture is a sink on a fresh schema of the real server.
type fixture struct {
	t      testing.TB
	sink   *Sink
	conn   *pgx.Conn
	schema string
	offset int64
}

func newFixture(t *testing.T, extra string) *fixture { return newFixtureTB(t, extra) }

func newFixtureB(b *testing.B) *fixture { return newFixtureTB(b, "") }

func newFixtureTB(t testing.TB, extra string) *fixture {
	t.Helper()
	info := servers.Postgres(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, info.DSN)
	if err != nil {
		t.Fatal(err)
	}
	schema := fmt.Sprintf("pgsink_%d", rand.Uint32())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		conn.Close(context.Background())
	})
	s, err := New(section(t, fmt.Sprintf("dsn: %q\nschema: %s\n%s", info.DSN, schema, extra)), "pg", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return &fixture{t: t, sink: s, conn: conn, schema: schema}
}

// msg encodes rec as the runtime would, at the next offset of partition 0.
func (f *fixture) msg(rec cdc.Record, schemas bool) cdc.Message {
	f.t.Helper()
	enc, key := cdc.AppendValue, cdc.AppendKey
	if schemas {
		enc, key = cdc.AppendValueWithSchema, cdc.AppendKeyWithSchema
	}
	k, _ := key(nil, &rec)
	v, err := enc(nil, &rec)
	if err != nil {
		f.t.Fatal(err)
	}
	m := cdc.Message{Topic: rec.Topic, Offset: f.offset, Key: k, Value: v}
	f.offset++
	return m
}

func (f *fixture) write(msgs []cdc.Message) (int, error) {
	return f.sink.Write(context.Background(), msgs)
}

// rows returns the table's rows as "id=…|col=…" strings keyed by id.
func (f *fixture) rows(table, cols string) map[string]string {
	f.t.Helper()
	out, err := f.tryRows(table, cols)
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

func (f *fixture) tryRows(table, cols string) (map[string]string, error) {
	rs, err := f.conn.Query(context.Background(), fmt.Sprintf("SELECT id::text, concat_ws('|', %s) FROM %s.%s", cols, f.schema, table))
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	out := map[string]string{}
	for rs.Next() {
		var id, v string
		if err := rs.Scan(&id, &v); err != nil {
			return nil, err
		}
		out[id] = v
	}
	return out, rs.Err()
}

// TestViewEqualsGeneratorState feeds a mixed workload (with and without
// schemas) and compares the table with the generator's final state.
func TestViewEqualsGeneratorState(t *testing.T) {
	t.Parallel()
	for _, schemas := range []bool{false, true} {
		t.Run(fmt.Sprint("schemas=", schemas), func(t *testing.T) {
			f := newFixture(t, "fields: [id, name, qty, price, version]\nrename: {qty: quantity}")
			cfg := generator.Config{TopicPrefix: "pg", Keys: 200, Total: 5000}
			final := map[string]string{}
			var batch []cdc.Message
			flush := func() {
				if n, err := f.write(batch); err != nil || n != len(batch) {
					t.Fatalf("Write = %d of %d, %v", n, len(batch), err)
				}
				batch = batch[:0]
			}
			generator.Replay(cfg, cfg.Total, func(r cdc.Record) {
				id := fmt.Sprint(r.Key.Value("id"))
				if r.After == nil {
					delete(final, id)
				} else {
					final[id] = fmt.Sprintf("%v|%v|%v|%v", r.After.Value("name"), r.After.Value("qty"), r.After.Value("price"), r.After.Value("version"))
				}
				batch = append(batch, f.msg(r, schemas))
				if r.Op == cdc.OpDelete {
					batch = append(batch, f.msg(cdc.Record{Topic: r.Topic, Key: r.Key, Tombstone: true}, schemas))
				}
				if len(batch) >= 700 {
					flush()
				}
			})
			flush()
			got := f.rows("items", "name, quantity, price, version")
			if len(got) != len(final) {
				t.Fatalf("view has %d rows, source %d", len(got), len(final))
			}
			for id, want := range final {
				if got[id] != want {
					t.Fatalf("row %s = %q, want %q", id, got[id], want)
				}
			}
			offs, err := f.sink.StoredOffsets(context.Background())
			if err != nil || offs[cdc.TopicPartition{Topic: "pg.inventory.items"}] != f.offset-1 {
				t.Fatalf("stored offsets %v (%v), want last offset %d", offs, err, f.offset-1)
			}
			var typ string
			_ = f.conn.QueryRow(context.Background(), `SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'quantity'`, f.schema+".items").Scan(&typ)
			want := map[bool]string{false: "bigint", true: "integer"}[schemas]
			if typ != want {
				t.Fatalf("quantity column is %s, want %s", typ, want)
			}
		})
	}
}

func row(id int64, name string, qty any) cdc.Row {
	return cdc.Row{{Name: "id", Value: id}, {Name: "name", Value: name}, {Name: "qty", Value: qty}}
}

func rec(op cdc.Op, before, after cdc.Row) cdc.Record {
	r := cdc.Record{Topic: "shop.db.things", Op: op, Before: before, After: after, Source: cdc.SourceInfo{DB: "db", Table: "things"}}
	img := after
	if img == nil {
		img = before
	}
	r.Key = cdc.Row{img[0]}
	return r
}

func TestUnchangedToastNullsSoftDeleteAndEvolution(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "delete_mode: soft")
	must := func(msgs ...cdc.Message) {
		t.Helper()
		if n, err := f.write(msgs); err != nil || n != len(msgs) {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	must(f.msg(rec(cdc.OpCreate, nil, row(1, "a", int64(5))), false), f.msg(rec(cdc.OpCreate, nil, row(2, "b", int64(6))), false))
	toast := row(1, "a2", nil)
	toast[2].Unchanged = true
	must(f.msg(rec(cdc.OpUpdate, nil, toast), false))            // qty untouched
	must(f.msg(rec(cdc.OpUpdate, nil, row(2, "b", nil)), false)) // qty becomes NULL
	with := append(row(1, "a3", int64(7)), cdc.Field{Name: "note", Value: "new column"})
	must(f.msg(rec(cdc.OpUpdate, nil, with), false))             // auto_evolve adds note
	must(f.msg(rec(cdc.OpDelete, row(2, "b", nil), nil), false)) // soft delete
	got := f.rows("things", "name, coalesce(qty::text, 'NULL'), coalesce(note, 'NULL'), __deleted")
	if got["1"] != "a3|7|new column|f" || got["2"] != "b|NULL|NULL|t" {
		t.Fatalf("rows = %v", got)
	}
	// toast check: between the toast update and the next one, qty stayed 5.
	f2 := newFixture(t, "")
	f2.write([]cdc.Message{f2.msg(rec(cdc.OpCreate, nil, row(1, "a", int64(5))), false)})
	f2.write([]cdc.Message{f2.msg(rec(cdc.OpUpdate, nil, toast), false)})
	if got := f2.rows("things", "name, qty"); got["1"] != "a2|5" {
		t.Fatalf("unchanged TOAST overwrote the stored value: %v", got)
	}
	// An incompatible type change stops the sink with a clear error.
	_, err := f2.write([]cdc.Message{f2.msg(rec(cdc.OpUpdate, nil, row(1, "a", true)), false)})
	if err == nil || !cdc.IsTerminal(err) || !strings.Contains(err.Error(), "column qty is bigint but the events now carry boolean") {
		t.Fatalf("err = %v", err)
	}
}

func TestBadValueIsIsolatedAsABadRecord(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	int32Type := &cdc.Type{Kind: cdc.KindInt32}
	mk := func(id int64, qty string) cdc.Message {
		r := rec(cdc.OpCreate, nil, cdc.Row{{Name: "id", Value: id}, {Name: "qty", Type: int32Type, Value: json.Number(qty)}})
		return f.msg(r, true)
	}
	if _, err := f.write([]cdc.Message{mk(1, "1")}); err != nil {
		t.Fatal(err)
	}
	n, err := f.write([]cdc.Message{mk(2, "2"), mk(3, "99999999999"), mk(4, "4")})
	if n != 1 || !cdc.IsBadRecord(err) || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("Write = %d, %v; want 1 and a bad record (out of range)", n, err)
	}
	offs, _ := f.sink.StoredOffsets(context.Background())
	if offs[cdc.TopicPartition{Topic: "shop.db.things"}] != 1 {
		t.Fatalf("offsets after the good prefix = %v, want 1", offs)
	}
	if got := f.rows("things", "qty"); len(got) != 2 || got["2"] != "2" {
		t.Fatalf("rows = %v", got)
	}
}

func TestAutoCreateOffIsAClearError(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "auto_create: false")
	_, err := f.write([]cdc.Message{f.msg(rec(cdc.OpCreate, nil, row(1, "a", int64(1))), false)})
	if err == nil || !cdc.IsTerminal(err) || !strings.Contains(err.Error(), "does not exist and auto_create is false") {
		t.Fatalf("err = %v", err)
	}
}

func TestShapeKeyAndPermissionErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "auto_evolve: false")
	if _, err := f.write([]cdc.Message{f.msg(rec(cdc.OpCreate, nil, row(1, "a", int64(1))), false)}); err != nil {
		t.Fatal(err)
	}
	extra := append(row(2, "b", int64(2)), cdc.Field{Name: "color", Value: "red"})
	_, err := f.write([]cdc.Message{f.msg(rec(cdc.OpCreate, nil, extra), false)})
	if err == nil || !cdc.IsTerminal(err) || !strings.Contains(err.Error(), "has no column color (text) and auto_evolve is false") {
		t.Fatalf("missing column with auto_evolve false: err = %v", err)
	}

	keyless := cdc.Record{Topic: "shop.db.things", Op: cdc.OpCreate, After: row(3, "c", int64(3)), Source: cdc.SourceInfo{DB: "db", Table: "things"}}
	n, err := f.write([]cdc.Message{f.msg(keyless, false)})
	if n != 0 || !cdc.IsBadRecord(err) || !strings.Contains(err.Error(), "has no key; set primary_key") {
		t.Fatalf("keyless record: %d, %v", n, err)
	}

	// A role that may connect but not create tables in the schema.
	ctx := context.Background()
	role := "pgsink_ro_" + f.schema
	if _, err := f.conn.Exec(ctx, "CREATE ROLE "+role+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = f.conn.Exec(context.Background(), "DROP OWNED BY "+role)
		_, _ = f.conn.Exec(context.Background(), "DROP ROLE "+role)
	})
	_, _ = f.conn.Exec(ctx, "GRANT USAGE ON SCHEMA "+f.schema+" TO "+role)
	cfg, _ := pgx.ParseConfig(f.sink.cfg.DSN)
	dsn := fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", role, cfg.Host, cfg.Port, cfg.Database)
	ro, err := New(section(t, fmt.Sprintf("dsn: %q\nschema: %s", dsn, f.schema)), "ro", nil)
	if err != nil {
		t.Fatal(err)
	}
	err = ro.Open(ctx)
	if err == nil {
		ro.Close(ctx)
	}
	if err == nil || !cdc.IsTerminal(err) || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), "grant the privilege") {
		t.Fatalf("permission denied: err = %v", err)
	}
}
