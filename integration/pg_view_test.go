package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/kafkatest"
)

// TestPostgresToPostgresView replicates a PostgreSQL table into a
// PostgreSQL view table through connectd (binary, external broker):
// snapshot, then a mixed workload with a schema change and TOASTed values
// left unchanged by updates, a kill -9 in the middle, a restart, and at the
// end the view equals the source table column for column.
func TestPostgresToPostgresView(t *testing.T) {
	e := newPGEnv(t, "pgv")
	ctx, conn, exec := context.Background(), e.conn, func(sql string) { t.Helper(); e.exec(sql) }
	src, views, slot, pub := e.schema("pgv_src"), e.schema("pgv_view"), e.slot, e.pub
	exec("CREATE TABLE " + src + ".docs (id int PRIMARY KEY, n bigint NOT NULL, price numeric(12,2), body text, created timestamptz NOT NULL DEFAULT now())")
	// Random text does not compress: bodies are stored out of line (TOAST).
	exec("INSERT INTO " + src + ".docs (id, n, price, body) SELECT g, g, g * 1.25, (SELECT string_agg(md5(random()::text || g.g || x), '') FROM generate_series(1, 300) x) FROM generate_series(1, 300) g")

	dir := t.TempDir()
	broker := kafkatest.StartProcess(t, connectdBin, filepath.Join(dir, "broker"), "127.0.0.1:0")
	config := filepath.Join(dir, "pipeline.yaml")
	yaml := fmt.Sprintf(`kafka: {brokers: [%q], topic_partitions: 2}
worker: {data_dir: %s/data, http: "off", offset_flush_interval: 100ms}
sources:
  - name: pg
    type: postgres
    schemas: true
    config: {dsn: %q, slot: %s, publication: %s, topic_prefix: pgv, include_tables: ["%s\\.docs"], heartbeat_interval: 1s}
sinks:
  - name: view
    type: postgres
    topics: [pgv.%s.docs]
    config: {dsn: %q, schema: %s, table: "{table}"}
`, broker.Addr, dir, e.dsn, slot, pub, src, src, e.dsn, views)
	if err := os.WriteFile(config, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p := runConnectd(t, config)
	viewRows := func() int {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+views+".docs").Scan(&n); err != nil {
			return -1
		}
		return n
	}
	waitFor(t, "the snapshot in the view", 60*time.Second, func() bool { return viewRows() == 300 })

	// Updates that leave the TOASTed body unchanged, deletes, inserts.
	exec("UPDATE " + src + ".docs SET n = n + 1000 WHERE id % 3 = 0")
	exec("DELETE FROM " + src + ".docs WHERE id % 7 = 0")
	exec("INSERT INTO " + src + ".docs (id, n, price, body) VALUES (1001, 1, 0.5, 'short')")
	p.stop(t, syscall.SIGKILL, 5*time.Second)

	// Schema change while connectd is down, then more changes.
	exec("ALTER TABLE " + src + ".docs ADD COLUMN tag text")
	exec("UPDATE " + src + ".docs SET tag = 't' || id, n = n + 1 WHERE id % 5 = 0")
	p = runConnectd(t, config)
	exec("UPDATE " + src + ".docs SET price = price * 2 WHERE id % 4 = 0")

	compare := func() string {
		q := func(schema string, withTag bool) (map[int]string, error) {
			cols := "id, n, price::text, md5(coalesce(body, '')), created"
			if withTag {
				cols += ", coalesce(tag, '')"
			}
			rows, err := conn.Query(ctx, "SELECT "+cols+" FROM "+schema+".docs")
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			out := map[int]string{}
			for rows.Next() {
				vals, err := rows.Values()
				if err != nil {
					return nil, err
				}
				out[int(vals[0].(int32))] = fmt.Sprint(vals[1:]...)
			}
			return out, rows.Err()
		}
		want, err := q(src, true)
		if err != nil {
			return err.Error()
		}
		got, err := q(views, true)
		if err != nil {
			return err.Error()
		}
		if len(got) != len(want) {
			return fmt.Sprintf("view has %d rows, source %d", len(got), len(want))
		}
		for k, w := range want {
			if got[k] != w {
				return fmt.Sprintf("row %d: view %q, source %q", k, got[k], w)
			}
		}
		return ""
	}
	var diff string
	deadline := time.Now().Add(60 * time.Second)
	for {
		// The view's id column is int: the same int32 scan works for both.
		if diff = compare(); diff == "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if diff != "" {
		t.Fatalf("view differs from the source: %s", diff)
	}
	if code := p.stop(t, syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.stderr)
	}
	var typ string
	_ = conn.QueryRow(ctx, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'created'`, views+".docs").Scan(&typ)
	if typ != "timestamp with time zone" {
		t.Errorf("view column created is %q, want timestamptz (from the event schema)", typ)
	}
}
