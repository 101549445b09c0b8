package mysql

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/integration/servers"
)

// fakeDecoder decodes a prepared Config, standing in for a YAML section.
type fakeDecoder struct{ cfg Config }

func (f fakeDecoder) Decode(out any) error { *out.(*Config) = f.cfg; return nil }
func (f fakeDecoder) Errorf(key, format string, args ...any) error {
	return fmt.Errorf(key+": "+format, args...)
}

// serverIDs hands each test its own replica id.
var serverIDs atomic.Uint32

// Test replica ids start at a random point in 20000-30000, disjoint from
// the integration tests' ids (9000-9999, 40000+).
func init() { serverIDs.Store(20000 + uint32(rand.IntN(1000))*10) }

// testDB is a scratch database on the real MariaDB.
type testDB struct {
	t    testing.TB
	info servers.MySQLInfo
	name string
	conn *client.Conn
}

func newTestDB(t testing.TB) *testDB {
	t.Helper()
	info := servers.MySQL(t)
	conn, err := client.Connect(info.Addr, info.RootUser, info.RootPassword, "")
	if err != nil {
		t.Fatalf("connecting as root: %v", err)
	}
	db := &testDB{t: t, info: info, name: fmt.Sprintf("connectd_test_%d", rand.Uint32()), conn: conn}
	db.exec("CREATE DATABASE " + db.name)
	db.exec("USE " + db.name)
	t.Cleanup(func() {
		_, _ = conn.Execute("DROP DATABASE IF EXISTS " + db.name)
		conn.Close()
	})
	return db
}

func (d *testDB) exec(q string, args ...any) {
	d.t.Helper()
	if _, err := d.conn.Execute(q, args...); err != nil {
		d.t.Fatalf("%s: %v", q, err)
	}
}

// config returns a source config capturing only this database.
func (d *testDB) config() Config {
	host, port, _ := net.SplitHostPort(d.info.Addr)
	p, _ := strconv.Atoi(port)
	hb := 200 * time.Millisecond
	return Config{
		Host: host, Port: p, User: d.info.User, Password: d.info.Password,
		ServerID: serverIDs.Add(1), TopicPrefix: "t", IncludeTables: []string{d.name + `\..*`},
		HeartbeatInterval: &hb,
	}
}

func newSource(t testing.TB, cfg Config) *Source {
	t.Helper()
	s, err := New(fakeDecoder{cfg}, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openSource(t testing.TB, cfg Config, pos cdc.Position) *Source {
	t.Helper()
	s := newSource(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Open(ctx, pos); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// readN reads until n data records (heartbeats excluded) arrived.
func readN(t testing.TB, s *Source, n int) []cdc.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []cdc.Record
	for count(out) < n {
		recs, err := readAck(ctx, s)
		if err != nil {
			t.Fatalf("Read after %d of %d records: %v", count(out), n, err)
		}
		out = append(out, recs...)
	}
	return out
}

func count(recs []cdc.Record) int {
	n := 0
	for _, r := range recs {
		if !isHeartbeat(r) {
			n++
		}
	}
	return n
}

func isHeartbeat(r cdc.Record) bool { return strings.HasPrefix(r.Topic, "__debezium-heartbeat.") }

func dataOnly(recs []cdc.Record) []cdc.Record {
	var out []cdc.Record
	for _, r := range recs {
		if !isHeartbeat(r) {
			out = append(out, r)
		}
	}
	return out
}

// lastPosition is the last non-nil position in recs.
func lastPosition(recs []cdc.Record) cdc.Position {
	var p cdc.Position
	for _, r := range recs {
		if r.Position != nil {
			p = r.Position
		}
	}
	return p
}

func valueJSON(t testing.TB, r cdc.Row) string {
	t.Helper()
	b, err := cdc.AppendValue(nil, &cdc.Record{Op: cdc.OpRead, After: r})
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, `,"source"`)
	return s[len(`{"before":null,"after":`):i]
}

func keyJSON(t testing.TB, r *cdc.Record) string {
	t.Helper()
	b, err := cdc.AppendKey(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// newTestDBConn opens another root connection on db's database.
func newTestDBConn(t testing.TB, db *testDB) *client.Conn {
	t.Helper()
	c, err := client.Connect(db.info.Addr, db.info.RootUser, db.info.RootPassword, db.name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readAck is Read followed by the Ack the runtime would send once the
// batch is stored (immediately here).
func readAck(ctx context.Context, s *Source) ([]cdc.Record, error) {
	recs, err := s.Read(ctx)
	if p := lastPosition(recs); p != nil {
		_ = s.Ack(ctx, p)
	}
	return recs, err
}
