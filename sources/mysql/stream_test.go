package mysql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/cdc"
)

func TestStreamInsertUpdateDelete(t *testing.T) {
	db := newTestDB(t)
	db.exec("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20), qty INT UNSIGNED)")
	cfg := db.config()
	cfg.SnapshotMode = SnapshotNever
	s := openSource(t, cfg, nil)

	db.exec("BEGIN")
	db.exec("INSERT INTO items VALUES (1,'a',10),(2,'b',20)")
	db.exec("UPDATE items SET qty = 4294967295 WHERE id = 1")
	db.exec("DELETE FROM items WHERE id = 2")
	db.exec("COMMIT")
	db.exec("INSERT INTO items VALUES (3,'c',30)")

	recs := dataOnly(readN(t, s, 5))
	want := []string{
		`c {"id":1} null {"id":1,"name":"a","qty":10}`,
		`c {"id":2} null {"id":2,"name":"b","qty":20}`,
		`u {"id":1} {"id":1,"name":"a","qty":10} {"id":1,"name":"a","qty":4294967295}`,
		`d {"id":2} {"id":2,"name":"b","qty":20} null`,
		`c {"id":3} null {"id":3,"name":"c","qty":30}`,
	}
	for i, r := range recs {
		before, after := "null", "null"
		if r.Before != nil {
			before = valueJSON(t, r.Before)
		}
		if r.After != nil {
			after = valueJSON(t, r.After)
		}
		got := fmt.Sprintf("%s %s %s %s", r.Op, keyJSON(t, &r), before, after)
		if got != want[i] {
			t.Errorf("record %d:\n got %s\nwant %s", i, got, want[i])
		}
		if r.Topic != "t."+db.name+".items" {
			t.Errorf("record %d topic %s", i, r.Topic)
		}
		// Only transaction ends carry a position.
		if hasPos := r.Position != nil; hasPos != (i == 3 || i == 4) {
			t.Errorf("record %d: position %s, want one only at transaction ends", i, r.Position)
		}
	}
	var p position
	if err := json.Unmarshal(recs[4].Position, &p); err != nil {
		t.Fatal(err)
	}
	if p.File == "" || p.Pos == 0 || p.GTIDs == "" {
		t.Errorf("position %s lacks file, pos or gtids", recs[4].Position)
	}
	v, err := cdc.AppendValue(nil, &recs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{`"connector":"mysql"`, `"name":"t"`, `"db":"` + db.name + `"`, `"table":"items"`, `"server_id":1`, `"gtid":"0-1-`, `"file":"`, `"row":0`, `"thread":null`, `"query":null`} {
		if !strings.Contains(string(v), f) {
			t.Errorf("value %s lacks %s", v, f)
		}
	}
}

// TestResumeAtPosition reads part of the stream, reopens at the last
// position and checks that exactly the rest follows (GTID resume), and the
// same by file/pos.
func TestResumeAtPosition(t *testing.T) {
	db := newTestDB(t)
	db.exec("CREATE TABLE r (id INT PRIMARY KEY, v INT)")
	cfg := db.config()
	cfg.SnapshotMode = SnapshotNever
	s := openSource(t, cfg, nil)
	for i := 1; i <= 10; i++ {
		db.exec("INSERT INTO r VALUES (?, ?)", i, i)
	}
	first := dataOnly(readN(t, s, 10))
	pos := first[4].Position // after the 5th single-row transaction
	if pos == nil {
		t.Fatal("no position on the 5th record")
	}
	_ = s.Close(context.Background())
	for i := 11; i <= 12; i++ {
		db.exec("INSERT INTO r VALUES (?, ?)", i, i)
	}
	var p position
	_ = json.Unmarshal(pos, &p)
	for _, mode := range []string{"gtid", "filepos"} {
		t.Run(mode, func(t *testing.T) {
			start := pos
			if mode == "filepos" {
				q := p
				q.GTIDs = ""
				start = q.encode()
			}
			c := cfg
			c.ServerID = serverIDs.Add(1)
			s2 := openSource(t, c, start)
			rest := dataOnly(readN(t, s2, 7))
			for i, r := range rest {
				if got := r.After.Value("id"); got != int64(6+i) {
					t.Fatalf("record %d after resume has id %v, want %d", i, got, 6+i)
				}
			}
		})
	}
}

// TestLargeTransaction streams a 100k-row transaction: every row arrives,
// only the last carries a position, and no Read returns more than
// maxBatch records.
func TestLargeTransaction(t *testing.T) {
	if testing.Short() {
		t.Skip("100k rows")
	}
	db := newTestDB(t)
	db.exec("CREATE TABLE big (id INT PRIMARY KEY, pad VARCHAR(100))")
	cfg := db.config()
	cfg.SnapshotMode = SnapshotNever
	s := openSource(t, cfg, nil)
	db.exec("BEGIN")
	const n = 100_000
	for i := 0; i < n; i += 10_000 {
		var sb strings.Builder
		sb.WriteString("INSERT INTO big VALUES ")
		for j := i; j < i+10_000; j++ {
			if j > i {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, "(%d, REPEAT('x', 80))", j)
		}
		db.exec(sb.String())
	}
	db.exec("COMMIT")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got, positions := 0, 0
	for got < n {
		recs, err := readAck(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > 2*maxBatch { // maxBatch, plus the rest of one rows event
			t.Fatalf("Read returned %d records, more than %d", len(recs), 2*maxBatch)
		}
		for _, r := range recs {
			if isHeartbeat(r) {
				continue
			}
			if r.After.Value("id") != int64(got) {
				t.Fatalf("record %d has id %v", got, r.After.Value("id"))
			}
			got++
			if r.Position != nil {
				positions++
				if got != n {
					t.Fatalf("record %d of %d carries a position", got, n)
				}
			}
		}
	}
	if positions != 1 {
		t.Fatalf("%d positions, want 1", positions)
	}
}

// TestDDLMidStream changes a table while streaming: rows before and after
// each ALTER decode with their own columns.
func TestDDLMidStream(t *testing.T) {
	db := newTestDB(t)
	db.exec("CREATE TABLE d (id INT PRIMARY KEY, a VARCHAR(10), b INT)")
	cfg := db.config()
	cfg.SnapshotMode = SnapshotNever
	s := openSource(t, cfg, nil)
	db.exec("INSERT INTO d VALUES (1, 'x', 1)")
	db.exec("ALTER TABLE d ADD COLUMN c DECIMAL(5,2) DEFAULT 1.5 AFTER a")
	db.exec("INSERT INTO d VALUES (2, 'y', 2.25, 2)")
	db.exec("ALTER TABLE d DROP COLUMN a")
	db.exec("INSERT INTO d VALUES (3, 3.5, 3)")
	db.exec("ALTER TABLE d CHANGE COLUMN b bee BIGINT")
	db.exec("UPDATE d SET bee = 9000000000 WHERE id = 3")
	db.exec("CREATE TABLE d2 (k VARCHAR(5) PRIMARY KEY)")
	db.exec("INSERT INTO d2 VALUES ('z')")
	db.exec("RENAME TABLE d2 TO d3")
	db.exec("INSERT INTO d3 VALUES ('w')")
	recs := dataOnly(readN(t, s, 6))
	// Replaying from before the ALTERs decodes the old rows with their old
	// columns: every table map carries the schema its rows were written
	// with.
	cfg.ServerID = serverIDs.Add(1)
	replay := dataOnly(readN(t, openSource(t, cfg, s.start.encode()), 6))
	for i := range recs {
		if a, b := valueJSON(t, recs[i].After), valueJSON(t, replay[i].After); a != b {
			t.Errorf("replayed record %d: %s, first read %s", i, b, a)
		}
	}
	want := []string{
		`{"id":1,"a":"x","b":1}`,
		`{"id":2,"a":"y","c":"2.25","b":2}`,
		`{"id":3,"c":"3.50","b":3}`,
		`{"id":3,"c":"3.50","bee":9000000000}`,
		`{"k":"z"}`,
		`{"k":"w"}`,
	}
	for i, r := range recs {
		if got := valueJSON(t, r.After); got != want[i] {
			t.Errorf("record %d: %s, want %s", i, got, want[i])
		}
	}
	if recs[5].Topic != "t."+db.name+".d3" {
		t.Errorf("renamed table topic %s", recs[5].Topic)
	}
}

func TestPurgedBinlogError(t *testing.T) {
	db := newTestDB(t)
	cfg := db.config()
	s := newSource(t, cfg)
	err := s.Open(context.Background(), cdc.Position(`{"file":"mariadb-bin.000000","pos":4,"gtids":""}`))
	if !errors.Is(err, ErrBinlogPurged) || !cdc.IsTerminal(err) {
		t.Fatalf("err = %v, want terminal ErrBinlogPurged", err)
	}
	for _, want := range []string{"mariadb-bin.000000", "oldest available", "snapshot_mode: when_needed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// A GTID position the server's binlogs do not hold fails when the
	// stream starts, with the same error.
	s = newSource(t, cfg)
	if err := s.Open(context.Background(), cdc.Position(`{"file":"","pos":0,"gtids":"0-1-999999999"}`)); err != nil {
		t.Fatalf("Open: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = readAck(ctx, s)
	_ = s.Close(ctx)
	if !errors.Is(err, ErrBinlogPurged) || !cdc.IsTerminal(err) || !strings.Contains(err.Error(), "0-1-999999999") {
		t.Fatalf("GTID not in binlog: %v, want terminal ErrBinlogPurged naming the GTIDs", err)
	}
	t.Logf("GTID position gone: %v", err)
	// when_needed takes a new snapshot instead, for a GTID position too.
	db.exec("CREATE TABLE w (id INT PRIMARY KEY)")
	db.exec("INSERT INTO w VALUES (1)")
	wn := cfg
	wn.SnapshotMode = SnapshotWhenNeeded
	wn.ServerID = serverIDs.Add(1)
	s = openSource(t, wn, cdc.Position(`{"file":"","pos":0,"gtids":"0-1-999999999"}`))
	if recs := dataOnly(readN(t, s, 1)); recs[0].Op != cdc.OpRead || recs[0].Position == nil {
		t.Fatalf("when_needed after a lost GTID position: %+v", recs[0])
	}
	_ = s.Close(ctx)
	cfg.SnapshotMode = SnapshotWhenNeeded
	s = newSource(t, cfg)
	if err := s.Open(context.Background(), cdc.Position(`{"file":"mariadb-bin.000000","pos":4,"gtids":""}`)); err != nil {
		t.Fatalf("when_needed: %v", err)
	}
	defer s.Close(context.Background())
	if s.snap == nil {
		t.Fatal("when_needed did not start a snapshot")
	}
}

func TestWrongPassword(t *testing.T) {
	db := newTestDB(t)
	cfg := db.config()
	cfg.Password = "definitely-wrong"
	s := newSource(t, cfg)
	err := s.Open(context.Background(), nil)
	if !errors.Is(err, ErrAuth) || !cdc.IsTerminal(err) {
		t.Fatalf("err = %v, want terminal ErrAuth", err)
	}
	if strings.Contains(err.Error(), "definitely-wrong") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

func TestHeartbeatMovesPosition(t *testing.T) {
	db := newTestDB(t)
	db.exec("CREATE TABLE captured (id INT PRIMARY KEY)")
	db.exec("CREATE TABLE other (id INT PRIMARY KEY)")
	cfg := db.config()
	cfg.SnapshotMode = SnapshotNever
	cfg.IncludeTables = []string{db.name + `\.captured`}
	s := openSource(t, cfg, nil)
	db.exec("INSERT INTO other VALUES (1)")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		recs, err := readAck(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if !isHeartbeat(r) {
				t.Fatalf("record from an excluded table: %s", r.Topic)
			}
			if r.Position != nil && r.Tombstone && r.Topic == "__debezium-heartbeat.t" {
				return
			}
		}
	}
}

func TestMissingReplicationPrivileges(t *testing.T) {
	db := newTestDB(t)
	user := "np_" + strings.TrimPrefix(db.name, "connectd_test_")
	db.exec("CREATE USER '" + user + "'@'%' IDENTIFIED BY 'pw'")
	t.Cleanup(func() { _, _ = db.conn.Execute("DROP USER IF EXISTS '" + user + "'@'%'") })
	db.exec("GRANT SELECT ON " + db.name + ".* TO '" + user + "'@'%'")
	cfg := db.config()
	cfg.User, cfg.Password = user, "pw"
	s := newSource(t, cfg)
	err := s.Open(context.Background(), nil)
	if !errors.Is(err, ErrPrivileges) || !cdc.IsTerminal(err) {
		t.Fatalf("err = %v, want terminal ErrPrivileges", err)
	}
	for _, want := range []string{"REPLICATION SLAVE", "REPLICATION CLIENT", user} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

// TestConnectionLossIsRetryable kills the binlog connection on the server:
// Read fails with a retryable error, and a new source opened at the last
// position (what the runtime does, with backoff) continues without loss.
func TestConnectionLossIsRetryable(t *testing.T) {
	db := newTestDB(t)
	db.exec("CREATE TABLE k (id INT PRIMARY KEY)")
	cfg := db.config()
	cfg.SnapshotMode = SnapshotNever
	s := openSource(t, cfg, nil)
	db.exec("INSERT INTO k VALUES (1)")
	recs := readN(t, s, 1)
	pos := lastPosition(recs)
	db.exec(fmt.Sprintf("KILL CONNECTION %d", s.syncer.LastConnectionID()))
	db.exec("INSERT INTO k VALUES (2)")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	for err == nil {
		_, err = readAck(ctx, s)
	}
	if ctx.Err() != nil || cdc.IsTerminal(err) {
		t.Fatalf("Read after connection loss: %v (want a retryable error)", err)
	}
	t.Logf("connection loss: %v", err)
	cfg.ServerID = serverIDs.Add(1)
	s2 := openSource(t, cfg, pos)
	rest := dataOnly(readN(t, s2, 1))
	if rest[0].After.Value("id") != int64(2) {
		t.Fatalf("after reconnect: id %v, want 2", rest[0].After.Value("id"))
	}
}

// TestServerIDCollision: a second replica with the same server_id makes
// the server drop the first, which stops with a terminal error saying so.
func TestServerIDCollision(t *testing.T) {
	db := newTestDB(t)
	db.exec("CREATE TABLE k (id INT PRIMARY KEY)")
	cfg := db.config()
	cfg.SnapshotMode = SnapshotNever
	s1 := openSource(t, cfg, nil)
	db.exec("INSERT INTO k VALUES (1)")
	readN(t, s1, 1)
	s2 := openSource(t, cfg, nil)
	db.exec("INSERT INTO k VALUES (2)")
	readN(t, s2, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	for err == nil {
		_, err = readAck(ctx, s1)
	}
	if !errors.Is(err, ErrServerIDCollision) || !cdc.IsTerminal(err) {
		t.Fatalf("first replica: %v, want terminal ErrServerIDCollision", err)
	}
	db.exec("INSERT INTO k VALUES (3)")
	if recs := dataOnly(readN(t, s2, 1)); recs[0].After.Value("id") != int64(3) {
		t.Fatalf("second replica read %v", recs[0].After)
	}
}

// TestSavepointIsNotABoundary: statements inside a transaction that the
// binlog logs as query events (SAVEPOINT) do not end it, so no position
// falls inside the transaction.
func TestSavepointIsNotABoundary(t *testing.T) {
	db := newTestDB(t)
	db.exec("CREATE TABLE sp (id INT PRIMARY KEY)")
	cfg := db.config()
	cfg.SnapshotMode = SnapshotNever
	s := openSource(t, cfg, nil)
	db.exec("BEGIN")
	db.exec("INSERT INTO sp VALUES (1)")
	db.exec("SAVEPOINT a")
	db.exec("INSERT INTO sp VALUES (2)")
	db.exec("ROLLBACK TO SAVEPOINT a")
	db.exec("INSERT INTO sp VALUES (3)")
	db.exec("COMMIT")
	recs := dataOnly(readN(t, s, 2))
	for i, r := range recs {
		if (r.Position != nil) != (i == len(recs)-1) {
			t.Errorf("record %d (id %v): position %s", i, r.After.Value("id"), r.Position)
		}
	}
	if len(recs) != 2 || recs[0].After.Value("id") != int64(1) || recs[1].After.Value("id") != int64(3) {
		t.Fatalf("got %d records", len(recs))
	}
}

// TestCloseLeavesNoGoroutines opens, streams and closes sources (snapshot
// then stream) and checks that every goroutine they started is gone.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	db := newTestDB(t)
	db.exec("CREATE TABLE g (id INT PRIMARY KEY)")
	db.exec("INSERT INTO g VALUES (1)")
	before := runtime.NumGoroutine()
	for range 3 {
		cfg := db.config()
		s := newSource(t, cfg)
		ctx := context.Background()
		if err := s.Open(ctx, nil); err != nil {
			t.Fatal(err)
		}
		readN(t, s, 1)
		db.exec("INSERT INTO g VALUES (?)", cfg.ServerID)
		readN(t, s, 1)
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
