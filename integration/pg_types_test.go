package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/kafkatest"
)

// TestPostgresTypeRoundTrip replicates a table holding one column of each
// common type (extremes and NULLs included) from PostgreSQL through
// connectd, with schemas, into a PostgreSQL view, and checks every value
// reads back the same (compared as text), and the column types the sink
// chose.
func TestPostgresTypeRoundTrip(t *testing.T) {
	e := newPGEnv(t, "pgt")
	ctx, conn, exec := context.Background(), e.conn, func(sql string) { t.Helper(); e.exec(sql) }
	src, views, slot, pub := e.schema("pgt_src"), e.schema("pgt_view"), e.slot, e.pub
	// column, type, view type, values (SQL literals) for rows 1..3
	cols := []struct{ name, typ, viewType, v1, v2, v3 string }{
		{"c_smallint", "smallint", "smallint", "-32768", "32767", "NULL"},
		{"c_int", "integer", "integer", "-2147483648", "2147483647", "0"},
		{"c_bigint", "bigint", "bigint", "-9223372036854775808", "9223372036854775807", "NULL"},
		{"c_numeric", "numeric(20,4)", "numeric", "1234567890123456.1234", "-0.0001", "0"},
		{"c_real", "real", "real", "1.5", "-3.25e+10", "NULL"},
		{"c_double", "double precision", "double precision", "3.141592653589793", "-1e-300", "0"},
		{"c_bool", "boolean", "boolean", "true", "false", "NULL"},
		{"c_text", "text", "text", "'ünïcødé ✓ \"q\" \\ back'", "''", "NULL"},
		{"c_varchar", "varchar(20)", "text", "'short'", "'x'", "NULL"},
		{"c_bytea", "bytea", "bytea", "'\\x00ff10'::bytea", "''::bytea", "NULL"},
		{"c_uuid", "uuid", "uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'00000000-0000-0000-0000-000000000000'", "NULL"},
		{"c_jsonb", "jsonb", "jsonb", `'{"a": [1, 2.5, "x"], "b": null}'`, "'[]'", "NULL"},
		{"c_date", "date", "date", "'2024-02-29'", "'1970-01-01'", "'0001-01-01'"},
		{"c_time", "time", "time", "'23:59:59.999999'", "'00:00:00'", "NULL"},
		{"c_ts", "timestamp", "timestamp", "'2024-02-29 12:34:56.789012'", "'1969-12-31 23:59:59'", "NULL"},
		{"c_tstz", "timestamptz", "timestamptz", "'2024-02-29 12:34:56.789012+02'", "'2000-01-01 00:00:00+00'", "NULL"},
	}
	var defs, names []string
	for _, c := range cols {
		defs = append(defs, c.name+" "+c.typ)
		names = append(names, c.name)
	}
	exec("SET TIME ZONE 'UTC'")
	exec(fmt.Sprintf("CREATE TABLE %s.types (id int PRIMARY KEY, %s)", src, strings.Join(defs, ", ")))
	row := func(id int, pick func(struct{ name, typ, viewType, v1, v2, v3 string }) string) {
		var vals []string
		for _, c := range cols {
			vals = append(vals, pick(c))
		}
		exec(fmt.Sprintf("INSERT INTO %s.types (id, %s) VALUES (%d, %s)", src, strings.Join(names, ", "), id, strings.Join(vals, ", ")))
	}
	row(1, func(c struct{ name, typ, viewType, v1, v2, v3 string }) string { return c.v1 })

	dir := t.TempDir()
	broker := kafkatest.StartProcess(t, connectdBin, filepath.Join(dir, "broker"), "127.0.0.1:0")
	config := filepath.Join(dir, "pipeline.yaml")
	yaml := fmt.Sprintf(`kafka: {brokers: [%q], topic_partitions: 1}
worker: {data_dir: %s/data, http: "off"}
sources:
  - name: pg
    type: postgres
    schemas: true
    config: {dsn: %q, slot: %s, publication: %s, topic_prefix: pgt, include_tables: ["%s\\.types"], decimal_handling: precise}
sinks:
  - name: view
    type: postgres
    topics: [pgt.%s.types]
    config: {dsn: %q, schema: %s}
`, broker.Addr, dir, e.dsn, slot, pub, src, src, e.dsn, views)
	if err := os.WriteFile(config, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p := runConnectd(t, config)
	// Row 1 arrives by the snapshot; rows 2 and 3 by the stream.
	waitFor(t, "the snapshot row", 60*time.Second, func() bool {
		var n int
		return conn.QueryRow(ctx, "SELECT count(*) FROM "+views+".types").Scan(&n) == nil && n == 1
	})
	row(2, func(c struct{ name, typ, viewType, v1, v2, v3 string }) string { return c.v2 })
	row(3, func(c struct{ name, typ, viewType, v1, v2, v3 string }) string { return c.v3 })

	read := func(schema string) map[int][]string {
		var sel []string
		for _, n := range names {
			sel = append(sel, "coalesce("+n+"::text, '<NULL>')")
		}
		rows, err := conn.Query(ctx, fmt.Sprintf("SET TIME ZONE 'UTC'; SELECT id, %s FROM %s.types", strings.Join(sel, ", "), schema))
		if err != nil {
			rows, err = conn.Query(ctx, fmt.Sprintf("SELECT id, %s FROM %s.types", strings.Join(sel, ", "), schema))
			if err != nil {
				return nil
			}
		}
		defer rows.Close()
		out := map[int][]string{}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				return nil
			}
			var s []string
			for _, v := range vals[1:] {
				s = append(s, fmt.Sprint(v))
			}
			out[int(vals[0].(int32))] = s
		}
		return out
	}
	waitFor(t, "three rows in the view", 60*time.Second, func() bool { return len(read(views)) == 3 })
	want, got := read(src), read(views)
	for id := 1; id <= 3; id++ {
		for i, c := range cols {
			if got[id][i] != want[id][i] {
				t.Errorf("row %d %s (%s): view %q, source %q", id, c.name, c.typ, got[id][i], want[id][i])
			}
		}
	}
	for _, c := range cols {
		var typ string
		_ = conn.QueryRow(ctx, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2`, views+".types", c.name).Scan(&typ)
		norm := strings.NewReplacer("timestamp with time zone", "timestamptz", "timestamp without time zone", "timestamp", "time without time zone", "time").Replace(typ)
		if norm != c.viewType {
			t.Errorf("view column %s is %s, want %s", c.name, typ, c.viewType)
		}
	}
	if code := p.stop(t, syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.stderr)
	}
}
