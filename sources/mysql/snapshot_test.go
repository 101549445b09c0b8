package mysql

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/connectd/connectd/cdc"
)

const typesTable = `CREATE TABLE types (
	id INT PRIMARY KEY,
	ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
	mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
	dec1 DECIMAL(10,2), dec2 DECIMAL(65,30), dec0 DECIMAL(5,0) UNSIGNED, f FLOAT, d DOUBLE,
	b1 BIT(1), b12 BIT(12), b64 BIT(64),
	dt DATE, tm TIME, tm6 TIME(6), dtm DATETIME, dtm3 DATETIME(3), dtm6 DATETIME(6),
	ts TIMESTAMP NULL DEFAULT NULL, ts3 TIMESTAMP(3) NULL DEFAULT NULL, yr YEAR, dtz DATE NOT NULL DEFAULT '2000-01-01',
	c CHAR(5), vc VARCHAR(50), tx TEXT, lat VARCHAR(20) CHARACTER SET latin1,
	bn BINARY(6), vb VARBINARY(10), bl BLOB,
	e ENUM('a','b''c','d'), st SET('x','y','z'),
	js JSON, g GEOMETRY, gen INT AS (i + 1) VIRTUAL
)`

var typesRows = []string{
	`INSERT INTO types (id, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, dec1, dec2, dec0, f, d, b1, b12, b64,
		dt, tm, tm6, dtm, dtm3, dtm6, ts, ts3, yr, dtz, c, vc, tx, lat, bn, vb, bl, e, st, js, g) VALUES
		(1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
		-99999999.99, -12345678901234567890123456789012345.123456789012345678901234567890, 0, -3.4028234e38, -1.7976931348623157e308,
		b'0', b'000000000000', b'0',
		'1000-01-01', '-838:59:59', '-838:59:59.000000', '1000-01-01 00:00:00', '1000-01-01 00:00:00.000', '1000-01-01 00:00:00.000000',
		'1970-01-01 00:00:01', '1970-01-01 00:00:01.001', 1901, '1000-01-01',
		'', '', '', '', x'00', x'', x'', 'a', '', '{}', ST_GeomFromText('POINT(0 0)'))`,
	`INSERT INTO types (id, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, dec1, dec2, dec0, f, d, b1, b12, b64,
		dt, tm, tm6, dtm, dtm3, dtm6, ts, ts3, yr, dtz, c, vc, tx, lat, bn, vb, bl, e, st, js, g) VALUES
		(2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615,
		99999999.99, 12345678901234567890123456789012345.123456789012345678901234567890, 99999, 3.14159265, 2.718281828459045,
		b'1', b'101000000001', b'1111111111111111111111111111111111111111111111111111111111111111',
		'9999-12-31', '838:59:59', '838:59:59.999999', '9999-12-31 23:59:59', '9999-12-31 23:59:59.999', '9999-12-31 23:59:59.999999',
		'2038-01-19 03:14:07', '2038-01-19 03:14:07.999', 2155, '9999-12-31',
		'abc', 'héllo wörld ✓ 😀', REPEAT('long ', 100), 'café €', x'0102', x'00ff00', x'deadbeef00', 'b''c', 'x,z', '{"b": [1, 2.5, "s"], "a": null}',
		ST_GeomFromText('LINESTRING(0 0, 1 1.5)', 4326))`,
	`INSERT INTO types (id) VALUES (3)`,
	`INSERT INTO types (id, dt, tm, dtm, dtm3, ts, yr, dtz, dec1, f, d, e, st) VALUES
		(4, '0000-00-00', '-00:00:01', '0000-00-00 00:00:00', '2024-02-29 12:34:56.5', '2024-02-29 12:34:56', 0, '0000-00-00', -0.5, 0.1, 0.1, 'd', 'x,y,z')`,
}

// TestTypeMatrixSnapshotEqualsStream writes rows covering every type with
// its extremes, zero values and NULLs; reads them once from the binlog and
// once by a snapshot, and requires byte-identical JSON.
func TestTypeMatrixSnapshotEqualsStream(t *testing.T) {
	for _, mode := range []string{DecimalString, DecimalDouble, DecimalPrecise} {
		t.Run(mode, func(t *testing.T) {
			db := newTestDB(t)
			db.exec("SET SESSION sql_mode = ''")
			db.exec("SET SESSION time_zone = '+00:00'")
			db.exec(typesTable)
			cfg := db.config()
			cfg.SnapshotMode = SnapshotNever
			cfg.DecimalHandling = mode
			s := openSource(t, cfg, nil)
			for _, q := range typesRows {
				db.exec(q)
			}
			streamed := dataOnly(readN(t, s, len(typesRows)))

			cfg.SnapshotMode = SnapshotInitial
			cfg.ServerID = serverIDs.Add(1)
			snap := openSource(t, cfg, nil)
			snapped := dataOnly(readN(t, snap, len(typesRows)))
			for i := range streamed {
				a, b := valueJSON(t, streamed[i].After), valueJSON(t, snapped[i].After)
				if a != b {
					t.Errorf("row %d differs\nstream:   %s\nsnapshot: %s", i+1, a, b)
				} else if mode == DecimalString {
					t.Logf("row %d: %s", i+1, a)
				}
				if snapped[i].Op != cdc.OpRead || streamed[i].Op != cdc.OpCreate {
					t.Errorf("ops %v/%v", snapped[i].Op, streamed[i].Op)
				}
				for j := range streamed[i].After {
					ts, tn := streamed[i].After[j].Type, snapped[i].After[j].Type
					if ts.Kind != tn.Kind || ts.Logical != tn.Logical || fmt.Sprint(ts.Params) != fmt.Sprint(tn.Params) || ts.Optional != tn.Optional {
						t.Errorf("column %s: stream type %+v, snapshot type %+v", streamed[i].After[j].Name, *ts, *tn)
					}
				}
			}
		})
	}
}

// TestSnapshotHandOff snapshots a table in small chunks while another
// goroutine keeps writing, then streams; replaying the records yields
// exactly the table's final content, and the snapshot is marked first..last.
func TestSnapshotHandOff(t *testing.T) {
	db := newTestDB(t)
	db.exec("CREATE TABLE a (id INT PRIMARY KEY, v INT)")
	db.exec("CREATE TABLE b (k1 VARCHAR(10), k2 INT, v INT, PRIMARY KEY (k1, k2))")
	for i := 0; i < 500; i++ {
		db.exec("INSERT INTO a VALUES (?, ?)", i, i)
		db.exec("INSERT INTO b VALUES (?, ?, ?)", fmt.Sprintf("k%d", i%7), i, i)
	}
	cfg := db.config()
	cfg.SnapshotChunkRows = 37
	s := openSource(t, cfg, nil)

	// Concurrent writer on its own connection.
	w := newTestDBConn(t, db)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 300; i++ {
			_, _ = w.Execute("UPDATE a SET v = v + 1000 WHERE id = ?", (i*13)%600)
			_, _ = w.Execute("INSERT INTO a VALUES (?, ?)", 500+i, i)
			_, _ = w.Execute("DELETE FROM b WHERE k2 = ?", i*2)
		}
	}()
	state := map[string]string{}
	apply := func(recs []cdc.Record) {
		for _, r := range recs {
			if isHeartbeat(r) {
				continue
			}
			k := r.Topic + keyJSON(t, &r)
			if r.After == nil {
				delete(state, k)
			} else {
				state[k] = valueJSON(t, r.After)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var snapFlags []string
	for s.snap != nil || s.syncer == nil {
		recs, err := readAck(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range dataOnly(recs) {
			if r.Op == cdc.OpRead {
				snapFlags = append(snapFlags, r.Source.Snapshot)
			}
		}
		apply(recs)
	}
	<-done
	if snapFlags[0] != "first" || snapFlags[len(snapFlags)-1] != "last" {
		t.Errorf("snapshot flags start %q end %q (%d records; tail %q)", snapFlags[0], snapFlags[len(snapFlags)-1], len(snapFlags), snapFlags[max(0, len(snapFlags)-40):])
	}
	want := tableState(t, db, cfg.TopicPrefix)
	deadline := time.Now().Add(30 * time.Second)
	for !equalState(state, want) {
		if time.Now().After(deadline) {
			for k, v := range want {
				if state[k] != v {
					t.Errorf("key %s: view %q, table %q", k, state[k], v)
				}
			}
			for k, v := range state {
				if _, ok := want[k]; !ok {
					t.Errorf("key %s: view %q, not in table", k, v)
				}
			}
			t.Fatalf("view has %d keys, table %d; they differ", len(state), len(want))
		}
		rctx, rcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		recs, err := readAck(rctx, s)
		rcancel()
		if err != nil && rctx.Err() == nil {
			t.Fatal(err)
		}
		apply(recs)
	}
}

// TestSnapshotResume stops after some chunks and resumes from the last
// position: the union covers the whole table, nothing before the stored
// key is read again.
func TestSnapshotResume(t *testing.T) {
	db := newTestDB(t)
	db.exec("CREATE TABLE a (id INT PRIMARY KEY, v INT)")
	db.exec("CREATE TABLE b (id VARBINARY(8) PRIMARY KEY)")
	for i := 0; i < 100; i++ {
		db.exec("INSERT INTO a VALUES (?, ?)", i, i)
		db.exec("INSERT INTO b VALUES (?)", []byte{byte(i), 0})
	}
	cfg := db.config()
	cfg.SnapshotChunkRows = 30
	s := openSource(t, cfg, nil)
	first := readN(t, s, 150) // a: 4 chunks, b: 2 chunks
	pos := lastPosition(first)
	_ = s.Close(context.Background())
	if !containsSnapshot(pos) {
		t.Fatalf("position %s has no snapshot progress", pos)
	}
	cfg.ServerID = serverIDs.Add(1)
	s2 := openSource(t, cfg, pos)
	left := 200 - len(dataOnly(first))
	rest := readN(t, s2, left)
	if got := len(dataOnly(rest)); got != left {
		t.Fatalf("resumed snapshot read %d records, want %d", got, left)
	}
	seen := map[string]bool{}
	for _, r := range append(dataOnly(first), dataOnly(rest)...) {
		k := r.Topic + keyJSON(t, &r)
		if seen[k] {
			t.Fatalf("key %s read twice", k)
		}
		seen[k] = true
	}
	if len(seen) != 200 {
		t.Fatalf("%d keys, want 200", len(seen))
	}
}

func containsSnapshot(p cdc.Position) bool {
	pp, err := parsePosition(p)
	return err == nil && pp.Snapshot != nil
}

func equalState(a, b map[string]string) bool {
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

// tableState reads the database's tables with a snapshot-mode source: the
// expected view.
func tableState(t *testing.T, db *testDB, prefix string) map[string]string {
	t.Helper()
	cfg := db.config()
	cfg.TopicPrefix = prefix
	s := openSource(t, cfg, nil)
	state := map[string]string{}
	ctx := context.Background()
	for s.snap != nil {
		recs, err := readAck(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range dataOnly(recs) {
			state[r.Topic+keyJSON(t, &r)] = valueJSON(t, r.After)
		}
	}
	keys := make([]string, 0, len(state))
	for k := range state {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return state
}

// TestSnapshotWaitsForStoredStart: a fresh snapshot first returns only its
// start position (on the heartbeat topic) and emits no row until that
// position is acknowledged, so a crash can never lose the binlog position
// rows already in Kafka were read at.
func TestSnapshotWaitsForStoredStart(t *testing.T) {
	db := newTestDB(t)
	db.exec("CREATE TABLE a (id INT PRIMARY KEY)")
	db.exec("INSERT INTO a VALUES (1)")
	s := openSource(t, db.config(), nil)
	ctx := context.Background()
	recs, err := s.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || !isHeartbeat(recs[0]) || !containsSnapshot(recs[0].Position) {
		t.Fatalf("first batch %+v, want the snapshot's start position alone", recs)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if recs, err := s.Read(short); err == nil {
		t.Fatalf("Read before the start position was acknowledged returned %d records", len(recs))
	}
	if err := s.Ack(ctx, recs[0].Position); err != nil {
		t.Fatal(err)
	}
	if got := dataOnly(readN(t, s, 1)); got[0].Op != cdc.OpRead {
		t.Fatalf("after Ack: %+v", got[0])
	}
}
