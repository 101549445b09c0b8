package postgres

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/cdc"
)

func TestSnapshotThenStream(t *testing.T) {
	e := newTestEnv(t)
	e.exec("CREATE TABLE " + e.schema + ".items (id int PRIMARY KEY, name text, qty int)")
	e.exec("INSERT INTO " + e.schema + ".items SELECT g, 'item-' || g, g FROM generate_series(1, 25) g")
	cfg := e.config()
	cfg.SnapshotChunkRows = 10
	s := e.open(cfg, nil)

	snap := read(t, s, 25, 10*time.Second)
	topic := "tp." + e.schema + ".items"
	for i, r := range snap {
		if r.Op != cdc.OpRead || r.Topic != topic {
			t.Fatalf("snapshot record %d: %s %s", i, r.Op, r.Topic)
		}
		if got, want := key(t, r), `{"id":`+strconv.Itoa(i+1)+`}`; got != want {
			t.Fatalf("snapshot record %d key %s, want %s", i, got, want)
		}
	}
	if snap[0].Source.Snapshot != "first" || snap[24].Source.Snapshot != "last" {
		t.Errorf("snapshot markers: first %q last %q", snap[0].Source.Snapshot, snap[24].Source.Snapshot)
	}
	// Chunk ends carry progress; the last record the streaming position.
	if p := snap[9].Position; !strings.Contains(string(p), `"after":["10"]`) {
		t.Errorf("chunk end position %s", p)
	}
	if p := string(snap[24].Position); strings.Contains(p, "snapshot") || !strings.Contains(p, `"lsn"`) {
		t.Errorf("final snapshot position %s", p)
	}

	e.exec("BEGIN")
	e.exec("INSERT INTO " + e.schema + ".items VALUES (100, 'new', 1)")
	e.exec("UPDATE " + e.schema + ".items SET qty = 42 WHERE id = 3")
	e.exec("DELETE FROM " + e.schema + ".items WHERE id = 4")
	e.exec("COMMIT")
	e.exec("UPDATE " + e.schema + ".items SET id = 200 WHERE id = 5")
	e.exec("TRUNCATE " + e.schema + ".items")
	recs := read(t, s, 6, 10*time.Second)
	want := []struct {
		op       cdc.Op
		key      string
		before   string
		after    string
		position bool
	}{
		{cdc.OpCreate, `{"id":100}`, `null`, `{"id":100,"name":"new","qty":1}`, false},
		{cdc.OpUpdate, `{"id":3}`, `null`, `{"id":3,"name":"item-3","qty":42}`, false},
		{cdc.OpDelete, `{"id":4}`, `{"id":4,"name":null,"qty":null}`, `null`, true},
		{cdc.OpDelete, `{"id":5}`, `{"id":5,"name":null,"qty":null}`, `null`, false},
		{cdc.OpCreate, `{"id":200}`, `null`, `{"id":200,"name":"item-5","qty":5}`, true},
		{cdc.OpTruncate, ``, `null`, `null`, true},
	}
	recs = recs[:6]
	for i, w := range want {
		r := recs[i]
		if r.Op != w.op || key(t, r) != w.key || rowJSON(t, r.Before) != w.before || rowJSON(t, r.After) != w.after || (r.Position != nil) != w.position {
			t.Errorf("record %d: got %s key=%s before=%s after=%s pos=%s\nwant %s key=%s before=%s after=%s pos=%v",
				i, r.Op, key(t, r), rowJSON(t, r.Before), rowJSON(t, r.After), r.Position, w.op, w.key, w.before, w.after, w.position)
		}
	}
	// Source block.
	v := value(t, recs[0])
	for _, frag := range []string{`"connector":"postgresql"`, `"name":"tp"`, `"snapshot":"false"`, `"db":"connectd_test"`, `"schema":"` + e.schema + `"`, `"table":"items"`, `"txId":`, `"lsn":`, `"xmin":null`, `"sequence":"[\"`} {
		if !strings.Contains(v, frag) {
			t.Errorf("value lacks %s: %s", frag, v)
		}
	}
}

// TestSnapshotAndStreamIdentical checks that a row read by the snapshot
// and the same row sent by the stream encode to the same JSON, over many
// types.
func TestSnapshotAndStreamIdentical(t *testing.T) {
	e := newTestEnv(t)
	e.exec("CREATE TYPE " + e.schema + ".mood AS ENUM ('sad', 'ok', 'happy')")
	e.exec("CREATE DOMAIN " + e.schema + ".posint AS int CHECK (VALUE > 0)")
	e.exec(`CREATE TABLE ` + e.schema + `.types (
  id bigint PRIMARY KEY, b bool, i2 int2, i4 int4, r real, d double precision,
  n numeric(12,3), nv numeric, m money, c char(4), vc varchar(10), tx text, by bytea, u uuid,
  j json, jb jsonb, dt date, tm time, tm3 time(3), ttz timetz, ts timestamp, ts3 timestamp(3), tstz timestamptz,
  iv interval, arr int[], tarr text[], e ` + e.schema + `.mood, dom ` + e.schema + `.posint, ip inet, cidr cidr, mac macaddr,
  bit1 bit(1), bits bit(10), vb varbit, rng int4range, tsr tsrange, x xml, o oid)`)
	insert := `INSERT INTO ` + e.schema + `.types VALUES
 (1, true, -2, 40000, 1.1, 2.5e-10, 123456789.125, 'NaN', 12.34, 'ab', 'vc', 'text "q" \ é', '\xdeadbeef', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '{"a": [1, 2]}', '{"b": 1, "a": 2}', '2024-02-29', '13:14:15.123456', '13:14:15.5', '13:14:15+02', '2024-01-02 03:04:05.678901', '2024-01-02 03:04:05.678', '2024-01-02 03:04:05.5+05:30',
  '1 year 2 mons 3 days 04:05:06.789', '{1,NULL,3}', '{"a b","c,d",NULL,"e\"f"}', 'happy', 7, '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03',
  B'1', B'1010101011', B'101', '[1,10)', '[2024-01-01,2024-02-01)', '<a>x</a>', 42),
 (2, NULL, NULL, NULL, 'Infinity', '-Infinity', NULL, '-12.5', -1.5, NULL, NULL, NULL, '\x', NULL,
  NULL, NULL, '1969-12-31', '00:00:00', NULL, NULL, '1960-06-01 00:00:00', NULL, 'infinity',
  '-1 day', '{}', '{{"a"},{"b"}}', NULL, NULL, NULL, NULL, NULL,
  B'0', NULL, B'', 'empty', NULL, NULL, NULL)`
	e.exec(insert)
	for _, mode := range []DecimalHandling{DecimalString, DecimalPrecise, DecimalDouble} {
		t.Run(string(mode), func(t *testing.T) {
			cfg := e.config()
			cfg.DecimalHandling = mode
			cfg.Slot = e.slot
			s := e.open(cfg, nil)
			snap := read(t, s, 2, 10*time.Second)
			// The same rows again through the stream: a no-op update
			// resends every column (none is TOASTed here).
			e.exec("UPDATE " + e.schema + ".types SET id = id")
			stream := read(t, s, 2, 10*time.Second)
			for i := range snap {
				a, b := rowJSON(t, snap[i].After), rowJSON(t, stream[i].After)
				if a != b {
					t.Errorf("row %d differs\nsnapshot %s\nstream   %s", i+1, a, b)
				}
			}
			if mode == DecimalString {
				want := `{"id":1,"b":true,"i2":-2,"i4":40000,"r":1.1,"d":2.5e-10,"n":"123456789.125","nv":"NaN","m":"12.34","c":"ab  ","vc":"vc","tx":"text \"q\" \\ é","by":"3q2+7w==","u":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",` +
					`"j":"{\"a\": [1, 2]}","jb":"{\"a\": 2, \"b\": 1}","dt":19782,"tm":47655123456,"tm3":47655500,"ttz":"11:14:15Z","ts":1704164645678901,"ts3":1704164645678,"tstz":"2024-01-01T21:34:05.5Z",` +
					`"iv":37091106789000,"arr":[1,null,3],"tarr":["a b","c,d",null,"e\"f"],"e":"happy","dom":7,"ip":"192.168.0.1/24","cidr":"10.0.0.0/8","mac":"08:00:2b:01:02:03",` +
					`"bit1":true,"bits":"qwI=","vb":"BQ==","rng":"[1,10)","tsr":"[\"2024-01-01 00:00:00\",\"2024-02-01 00:00:00\")","x":"<a>x</a>","o":42}`
				if got := rowJSON(t, snap[0].After); got != want {
					t.Errorf("row 1\n got %s\nwant %s", got, want)
				}
				t.Logf("row 2: %s", rowJSON(t, snap[1].After))
			}
			_ = s.Close(context.Background())
			if err := dropSlot(context.Background(), e.conn, e.slot); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestUnchangedToastAndIdentityFull(t *testing.T) {
	e := newTestEnv(t)
	e.exec("CREATE TABLE " + e.schema + ".docs (id int PRIMARY KEY, n int, body text)")
	e.exec("CREATE TABLE " + e.schema + ".full_docs (id int PRIMARY KEY, n int, body text)")
	e.exec("ALTER TABLE " + e.schema + ".full_docs REPLICA IDENTITY FULL")
	cfg := e.config()
	cfg.SnapshotMode = SnapshotNever
	s := e.open(cfg, nil)
	// Random text does not compress, so it is stored out of line (TOAST).
	big := "md5(random()::text) || string_agg(md5(random()::text), '') FROM generate_series(1, 400)"
	e.exec("INSERT INTO " + e.schema + ".docs SELECT 1, 1, " + big)
	e.exec("INSERT INTO " + e.schema + ".full_docs SELECT 1, 1, " + big)
	e.exec("UPDATE " + e.schema + ".docs SET n = 2")
	e.exec("UPDATE " + e.schema + ".full_docs SET n = 2")
	e.exec("DELETE FROM " + e.schema + ".full_docs")
	recs := read(t, s, 5, 10*time.Second)
	upd := recs[2]
	if upd.Op != cdc.OpUpdate || upd.Before != nil {
		t.Fatalf("default identity update: %s", describe(recs[2:3]))
	}
	f, _ := upd.After.Get("body")
	if !f.Unchanged || f.Value != nil {
		t.Errorf("unchanged TOAST body: %+v", f)
	}
	if !strings.Contains(value(t, upd), `"body":"`+cdc.UnavailableValue+`"`) {
		t.Errorf("encoded update lacks the placeholder: %s", value(t, upd))
	}
	fu := recs[3]
	if fu.Before == nil || fu.Before.Value("n") != int64(1) {
		t.Errorf("full identity update before: %v", fu.Before)
	}
	if fb, _ := fu.After.Get("body"); fb.Unchanged || len(fb.Value.(string)) < 10000 {
		t.Errorf("full identity: the unchanged TOAST value should be filled from the old row")
	}
	del := recs[4]
	if del.Op != cdc.OpDelete || del.Before.Value("n") != int64(2) || key(t, del) != `{"id":1}` {
		t.Errorf("full identity delete: %s", describe(recs[4:5]))
	}
}

func TestSchemaChangeMidStream(t *testing.T) {
	e := newTestEnv(t)
	e.exec("CREATE TABLE " + e.schema + ".s (id int PRIMARY KEY, a int)")
	cfg := e.config()
	cfg.SnapshotMode = SnapshotNever
	s := e.open(cfg, nil)
	e.exec("INSERT INTO " + e.schema + ".s VALUES (1, 1)")
	e.exec("ALTER TABLE " + e.schema + ".s ADD COLUMN b text DEFAULT 'x'")
	e.exec("INSERT INTO " + e.schema + ".s VALUES (2, 2, 'y')")
	e.exec("ALTER TABLE " + e.schema + ".s DROP COLUMN a")
	e.exec("ALTER TABLE " + e.schema + ".s ALTER COLUMN b DROP DEFAULT")
	e.exec("ALTER TABLE " + e.schema + ".s ALTER COLUMN b TYPE int USING 5")
	e.exec("INSERT INTO " + e.schema + ".s VALUES (3, 6)")
	recs := read(t, s, 3, 10*time.Second)
	want := []string{`{"id":1,"a":1}`, `{"id":2,"a":2,"b":"y"}`, `{"id":3,"b":6}`}
	for i, w := range want {
		if got := rowJSON(t, recs[i].After); got != w {
			t.Errorf("record %d: %s, want %s", i, got, w)
		}
	}
}

// TestAckBoundsConfirmedFlush checks that the slot is never confirmed past
// what was acknowledged, and is confirmed exactly there once acknowledged.
func TestAckBoundsConfirmedFlush(t *testing.T) {
	e := newTestEnv(t)
	e.exec("CREATE TABLE " + e.schema + ".a (id int PRIMARY KEY)")
	cfg := e.config()
	cfg.SnapshotMode = SnapshotNever
	s := e.open(cfg, nil)
	start := e.confirmed()
	for i := range 5 {
		e.exec("INSERT INTO "+e.schema+".a VALUES ($1)", i)
	}
	recs := read(t, s, 5, 10*time.Second)
	time.Sleep(2500 * time.Millisecond) // several status intervals, no acks
	// The slot may move across WAL with nothing to deliver (other tests
	// write to the same server), but never up to the first unacknowledged
	// transaction.
	_, first, err := parsePosition(recs[0].Position)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := pglogrepl.ParseLSN(e.confirmed()); got >= first {
		t.Fatalf("confirmed_flush_lsn moved to %s, past the first unacknowledged transaction (ends at %s; start %s)", got, first, start)
	}
	p, lsn, _ := parsePosition(recs[2].Position)
	if err := s.Ack(context.Background(), recs[2].Position); err != nil {
		t.Fatal(err)
	}
	waitConfirmed(t, e, lsn)
	time.Sleep(1500 * time.Millisecond)
	if got := e.confirmed(); got != p.LSN {
		t.Fatalf("confirmed %s, want exactly the acknowledged %s", got, p.LSN)
	}
	// Resume from the acknowledged position: exactly the last two.
	_ = s.Close(context.Background())
	s2 := e.open(cfg, recs[2].Position)
	again := read(t, s2, 2, 10*time.Second)
	if again[0].After.Value("id") != int64(3) || again[1].After.Value("id") != int64(4) {
		t.Fatalf("resumed records: %s", describe(again))
	}
	readNone(t, s2, 500*time.Millisecond)
}

func waitConfirmed(t *testing.T, e *testEnv, lsn pglogrepl.LSN) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ := pglogrepl.ParseLSN(e.confirmed())
		if got >= lsn {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("confirmed_flush_lsn %s did not reach %s", got, lsn)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestHeartbeatAdvancesIdleSlot(t *testing.T) {
	e := newTestEnv(t)
	e.exec("CREATE TABLE " + e.schema + ".watched (id int PRIMARY KEY)")
	e.exec("CREATE TABLE " + e.schema + ".ignored (id int PRIMARY KEY)")
	cfg := e.config()
	cfg.SnapshotMode = SnapshotNever
	hb := 200 * time.Millisecond
	cfg.HeartbeatInterval = &hb
	cfg.ExcludeTables = []string{`.*\.ignored`}
	s := e.open(cfg, nil)
	start, _ := pglogrepl.ParseLSN(e.confirmed())
	// Changes to an excluded table and heartbeats only: the slot moves.
	e.exec("INSERT INTO " + e.schema + ".ignored SELECT generate_series(1, 100)")
	waitConfirmed(t, e, start+1)
	readNone(t, s, 300*time.Millisecond)

	// With an unacknowledged change pending, heartbeats must not move it
	// past that change.
	e.exec("INSERT INTO " + e.schema + ".watched VALUES (1)")
	recs := read(t, s, 1, 10*time.Second)
	_, lsn, _ := parsePosition(recs[0].Position)
	time.Sleep(1500 * time.Millisecond)
	if got, _ := pglogrepl.ParseLSN(e.confirmed()); got >= lsn {
		t.Fatalf("confirmed %s passed the unacknowledged change at %s", got, lsn)
	}
	_ = s.Ack(context.Background(), recs[0].Position)
	waitConfirmed(t, e, lsn+1) // heartbeats after the ack carry it further
}

func TestOpenErrors(t *testing.T) {
	e := newTestEnv(t)
	e.exec("CREATE TABLE " + e.schema + ".a (id int PRIMARY KEY)")

	t.Run("bad password", func(t *testing.T) {
		cfg := e.config()
		cfg.DSN = strings.Replace(e.dsn, "cdc:cdc@", "cdc:wrong-secret@", 1)
		cfg.Slot = e.slot + "_pw"
		defer func() { _ = dropSlot(context.Background(), e.conn, cfg.Slot) }()
		s := e.source(cfg)
		err := s.Open(context.Background(), nil)
		_ = s.Close(context.Background())
		if err == nil {
			t.Skip("server trusts local connections: no password check")
		}
		if strings.Contains(err.Error(), "wrong-secret") {
			t.Errorf("error leaks the password: %v", err)
		}
		t.Logf("error: %v", err)
	})
	t.Run("slot missing", func(t *testing.T) {
		cfg := e.config()
		s := e.source(cfg)
		err := s.Open(context.Background(), cdc.Position(`{"lsn":"0/1000","txId":1}`))
		_ = s.Close(context.Background())
		if !errors.Is(err, ErrSlotMissing) || !cdc.IsTerminal(err) {
			t.Fatalf("got %v, want terminal ErrSlotMissing", err)
		}
	})
	t.Run("slot missing when_needed re-snapshots", func(t *testing.T) {
		e.exec("INSERT INTO " + e.schema + ".a VALUES (1)")
		cfg := e.config()
		cfg.SnapshotMode = SnapshotWhenNeeded
		s := e.open(cfg, cdc.Position(`{"lsn":"0/1000","txId":1}`))
		recs := read(t, s, 1, 10*time.Second)
		if recs[0].Op != cdc.OpRead {
			t.Fatalf("want a snapshot read, got %s", describe(recs))
		}
	})
	t.Run("publication missing a table", func(t *testing.T) {
		e.exec("CREATE TABLE " + e.schema + ".b (id int PRIMARY KEY)")
		cfg := e.config()
		s := e.source(cfg)
		err := s.Open(context.Background(), nil)
		_ = s.Close(context.Background())
		if !errors.Is(err, ErrPublication) {
			t.Fatalf("got %v, want ErrPublication", err)
		}
	})
}

func TestPrivilegeAndKeyWarnings(t *testing.T) {
	e := newTestEnv(t)
	e.exec("CREATE TABLE " + e.schema + ".nokey (a int, b text)")
	e.exec("CREATE TABLE " + e.schema + ".keyed (id int PRIMARY KEY)")

	t.Run("no REPLICATION attribute", func(t *testing.T) {
		role := e.schema + "_norepl"
		e.exec("CREATE ROLE " + role + " LOGIN PASSWORD 'pw'")
		t.Cleanup(func() { _, _ = e.conn.Exec(context.Background(), "DROP ROLE IF EXISTS "+role) })
		cfg := e.config()
		u, err := url.Parse(e.dsn)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword(role, "pw")
		cfg.DSN = u.String()
		s := e.source(cfg)
		err = s.Open(context.Background(), nil)
		_ = s.Close(context.Background())
		if !errors.Is(err, ErrPrivilege) || !cdc.IsTerminal(err) || !strings.Contains(err.Error(), "WITH REPLICATION") {
			t.Fatalf("got %v, want a terminal ErrPrivilege naming the fix", err)
		}
	})
	t.Run("no SELECT on a captured table", func(t *testing.T) {
		role := e.schema + "_nosel"
		e.exec("CREATE ROLE " + role + " LOGIN REPLICATION PASSWORD 'pw'")
		t.Cleanup(func() { _, _ = e.conn.Exec(context.Background(), "DROP ROLE IF EXISTS "+role) })
		e.exec("CREATE PUBLICATION " + e.pub + "_nosel FOR TABLE " + e.schema + ".keyed")
		t.Cleanup(func() { _, _ = e.conn.Exec(context.Background(), "DROP PUBLICATION IF EXISTS "+e.pub+"_nosel") })
		cfg := e.config()
		cfg.Publication = e.pub + "_nosel"
		cfg.IncludeTables = []string{e.schema + `\.keyed`}
		u, _ := url.Parse(e.dsn)
		u.User = url.UserPassword(role, "pw")
		cfg.DSN = u.String()
		s := e.open(cfg, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := s.Read(ctx)
		if !errors.Is(err, ErrPrivilege) || !cdc.IsTerminal(err) || !strings.Contains(err.Error(), "GRANT SELECT") {
			t.Fatalf("got %v, want a terminal ErrPrivilege with the GRANT", err)
		}
	})
	t.Run("table without key warns", func(t *testing.T) {
		var logs strings.Builder
		cfg := e.config()
		cfg.SnapshotMode = SnapshotNever
		s, err := New(fakeDecoder{cfg}, "pg", slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Open(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		_ = s.Close(context.Background())
		if !strings.Contains(logs.String(), "REPLICA IDENTITY FULL") || !strings.Contains(logs.String(), e.schema+".nokey") {
			t.Fatalf("no warning about %s.nokey:\n%s", e.schema, logs.String())
		}
		if strings.Contains(logs.String(), "table="+e.schema+".keyed") {
			t.Errorf("warned about a keyed table:\n%s", logs.String())
		}
	})
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// TestSnapshotHandOffUnderWrites snapshots a table while a writer keeps
// incrementing a version column, and checks that per key the snapshot
// version is followed by every later version exactly once: the snapshot
// and the stream meet exactly at the slot's consistent point.
func TestSnapshotHandOffUnderWrites(t *testing.T) {
	e := newTestEnv(t)
	const rows = 5000
	e.exec("CREATE TABLE " + e.schema + ".v (id int PRIMARY KEY, ver int NOT NULL)")
	e.exec("INSERT INTO "+e.schema+".v SELECT g, 0 FROM generate_series(1, $1) g", rows)
	wconn, err := pgx.Connect(context.Background(), e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer wconn.Close(context.Background())
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		r := rand.New(rand.NewPCG(3, 4))
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			lo := 1 + r.IntN(rows-20)
			if _, err := wconn.Exec(context.Background(), "UPDATE "+e.schema+".v SET ver = ver + 1 WHERE id BETWEEN $1 AND $2", lo, lo+r.IntN(20)); err != nil {
				done <- err
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	cfg := e.config()
	cfg.SnapshotChunkRows = 500
	s := e.open(cfg, nil)
	seen := map[int64][]int64{}
	var snapshotRows int
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stopped := false
	final := map[int64]int64{}
	for {
		if !stopped && snapshotRows == rows {
			time.Sleep(300 * time.Millisecond) // some streaming under writes
			close(stop)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			stopped = true
			rs, err := e.conn.Query(ctx, "SELECT id, ver FROM "+e.schema+".v")
			if err != nil {
				t.Fatal(err)
			}
			for rs.Next() {
				var id, ver int64
				_ = rs.Scan(&id, &ver)
				final[id] = ver
			}
			rs.Close()
		}
		if stopped {
			caught := true
			for id, ver := range final {
				if v := seen[id]; len(v) == 0 || v[len(v)-1] != ver {
					caught = false
					break
				}
			}
			if caught {
				break
			}
		}
		recs, err := s.Read(ctx)
		if err != nil {
			t.Fatalf("Read: %v (snapshot rows %d)", err, snapshotRows)
		}
		for _, r := range recs {
			id := r.After.Value("id").(int64)
			ver := r.After.Value("ver").(int64)
			if r.Op == cdc.OpRead {
				snapshotRows++
				if len(seen[id]) > 0 {
					t.Fatalf("key %d: snapshot row after stream events", id)
				}
			}
			seen[id] = append(seen[id], ver)
		}
	}
	streamed := 0
	for id, vs := range seen {
		for i := 1; i < len(vs); i++ {
			if vs[i] != vs[i-1]+1 {
				t.Fatalf("key %d: versions %v are not consecutive (lost or duplicated change at the hand-off)", id, vs)
			}
		}
		streamed += len(vs) - 1
	}
	t.Logf("%d snapshot rows, %d streamed updates, all consecutive per key", snapshotRows, streamed)
}

func TestSnapshotResumesFromProgress(t *testing.T) {
	e := newTestEnv(t)
	e.exec("CREATE TABLE " + e.schema + ".a (id int PRIMARY KEY)")
	e.exec("CREATE TABLE " + e.schema + ".b (k text, n int, PRIMARY KEY (k, n))")
	e.exec("INSERT INTO " + e.schema + ".a SELECT generate_series(1, 25)")
	e.exec("INSERT INTO " + e.schema + ".b SELECT 'k' || (g % 3), g FROM generate_series(1, 12) g")
	cfg := e.config()
	cfg.SnapshotChunkRows = 10
	s := e.open(cfg, nil)
	first := read(t, s, 37, 10*time.Second)
	_ = s.Close(context.Background())
	// Resume after a's second chunk, and after b's first chunk.
	for _, at := range []int{19, 34} {
		pos := first[at].Position
		if pos == nil || !strings.Contains(string(pos), `"snapshot"`) {
			t.Fatalf("record %d has no snapshot progress: %s", at, pos)
		}
		s2 := e.open(cfg, pos)
		rest := read(t, s2, 37-at-1, 10*time.Second)
		for i, r := range rest {
			if got, want := key(t, r), key(t, first[at+1+i]); got != want || r.Op != cdc.OpRead {
				t.Fatalf("resumed at %d: record %d is %s %s, want %s", at, i, r.Op, got, want)
			}
		}
		readNone(t, s2, 300*time.Millisecond)
		_ = s2.Close(context.Background())
	}
}

func TestSlotInUseAndDropOnStop(t *testing.T) {
	e := newTestEnv(t)
	e.exec("CREATE TABLE " + e.schema + ".a (id int PRIMARY KEY)")
	cfg := e.config()
	cfg.SnapshotMode = SnapshotNever
	cfg.DropSlotOnStop = true
	s := e.open(cfg, nil)
	e.exec("INSERT INTO " + e.schema + ".a VALUES (1)")
	read(t, s, 1, 10*time.Second)

	s2 := e.source(cfg)
	if err := s2.Open(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err := s2.Read(ctx)
	cancel()
	s2.cfg.DropSlotOnStop = false // only the first reader drops it
	_ = s2.Close(context.Background())
	if !errors.Is(err, ErrSlotInUse) || cdc.IsTerminal(err) {
		t.Fatalf("second reader: %v, want a retryable ErrSlotInUse", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var n int
	_ = e.conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", e.slot).Scan(&n)
	if n != 0 {
		t.Fatalf("slot still exists after Close with drop_slot_on_stop")
	}
}

func TestPartitionsAndGeneratedColumns(t *testing.T) {
	e := newTestEnv(t)
	e.exec("CREATE TABLE " + e.schema + ".p (id int, region text, total int GENERATED ALWAYS AS (id * 2) STORED, PRIMARY KEY (id, region)) PARTITION BY LIST (region)")
	e.exec("CREATE TABLE " + e.schema + ".p_eu PARTITION OF " + e.schema + ".p FOR VALUES IN ('eu')")
	e.exec("CREATE TABLE " + e.schema + ".p_us PARTITION OF " + e.schema + ".p FOR VALUES IN ('us')")
	e.exec("INSERT INTO " + e.schema + ".p VALUES (1, 'eu'), (2, 'us')")
	s := e.open(e.config(), nil)
	snap := read(t, s, 2, 10*time.Second)
	e.exec("INSERT INTO " + e.schema + ".p VALUES (3, 'us')")
	recs := read(t, s, 1, 10*time.Second)
	topic := "tp." + e.schema + ".p"
	for _, r := range append(snap, recs...) {
		if r.Topic != topic {
			t.Errorf("topic %s, want %s", r.Topic, topic)
		}
	}
	if got := rowJSON(t, snap[0].After); got != `{"id":1,"region":"eu"}` {
		t.Errorf("snapshot row %s", got)
	}
	if got := rowJSON(t, recs[0].After); got != `{"id":3,"region":"us"}` {
		t.Errorf("streamed row %s", got)
	}
}

// TestConnectionLossIsRetryable terminates the walsender mid-stream: Read
// fails with a retryable error, and reopening at the last acknowledged
// position loses nothing.
func TestConnectionLossIsRetryable(t *testing.T) {
	e := newTestEnv(t)
	e.exec("CREATE TABLE " + e.schema + ".a (id int PRIMARY KEY)")
	cfg := e.config()
	cfg.SnapshotMode = SnapshotNever
	s := e.open(cfg, nil)
	e.exec("INSERT INTO " + e.schema + ".a VALUES (1)")
	first := read(t, s, 1, 10*time.Second)
	_ = s.Ack(context.Background(), first[0].Position)
	e.exec("INSERT INTO " + e.schema + ".a VALUES (2)")
	e.exec("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1", e.slot)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	for err == nil {
		_, err = s.Read(ctx)
	}
	if ctx.Err() != nil || cdc.IsTerminal(err) {
		t.Fatalf("Read after the walsender died: %v, want a retryable error", err)
	}
	_ = s.Close(context.Background())
	e.exec("INSERT INTO " + e.schema + ".a VALUES (3)")
	var s2 *Source
	deadline := time.Now().Add(10 * time.Second)
	for {
		s2 = e.source(cfg)
		err := s2.Open(context.Background(), first[0].Position)
		if err == nil {
			t.Cleanup(func() { _ = s2.Close(context.Background()) })
			break
		}
		_ = s2.Close(context.Background())
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	recs := read(t, s2, 2, 10*time.Second)
	if recs[0].After.Value("id") != int64(2) || recs[1].After.Value("id") != int64(3) {
		t.Fatalf("after reconnect: %s", describe(recs))
	}
}

func TestExtensionTypes(t *testing.T) {
	e := newTestEnv(t)
	for _, ext := range []string{"hstore", "ltree", "citext"} {
		if _, err := e.conn.Exec(context.Background(), "CREATE EXTENSION IF NOT EXISTS "+ext+" SCHEMA "+e.schema); err != nil {
			t.Skipf("extension %s not available: %v", ext, err)
		}
	}
	e.exec("CREATE TABLE " + e.schema + ".x (id int PRIMARY KEY, h " + e.schema + ".hstore, l " + e.schema + ".ltree, c " + e.schema + ".citext, ha " + e.schema + ".hstore[])")
	e.exec(`INSERT INTO ` + e.schema + `.x VALUES (1, 'a=>1, "b c"=>NULL, "q\"x"=>"y"', 'top.mid.leaf', 'MiXeD', ARRAY['k=>v']::` + e.schema + `.hstore[])`)
	s := e.open(e.config(), nil)
	snap := read(t, s, 1, 10*time.Second)
	e.exec("UPDATE " + e.schema + ".x SET id = id")
	stream := read(t, s, 1, 10*time.Second)
	a, b := rowJSON(t, snap[0].After), rowJSON(t, stream[0].After)
	if a != b {
		t.Fatalf("snapshot %s\nstream   %s", a, b)
	}
	want := `{"id":1,"h":"{\"a\":\"1\",\"b c\":null,\"q\\\"x\":\"y\"}","l":"top.mid.leaf","c":"MiXeD","ha":["{\"k\":\"v\"}"]}`
	if a != want {
		t.Fatalf("got  %s\nwant %s", a, want)
	}
}

func TestConfigurableUnavailablePlaceholder(t *testing.T) {
	e := newTestEnv(t)
	e.exec("CREATE TABLE " + e.schema + ".docs (id int PRIMARY KEY, n int, body text)")
	cfg := e.config()
	cfg.SnapshotMode = SnapshotNever
	cfg.UnavailableValuePlaceholder = "__toast_kept__"
	s := e.open(cfg, nil)
	big := "md5(random()::text) || string_agg(md5(random()::text), '') FROM generate_series(1, 400)"
	e.exec("INSERT INTO " + e.schema + ".docs SELECT 1, 1, " + big)
	e.exec("UPDATE " + e.schema + ".docs SET n = 2")
	recs := read(t, s, 2, 10*time.Second)
	if f, _ := recs[1].After.Get("body"); !f.Unchanged {
		t.Fatalf("body not marked unchanged: %+v", f)
	}
	if v := value(t, recs[1]); !strings.Contains(v, `"body":"__toast_kept__"`) {
		t.Fatalf("encoded update lacks the configured placeholder: %s", v)
	}
}
