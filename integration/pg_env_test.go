package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/integration/servers"
)

// pgEnv gives a test its own schemas, replication slot and publication on
// the shared PostgreSQL server, and drops them all when the test ends.
type pgEnv struct {
	t       *testing.T
	conn    *pgx.Conn
	dsn     string
	slot    string
	pub     string
	id      string
	schemas []string
}

func newPGEnv(t *testing.T, prefix string) *pgEnv {
	t.Helper()
	pg := servers.Postgres(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	e := &pgEnv{t: t, conn: conn, dsn: pg.DSN, id: hex.EncodeToString(b[:])}
	e.slot, e.pub = prefix+"_slot_"+e.id, prefix+"_pub_"+e.id
	t.Cleanup(func() {
		for range 50 {
			_, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", e.slot)
			if err == nil || !strings.Contains(err.Error(), "is active") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		_, _ = conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+e.pub)
		for _, s := range e.schemas {
			_, _ = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+s+" CASCADE")
		}
		_ = conn.Close(ctx)
	})
	return e
}

// schema creates a schema named <name>_<id> and returns its name.
func (e *pgEnv) schema(name string) string {
	e.t.Helper()
	s := name + "_" + e.id
	e.exec("CREATE SCHEMA " + s)
	e.schemas = append(e.schemas, s)
	return s
}

func (e *pgEnv) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.conn.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}
