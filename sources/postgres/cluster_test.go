package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/cdc"
)

// cluster is a throwaway PostgreSQL server of the test's own, for settings
// the shared test server must not change (wal_level, WAL retention).
type cluster struct {
	t    *testing.T
	bin  string
	dir  string
	port int
}

// newCluster initialises a cluster with extra postgresql.conf lines. It
// skips when the PostgreSQL server binaries or root (to run them as the
// postgres user) are missing.
func newCluster(t *testing.T, conf string) *cluster {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 || os.Geteuid() != 0 {
		t.Skip("needs the PostgreSQL server binaries (scripts/services.sh start postgres installs them) and root")
	}
	if _, err := exec.LookPath("runuser"); err != nil {
		t.Skip("needs runuser")
	}
	dir, err := os.MkdirTemp("", "pgcluster")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, bin: filepath.Dir(bins[len(bins)-1]), dir: dir}
	t.Cleanup(func() {
		c.pgctl("stop", "-m", "immediate")
		os.RemoveAll(dir)
	})
	if out, err := exec.Command("chown", "postgres", dir).CombinedOutput(); err != nil {
		t.Skipf("chown postgres: %v %s", err, out)
	}
	c.run("initdb", "-D", filepath.Join(dir, "data"), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	c.configure(conf)
	return c
}

func (c *cluster) run(prog string, args ...string) {
	c.t.Helper()
	cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(c.bin, prog)}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("%s %v: %v\n%s", prog, args, err, out)
	}
}

func (c *cluster) pgctl(args ...string) {
	cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(c.bin, "pg_ctl"), "-D", filepath.Join(c.dir, "data"), "-w", "-l", filepath.Join(c.dir, "log")}, args...)...)
	_ = cmd.Run()
}

// configure rewrites the settings and (re)starts the server.
func (c *cluster) configure(conf string) {
	c.t.Helper()
	c.pgctl("stop", "-m", "fast")
	base := fmt.Sprintf("port = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nfsync = off\nmax_wal_senders = 4\nmax_replication_slots = 4\n", c.port, c.dir)
	if err := os.WriteFile(filepath.Join(c.dir, "data", "postgresql.auto.conf"), []byte(base+conf+"\n"), 0o644); err != nil {
		c.t.Fatal(err)
	}
	hba := "local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n"
	if err := os.WriteFile(filepath.Join(c.dir, "data", "pg_hba.conf"), []byte(hba), 0o644); err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(c.bin, "pg_ctl"), "-D", filepath.Join(c.dir, "data"), "-w", "-l", filepath.Join(c.dir, "log"), "start")
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		c.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

func (c *cluster) dsn() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

func (c *cluster) exec(sql string) {
	c.t.Helper()
	conn, err := pgx.Connect(context.Background(), c.dsn())
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		c.t.Fatalf("%s: %v", sql, err)
	}
}

func (c *cluster) open(cfg Config, pos cdc.Position) (*Source, error) {
	s, err := New(fakeDecoder{cfg}, "pg", nil)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Open(ctx, pos); err != nil {
		_ = s.Close(context.Background())
		return nil, err
	}
	return s, nil
}

// TestWALLevelAndInvalidatedSlotErrors starts a server with
// wal_level = replica (the source must refuse, naming the fix), then one
// whose slot loses its WAL (max_slot_wal_keep_size), where resuming must
// fail as invalidated with the recovery, or re-snapshot under when_needed.
func TestWALLevelAndInvalidatedSlotErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server of its own")
	}
	c := newCluster(t, "wal_level = replica")
	hb := time.Duration(0)
	cfg := Config{DSN: c.dsn(), Slot: "inval_slot", Publication: "inval_pub", TopicPrefix: "tp", IncludeTables: []string{`public\..*`}, HeartbeatInterval: &hb, SnapshotMode: SnapshotNever}
	_, err := c.open(cfg, nil)
	if !errors.Is(err, ErrWALLevel) || !cdc.IsTerminal(err) || !strings.Contains(err.Error(), "wal_level = logical") {
		t.Fatalf("wal_level replica: err = %v, want a terminal ErrWALLevel naming the fix", err)
	}

	c.configure("wal_level = logical\nmax_slot_wal_keep_size = 1MB\nmin_wal_size = 32MB\nmax_wal_size = 64MB\nwal_keep_size = 0")
	c.exec("CREATE TABLE t (id int PRIMARY KEY, v text)")
	s, err := c.open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.exec("INSERT INTO t VALUES (1, 'a')")
	recs := read(t, s, 1, 10*time.Second)
	pos := lastPos(recs)
	_ = s.Close(context.Background())
	// Write and switch enough WAL past the slot for a checkpoint to remove
	// segments it still needs.
	for range 6 {
		c.exec("INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1000, 30000) g ON CONFLICT (id) DO UPDATE SET v = excluded.v || 'y'")
		c.exec("SELECT pg_switch_wal()")
		c.exec("CHECKPOINT")
	}
	conn, err := pgx.Connect(context.Background(), c.dsn())
	if err != nil {
		t.Fatal(err)
	}
	var status string
	_ = conn.QueryRow(context.Background(), "SELECT coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = 'inval_slot'").Scan(&status)
	conn.Close(context.Background())
	if status != "lost" {
		t.Skipf("could not invalidate the slot on this server (wal_status %q)", status)
	}
	_, err = c.open(cfg, pos)
	if !errors.Is(err, ErrSlotInvalidated) || !cdc.IsTerminal(err) || !strings.Contains(err.Error(), "when_needed") {
		t.Fatalf("invalidated slot: err = %v, want a terminal ErrSlotInvalidated naming the recovery", err)
	}
	cfg.SnapshotMode = SnapshotWhenNeeded
	s, err = c.open(cfg, pos)
	if err != nil {
		t.Fatalf("when_needed should recover from an invalidated slot: %v", err)
	}
	defer s.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	recs, err = s.Read(ctx)
	if err != nil || len(recs) == 0 {
		t.Fatalf("reading after recovery: %v", err)
	}
	if recs[0].Op != cdc.OpRead {
		t.Fatalf("after recovery the first record is %v, want a snapshot read", recs[0].Op)
	}
}
