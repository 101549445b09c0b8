package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/integration/servers"
	"github.com/connectd/connectd/internal/kafkatest"
)

// TestPostgresKillAndRestart runs PostgreSQL → connectd → file sink as the
// connectd binary while a writer changes the table, kills connectd with
// SIGKILL mid-snapshot and again mid-stream, restarts it each time, and
// checks that the view rebuilt from the file (last event per key, deletes
// and tombstones removing keys) equals the table.
func TestPostgresKillAndRestart(t *testing.T) {
	pg := servers.Postgres(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) }) // after the drops below
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	schema, slot, pub := "pgcrash_"+id, "pgcrash_slot_"+id, "pgcrash_pub_"+id
	mustExec := func(c *pgx.Conn, sql string, args ...any) {
		t.Helper()
		if _, err := c.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	mustExec(conn, "CREATE SCHEMA "+schema)
	t.Cleanup(func() {
		for range 50 {
			_, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", slot)
			if err == nil || !strings.Contains(err.Error(), "is active") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		_, _ = conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pub)
		_, _ = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
	})
	const initialRows = 200000
	const keySpace = 220000
	mustExec(conn, "CREATE TABLE "+schema+".accounts (id int PRIMARY KEY, balance bigint NOT NULL, note text, ver int NOT NULL DEFAULT 0)")
	mustExec(conn, fmt.Sprintf("INSERT INTO %s.accounts SELECT g, g * 10, 'n' || g, 0 FROM generate_series(1, %d) g", schema, initialRows))

	dir := t.TempDir()
	broker := kafkatest.StartProcess(t, connectdBin, filepath.Join(dir, "broker"), "127.0.0.1:0")
	out := filepath.Join(dir, "out.jsonl")
	topic := "pgcrash." + schema + ".accounts"
	config := filepath.Join(dir, "pipeline.yaml")
	yaml := fmt.Sprintf(`kafka: {brokers: [%q], topic_partitions: 3}
worker: {data_dir: %s/data, http: "off", offset_flush_interval: 200ms}
sources:
  - name: pg
    type: postgres
    config:
      dsn: %q
      slot: %s
      publication: %s
      topic_prefix: pgcrash
      include_tables: ["%s\\.accounts"]
      snapshot_chunk_rows: 500
      heartbeat_interval: 1s
sinks:
  - name: out
    type: file
    topics: [%s]
    config: {path: %s}
`, broker.Addr, dir, pg.DSN, slot, pub, schema, topic, out)
	if err := os.WriteFile(config, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}

	// The writer: small transactions of inserts, updates and deletes.
	wconn, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer wconn.Close(ctx)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes int
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := mrand.New(mrand.NewPCG(1, 2))
		for {
			select {
			case <-stop:
				return
			default:
			}
			tx, err := wconn.Begin(ctx)
			if err != nil {
				werr = err
				return
			}
			for range 1 + r.IntN(5) {
				k := 1 + r.IntN(keySpace)
				switch r.IntN(10) {
				case 0, 1:
					_, err = tx.Exec(ctx, "DELETE FROM "+schema+".accounts WHERE id = $1", k)
				case 2, 3, 4:
					_, err = tx.Exec(ctx, "INSERT INTO "+schema+".accounts VALUES ($1, $2, 'ins', 0) ON CONFLICT (id) DO UPDATE SET balance = EXCLUDED.balance, ver = accounts.ver + 1", k, r.Int64N(1e9))
				default:
					_, err = tx.Exec(ctx, "UPDATE "+schema+".accounts SET balance = $2, ver = ver + 1 WHERE id = $1", k, r.Int64N(1e9))
				}
				if err != nil {
					werr = err
					_ = tx.Rollback(ctx)
					return
				}
			}
			if err := tx.Commit(ctx); err != nil {
				werr = err
				return
			}
			writes++
			time.Sleep(time.Millisecond)
		}
	}()
	stopWriter := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopWriter()

	lines := func() int { return len(readLines(t, out)) }

	// 1. Kill -9 mid-snapshot.
	p := runConnectd(t, config)
	waitFor(t, "first snapshot rows in the sink", 60*time.Second, func() bool { return lines() > 1000 })
	p.stop(t, syscall.SIGKILL, 5*time.Second)
	n1 := lines()
	if n1 >= initialRows {
		t.Logf("snapshot had finished before the kill (%d lines)", n1)
	}

	// 2. Restart; kill -9 mid-stream.
	p = runConnectd(t, config)
	waitFor(t, "snapshot done and streaming", 90*time.Second, func() bool { return pgStreamed(t, out) > 2000 })
	p.stop(t, syscall.SIGKILL, 5*time.Second)

	// 3. Restart, stop the writer, wait for the view to match the table.
	p = runConnectd(t, config)
	waitFor(t, "more streamed changes", 60*time.Second, func() bool { return pgStreamed(t, out) > 4000 })
	stopWriter()
	if werr != nil {
		t.Fatalf("writer: %v", werr)
	}
	want := pgTableState(t, conn, schema)
	deadline := time.Now().Add(60 * time.Second)
	for {
		diff := pgCompareState(pgViewState(t, out), want)
		if diff == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("view differs from the table: %s\noutput:\n%s", diff, p.stderr)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if code := p.stop(t, syscall.SIGTERM, 15*time.Second); code != 0 {
		t.Fatalf("exit code %d; output:\n%s", code, p.stderr)
	}
	// The slot is confirmed no further than what the file holds.
	var confirmed string
	if err := conn.QueryRow(ctx, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&confirmed); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d writer transactions; %d lines; %d keys; killed mid-snapshot at %d lines; slot confirmed at %s", writes, lines(), len(want), n1, confirmed)
}

// pgEvent is the part of a change event the view needs.
type pgEvent struct {
	Op    string          `json:"op"`
	After json.RawMessage `json:"after"`
}

// pgStreamed counts the non-snapshot events in the file.
func pgStreamed(t *testing.T, path string) int {
	n := 0
	for _, l := range readLines(t, path) {
		var e pgEvent
		if string(l.Value) != "null" && json.Unmarshal(l.Value, &e) == nil && e.Op != "r" {
			n++
		}
	}
	return n
}

// pgViewState replays the file: per key, the last after-image; deletes and
// tombstones remove the key.
func pgViewState(t *testing.T, path string) map[string]string {
	state := map[string]string{}
	for _, l := range readLines(t, path) {
		k := string(l.Key)
		if string(l.Value) == "null" {
			delete(state, k)
			continue
		}
		var e pgEvent
		if err := json.Unmarshal(l.Value, &e); err != nil {
			t.Fatalf("bad event %s: %v", l.Value, err)
		}
		if e.Op == "d" {
			delete(state, k)
			continue
		}
		var row struct {
			ID      int64   `json:"id"`
			Balance int64   `json:"balance"`
			Note    *string `json:"note"`
			Ver     int64   `json:"ver"`
		}
		if err := json.Unmarshal(e.After, &row); err != nil {
			t.Fatalf("bad after %s: %v", e.After, err)
		}
		note := "<null>"
		if row.Note != nil {
			note = *row.Note
		}
		state[k] = fmt.Sprintf("%d|%s|%d", row.Balance, note, row.Ver)
	}
	return state
}

func pgTableState(t *testing.T, conn *pgx.Conn, schema string) map[string]string {
	rows, err := conn.Query(context.Background(), "SELECT id, balance, coalesce(note, '<null>'), ver FROM "+schema+".accounts")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	state := map[string]string{}
	for rows.Next() {
		var id, balance int64
		var note string
		var ver int64
		if err := rows.Scan(&id, &balance, &note, &ver); err != nil {
			t.Fatal(err)
		}
		state[fmt.Sprintf(`{"id":%d}`, id)] = fmt.Sprintf("%d|%s|%d", balance, note, ver)
	}
	return state
}

func pgCompareState(got, want map[string]string) string {
	var diffs []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s missing (want %s)", k, w))
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s = %s, want %s", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s = %s, should be gone", k, g))
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	sort.Strings(diffs)
	if len(diffs) > 10 {
		diffs = append(diffs[:10], fmt.Sprintf("… %d more", len(diffs)-10))
	}
	return fmt.Sprintf("%d differences: %s", len(diffs), strings.Join(diffs, "; "))
}

// TestPostgresSlotWaitsForKafka freezes the Kafka broker (SIGSTOP) while
// connectd streams, writes rows, and checks that the slot's
// confirmed_flush_lsn stays before them until Kafka has them; after the
// broker resumes, the rows arrive and the slot moves past them.
func TestPostgresSlotWaitsForKafka(t *testing.T) {
	pg := servers.Postgres(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) }) // after the drops below
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	schema, slot, pub := "pgack_"+id, "pgack_slot_"+id, "pgack_pub_"+id
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec("CREATE SCHEMA " + schema)
	exec("CREATE TABLE " + schema + ".t (id int PRIMARY KEY, v int)")
	t.Cleanup(func() {
		for range 50 {
			_, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", slot)
			if err == nil || !strings.Contains(err.Error(), "is active") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		_, _ = conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pub)
		_, _ = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
	})
	dir := t.TempDir()
	broker := kafkatest.StartProcess(t, connectdBin, filepath.Join(dir, "broker"), "127.0.0.1:0")
	out := filepath.Join(dir, "out.jsonl")
	topic := "pgack." + schema + ".t"
	config := filepath.Join(dir, "pipeline.yaml")
	yaml := fmt.Sprintf(`kafka: {brokers: [%q]}
worker: {data_dir: %s/data, http: "off", offset_flush_interval: 100ms, shutdown_timeout: 3s}
sources:
  - {name: pg, type: postgres, config: {dsn: %q, slot: %s, publication: %s, topic_prefix: pgack, include_tables: ["%s\\..*"], heartbeat_interval: 300ms}}
sinks:
  - {name: out, type: file, topics: [%s], config: {path: %s}}
`, broker.Addr, dir, pg.DSN, slot, pub, schema, topic, out)
	if err := os.WriteFile(config, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	confirmed := func() pglogrepl.LSN {
		var s string
		err := conn.QueryRow(ctx, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&s)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0
		}
		if err != nil {
			t.Fatal(err)
		}
		l, _ := pglogrepl.ParseLSN(s)
		return l
	}
	p := runConnectd(t, config)
	waitFor(t, "slot created", 30*time.Second, func() bool { return confirmed() > 0 })
	exec("INSERT INTO " + schema + ".t SELECT g, 0 FROM generate_series(1, 100) g")
	waitFor(t, "first rows in the sink", 30*time.Second, func() bool { return len(readLines(t, out)) >= 100 })

	broker.Pause()
	paused := true
	defer func() {
		if paused {
			broker.Continue()
		}
	}()
	for i := 101; i <= 110; i++ {
		exec("INSERT INTO "+schema+".t VALUES ($1, 1)", i)
	}
	time.Sleep(4 * time.Second) // many status updates and heartbeats
	during := confirmed()
	broker.Continue()
	paused = false
	waitFor(t, "rows written during the freeze", 60*time.Second, func() bool { return len(readLines(t, out)) >= 110 })
	var first, last pglogrepl.LSN
	for _, l := range readLines(t, out) {
		var ev struct {
			After  struct{ ID int } `json:"after"`
			Source struct {
				LSN int64 `json:"lsn"`
			} `json:"source"`
		}
		if json.Unmarshal(l.Value, &ev) != nil || ev.After.ID <= 100 {
			continue
		}
		lsn := pglogrepl.LSN(ev.Source.LSN)
		if first == 0 || lsn < first {
			first = lsn
		}
		last = max(last, lsn)
	}
	if during > first {
		t.Fatalf("while Kafka was frozen the slot was confirmed at %s, past the unacknowledged change at %s", during, first)
	}
	waitFor(t, "slot confirmed past the new rows", 30*time.Second, func() bool { return confirmed() > last })
	t.Logf("frozen: confirmed %s ≤ first new change %s; after: %s > %s", during, first, confirmed(), last)
	if code := p.stop(t, syscall.SIGTERM, 15*time.Second); code != 0 {
		t.Fatalf("exit code %d; output:\n%s", code, p.stderr)
	}
}
