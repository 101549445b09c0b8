package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/integration/servers"
	"github.com/connectd/connectd/internal/kafkatest"
	"github.com/connectd/connectd/sinks/file"
	"github.com/connectd/connectd/sources/mysql"
)

// TestMySQLCrashAndRestart runs MariaDB → connectd → file sink through the
// binary while a writer keeps changing the table. connectd is killed with
// SIGKILL in the middle of the snapshot and again in the middle of
// streaming, restarted each time, and at the end the view rebuilt from the
// file (last value per key, deletes removing keys) must equal the table.
func TestMySQLCrashAndRestart(t *testing.T) {
	info := servers.MySQL(t)
	root, err := client.Connect(info.Addr, info.RootUser, info.RootPassword, "")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	dbName := fmt.Sprintf("connectd_test_e2e_%d", rand.Uint32())
	mysqlExec(t, root, "CREATE DATABASE "+dbName)
	t.Cleanup(func() { _, _ = root.Execute("DROP DATABASE IF EXISTS " + dbName) })
	mysqlExec(t, root, "USE "+dbName)
	mysqlExec(t, root, `CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), qty INT UNSIGNED,
		price DECIMAL(10,2), updated DATETIME(6), pad VARCHAR(200))`)
	const initial = 150_000
	for i := 0; i < initial; i += 5000 {
		var sb strings.Builder
		sb.WriteString("INSERT INTO items VALUES ")
		for j := i; j < i+5000; j++ {
			if j > i {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, "(%d, 'item-%d', %d, %d.%02d, '2024-01-01 00:00:00.%06d', REPEAT('p', 150))", j, j, j%1000, j%10000, j%100, j%1000000)
		}
		mysqlExec(t, root, sb.String())
	}

	dir := t.TempDir()
	b := kafkatest.StartProcess(t, connectdBin, filepath.Join(dir, "broker"), "127.0.0.1:0")
	host, port, _ := net.SplitHostPort(info.Addr)
	out := filepath.Join(dir, "out.jsonl")
	topic := "e2e." + dbName + ".items"
	config := filepath.Join(dir, "pipeline.yaml")
	yaml := fmt.Sprintf(`kafka: {brokers: [%q], topic_partitions: 4}
worker: {data_dir: %s/data, http: "off", offset_flush_interval: 200ms}
sources:
  - name: shop
    type: mysql
    config:
      host: %s
      port: %s
      user: %s
      password: %s
      server_id: %d
      topic_prefix: e2e
      include_tables: ['%s\.items']
      snapshot_chunk_rows: 100
      heartbeat_interval: 1s
sinks:
  - name: out
    type: file
    topics: [%s]
    config: {path: %s}
`, b.Addr, dir, host, port, info.User, info.Password, 9100+rand.IntN(800), dbName, topic, out)
	if err := os.WriteFile(config, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}

	// A writer changes the table throughout, on its own connection.
	w, err := client.Connect(info.Addr, info.RootUser, info.RootPassword, dbName)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var stop atomic.Bool
	var wg sync.WaitGroup
	var writes atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(1, 2))
		next := initial
		for !stop.Load() {
			_, _ = w.Execute("BEGIN")
			for range 1 + r.IntN(4) {
				id := r.IntN(next)
				switch op := r.IntN(10); {
				case op < 5:
					_, _ = w.Execute("UPDATE items SET qty = qty + 1, updated = NOW(6) WHERE id = ?", id)
				case op < 8:
					_, _ = w.Execute("INSERT INTO items VALUES (?, ?, 1, 9.99, NOW(6), 'new')", next, "new-"+strconv.Itoa(next))
					next++
				default:
					_, _ = w.Execute("DELETE FROM items WHERE id = ?", id)
				}
			}
			_, _ = w.Execute("COMMIT")
			writes.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() { stop.Store(true); wg.Wait() }()

	ops := func() (reads, changes int) {
		for _, l := range readLines(t, out) {
			var v struct{ Op string }
			if json.Unmarshal(l.Value, &v) == nil {
				if v.Op == "r" {
					reads++
				} else if v.Op != "" {
					changes++
				}
			}
		}
		return
	}

	// 1. kill -9 in the middle of the snapshot.
	p := runConnectd(t, config)
	deadline := time.Now().Add(60 * time.Second)
	for { // cheap polling: the snapshot must not finish before the kill
		if fi, err := os.Stat(out); err == nil && fi.Size() > 4<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot records after 60s; output:\n%s", p.stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.stop(t, syscall.SIGKILL, 5*time.Second)
	reads, _ := ops()
	if reads >= initial {
		t.Fatalf("snapshot finished (%d reads) before the kill: the test would prove nothing", reads)
	}
	t.Logf("killed mid-snapshot after %d snapshot records", reads)

	// 2. Restart; kill -9 again once streaming is under way.
	p = runConnectd(t, config)
	deadline = time.Now().Add(120 * time.Second)
	for {
		if _, c := ops(); c > 500 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no streamed changes 120s after the restart; output:\n%s", mysqlTail(p.stderr.String(), 4000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.stop(t, syscall.SIGKILL, 5*time.Second)
	if !strings.Contains(p.stderr.String(), "resuming snapshot") {
		t.Errorf("the restart did not resume the snapshot from its stored progress; output:\n%s", mysqlTail(p.stderr.String(), 3000))
	}
	_, changes := ops()
	t.Logf("killed mid-stream after %d streamed changes", changes)

	// 3. Restart, let the writer run a little more, stop it, and wait for
	// the view to equal the table.
	p = runConnectd(t, config)
	time.Sleep(2 * time.Second)
	stop.Store(true)
	wg.Wait()
	want := mysqlExpectedState(t, info, dbName)
	var got map[string]string
	deadline = time.Now().Add(90 * time.Second)
	for {
		got = mysqlViewState(t, readLines(t, out))
		if mysqlEqualMaps(got, want) {
			break
		}
		if time.Now().After(deadline) {
			n := 0
			for k, v := range want {
				if got[k] != v && n < 5 {
					t.Errorf("key %s: view %s, table %s", k, got[k], v)
					n++
				}
			}
			for k := range got {
				if _, ok := want[k]; !ok && n < 10 {
					t.Errorf("key %s in the view, not in the table; its lines:", k)
					for _, l := range readLines(t, out) {
						if l.Topic+string(l.Key) == k {
							t.Logf("  p%d@%d %.300s", l.Partition, l.Offset, l.Value)
						}
					}
					n++
				}
			}
			t.Fatalf("view (%d keys) never matched the table (%d keys); connectd output:\n%s", len(got), len(want), mysqlTail(p.stderr.String(), 3000))
		}
		time.Sleep(500 * time.Millisecond)
	}
	if code := p.stop(t, syscall.SIGTERM, 15*time.Second); code != 0 {
		t.Fatalf("SIGTERM exit code %d; output:\n%s", code, mysqlTail(p.stderr.String(), 3000))
	}
	lines := readLines(t, out)
	t.Logf("view equals the table: %d keys, %d lines, %d writer transactions", len(want), len(lines), writes.Load())
}

func mysqlExec(t *testing.T, c *client.Conn, q string, args ...any) {
	t.Helper()
	if _, err := c.Execute(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func mysqlTail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func mysqlEqualMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// mysqlViewState replays the file sink's lines: per key, the last "after".
func mysqlViewState(t *testing.T, lines []file.Line) map[string]string {
	t.Helper()
	state := map[string]string{}
	for _, l := range lines {
		key := l.Topic + string(l.Key)
		if string(l.Value) == "null" {
			delete(state, key)
			continue
		}
		var v struct {
			After json.RawMessage `json:"after"`
		}
		if err := json.Unmarshal(l.Value, &v); err != nil {
			t.Fatalf("bad value %s: %v", l.Value, err)
		}
		if string(v.After) == "null" || v.After == nil {
			delete(state, key)
		} else {
			state[key] = string(v.After)
		}
	}
	return state
}

// mysqlExpectedState reads the table with the mysql source's snapshot, which
// produces the same JSON as streamed rows.
func mysqlExpectedState(t *testing.T, info servers.MySQLInfo, dbName string) map[string]string {
	t.Helper()
	host, port, _ := net.SplitHostPort(info.Addr)
	p, _ := strconv.Atoi(port)
	src, err := mysql.New(mysqlCfgDecoder{mysql.Config{Host: host, Port: p, User: info.User, Password: info.Password,
		ServerID: 9990, TopicPrefix: "e2e", IncludeTables: []string{dbName + `\.items`}}}, "expect", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := src.Open(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer src.Close(context.Background())
	state := map[string]string{}
	for {
		recs, err := src.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = src.Ack(ctx, nil) // a fresh snapshot waits for its start to be stored
		done := false
		for _, r := range recs {
			if r.Op != cdc.OpRead || r.Tombstone { // heartbeats carry positions only
				continue
			}
			k, _ := cdc.AppendKey(nil, &r)
			v, _ := cdc.AppendValue(nil, &cdc.Record{Op: cdc.OpRead, After: r.After})
			var env struct {
				After json.RawMessage `json:"after"`
			}
			_ = json.Unmarshal(v, &env)
			state[r.Topic+string(k)] = string(env.After)
			if r.Source.Snapshot == "last" {
				done = true
			}
		}
		if done {
			return state
		}
	}
}

// mysqlCfgDecoder hands a prepared mysql.Config to mysql.New.
type mysqlCfgDecoder struct{ cfg mysql.Config }

func (d mysqlCfgDecoder) Decode(out any) error { *out.(*mysql.Config) = d.cfg; return nil }
func (d mysqlCfgDecoder) Errorf(key, format string, args ...any) error {
	return fmt.Errorf(key+": "+format, args...)
}
