package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/connectd/connectd/internal/benchutil"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/connectd/connectd/integration/servers"
)

// BenchmarkPostgresBacklogToKafka is the benchmark: a backlog of
// 640k change events (400k inserts, 200k updates, 40k deletes) waits behind
// an existing slot; the clock runs from connectd's start until Kafka (the
// embedded broker) acknowledged all of them plus the 40k tombstones. It
// reports events/s and connectd's peak RSS.
//
//	go test ./integration/ -run '^$' -bench PostgresBacklog -benchtime 1x
func BenchmarkPostgresBacklogToKafka(b *testing.B) {
	pg := servers.Postgres(b)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	id := hex.EncodeToString(rb[:])
	schema, slot, pub := "pgbench_"+id, "pgbench_slot_"+id, "pgbench_pub_"+id
	exec := func(sql string) {
		b.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			b.Fatalf("%s: %v", sql, err)
		}
	}
	const inserts, updates, deletes, txn = 400_000, 200_000, 40_000, 10_000
	const events = inserts + updates + deletes
	exec("CREATE SCHEMA " + schema)
	defer func() {
		for range 50 {
			_, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", slot)
			if err == nil || !strings.Contains(err.Error(), "is active") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		_, _ = conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pub)
		_, _ = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
	}()
	exec("CREATE TABLE " + schema + ".bench (id int PRIMARY KEY, name text NOT NULL, qty int, price numeric(10,2), updated timestamptz, note text)")
	exec("CREATE PUBLICATION " + pub + " FOR TABLE " + schema + ".bench")
	exec("SELECT pg_create_logical_replication_slot('" + slot + "', 'pgoutput')")
	for i := 0; i < inserts; i += txn {
		exec(fmt.Sprintf("INSERT INTO %s.bench SELECT g, 'name-' || g, g %% 1000, (g %% 100000) / 100.0, now(), 'note for row ' || g FROM generate_series(%d, %d) g", schema, i+1, i+txn))
	}
	for i := 0; i < updates; i += txn {
		exec(fmt.Sprintf("UPDATE %s.bench SET qty = qty + 1, updated = now() WHERE id BETWEEN %d AND %d", schema, i+1, i+txn))
	}
	for i := 0; i < deletes; i += txn {
		exec(fmt.Sprintf("DELETE FROM %s.bench WHERE id BETWEEN %d AND %d", schema, inserts-i-txn+1, inserts-i))
	}
	// Beside it: a bare pglogrepl receive of the same backlog (parse only,
	// no conversion, no Kafka). It also brings the WAL into the page cache.
	var startLSN string
	if err := conn.QueryRow(ctx, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&startLSN); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	if err := pgBareReceive(ctx, pg.DSN, slot, pub, startLSN, events); err != nil {
		b.Fatal(err)
	}
	bare := float64(events) / time.Since(t0).Seconds()
	// One run per benchmark invocation: the run confirms the slot, so the
	// backlog cannot be replayed.
	b.ResetTimer()
	secs, rss := pgBacklogRun(b, pg.DSN, schema, slot, pub, events+deletes)
	b.ReportMetric(float64(events)/secs, "events/s")
	b.ReportMetric(bare, "bare-pglogrepl-events/s")
	b.ReportMetric(rss, "peak-RSS-MB")
}

// pgBacklogRun runs connectd until want records (events and tombstones)
// are acknowledged by Kafka and returns the seconds since its start and
// its peak RSS in MB.
func pgBacklogRun(b *testing.B, dsn, schema, slot, pub string, want int) (seconds, rssMB float64) {
	b.Helper()
	dir := b.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	httpAddr := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf(`worker: {data_dir: %s/data, http: %q}
sources:
  - name: pg
    type: postgres
    config: {dsn: %q, slot: %s, publication: %s, topic_prefix: pgbench, include_tables: ["%s\\..*"], snapshot_mode: never}
sinks:
  - name: out
    type: file
    topics: [pgbench.%s.bench]
    config: {path: /dev/null}
`, dir, httpAddr, dsn, slot, pub, schema, schema)
	path := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	cmd := exec.Command(connectdBin, "run", "-c", path, "--log-level", "warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	deadline := time.Now().Add(5 * time.Minute)
	var peak float64
	for time.Now().Before(deadline) {
		peak = max(peak, benchutil.PeakRSSMB(cmd.Process.Pid))
		m, err := benchutil.Scrape(httpAddr)
		if err == nil && m[`connectd_source_records_produced_total{connector="pg"}`] >= float64(want) {
			return time.Since(start).Seconds(), max(peak, benchutil.PeakRSSMB(cmd.Process.Pid))
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatalf("backlog not in Kafka within 5 minutes")
	return 0, 0
}

// pgBareReceive reads want changes from the slot with pglogrepl alone,
// without confirming anything.
func pgBareReceive(ctx context.Context, dsn, slot, pub, start string, want int) error {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return err
	}
	cfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	lsn, err := pglogrepl.ParseLSN(start)
	if err != nil {
		return err
	}
	err = pglogrepl.StartReplication(ctx, conn, slot, lsn, pglogrepl.StartReplicationOptions{
		Mode: pglogrepl.LogicalReplication, PluginArgs: []string{"proto_version '1'", "publication_names '" + pub + "'"}})
	if err != nil {
		return err
	}
	for n := 0; n < want; {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			return err
		}
		cd, ok := msg.(*pgproto3.CopyData)
		if !ok || len(cd.Data) == 0 || cd.Data[0] != pglogrepl.XLogDataByteID {
			continue
		}
		xld, err := pglogrepl.ParseXLogData(cd.Data[1:])
		if err != nil {
			return err
		}
		m, err := pglogrepl.Parse(xld.WALData)
		if err != nil {
			return err
		}
		switch m.(type) {
		case *pglogrepl.InsertMessage, *pglogrepl.UpdateMessage, *pglogrepl.DeleteMessage:
			n++
		}
	}
	return nil
}
