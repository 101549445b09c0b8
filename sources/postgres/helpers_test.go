package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/integration/servers"
)

// fakeDecoder decodes a prepared Config, standing in for a YAML section.
type fakeDecoder struct{ cfg Config }

func (f fakeDecoder) Decode(out any) error { *out.(*Config) = f.cfg; return nil }
func (f fakeDecoder) Errorf(key, format string, args ...any) error {
	return fmt.Errorf(key+": "+format, args...)
}

// testEnv is a private schema, slot and publication on the test server.
type testEnv struct {
	t      testing.TB
	dsn    string
	schema string
	slot   string
	pub    string
	conn   *pgx.Conn
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	info := servers.Postgres(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, info.DSN)
	if err != nil {
		t.Fatalf("connecting to the test server: %v", err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	e := &testEnv{t: t, dsn: info.DSN, schema: "pgsrc_" + id, slot: "pgsrc_slot_" + id, pub: "pgsrc_pub_" + id, conn: conn}
	e.exec("CREATE SCHEMA " + e.schema)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := dropSlot(ctx, conn, e.slot); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		_, _ = conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+e.pub)
		_, _ = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+e.schema+" CASCADE")
		_ = conn.Close(ctx)
	})
	return e
}

func (e *testEnv) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.conn.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

// config is a source config capturing only the env's schema.
func (e *testEnv) config() Config {
	hb := time.Duration(0)
	return Config{DSN: e.dsn, Slot: e.slot, Publication: e.pub, TopicPrefix: "tp",
		IncludeTables: []string{e.schema + `\..*`}, HeartbeatInterval: &hb}
}

func (e *testEnv) source(cfg Config) *Source {
	e.t.Helper()
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := New(fakeDecoder{cfg}, "pg", log)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *testEnv) open(cfg Config, pos cdc.Position) *Source {
	e.t.Helper()
	s := e.source(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Open(ctx, pos); err != nil {
		_ = s.Close(context.Background())
		e.t.Fatalf("Open: %v", err)
	}
	e.t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// confirmed returns the slot's confirmed_flush_lsn.
func (e *testEnv) confirmed() string {
	e.t.Helper()
	var lsn string
	if err := e.conn.QueryRow(context.Background(), "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", e.slot).Scan(&lsn); err != nil {
		e.t.Fatal(err)
	}
	return lsn
}

// read reads until n records arrived (or fails after d).
func read(t *testing.T, s *Source, n int, d time.Duration) []cdc.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var out []cdc.Record
	for len(out) < n {
		recs, err := s.Read(ctx)
		if err != nil {
			t.Fatalf("Read after %d of %d records: %v", len(out), n, err)
		}
		out = append(out, recs...)
	}
	if len(out) > n {
		t.Fatalf("read %d records, want %d: extra %s", len(out), n, describe(out[n:]))
	}
	return out
}

// readNone checks that nothing arrives within d.
func readNone(t *testing.T, s *Source, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	recs, err := s.Read(ctx)
	if err == nil {
		t.Fatalf("unexpected records: %s", describe(recs))
	}
}

// lastPos is the last non-nil position of recs.
func lastPos(recs []cdc.Record) cdc.Position {
	var p cdc.Position
	for _, r := range recs {
		if r.Position != nil {
			p = r.Position
		}
	}
	return p
}

// value is the encoded envelope of r without the volatile ts_ms.
func value(t *testing.T, r cdc.Record) string {
	t.Helper()
	r.Time = time.Time{}
	v, err := cdc.AppendValue(nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	return string(v)
}

func key(t *testing.T, r cdc.Record) string {
	t.Helper()
	k, err := cdc.AppendKey(nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	return string(k)
}

// row encodes one row as JSON.
func rowJSON(t *testing.T, row cdc.Row) string {
	t.Helper()
	if row == nil {
		return "null"
	}
	k, err := cdc.AppendKey(nil, &cdc.Record{Key: row})
	if err != nil {
		t.Fatal(err)
	}
	return string(k)
}

func describe(recs []cdc.Record) string {
	var b strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&b, "\n  %s %s before=%v after=%v pos=%s", r.Topic, r.Op, r.Before, r.After, r.Position)
	}
	return b.String()
}
