package integration

import (
	"context"
	"fmt"
	"github.com/connectd/connectd/internal/benchutil"
	"github.com/connectd/connectd/sources/mysql/mysqltest"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/segmentio/kafka-go"

	"github.com/connectd/connectd/integration/servers"
	"github.com/connectd/connectd/internal/kafkatest"
	"github.com/connectd/connectd/internal/kafkautil"
)

// BenchmarkMySQLBacklogToKafka is the backlog benchmark: a backlog
// of inserts, updates and deletes (400k/200k/40k by default; scale with
// MYSQL_BENCH_EVENTS) already in the binlog, connectd started from before
// it, timed until every event (and each delete's tombstone) is in Kafka.
// Beside it: a bare BinlogSyncer decoding the same binlog range.
//
//	go test ./integration -run '^$' -bench MySQLBacklog -benchtime 1x
func BenchmarkMySQLBacklogToKafka(b *testing.B) {
	info := servers.MySQL(b)
	events := 640000
	if n, err := strconv.Atoi(os.Getenv("MYSQL_BENCH_EVENTS")); err == nil && n > 0 {
		events = n
	}
	root, err := client.Connect(info.Addr, info.RootUser, info.RootPassword, "")
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	dbName := fmt.Sprintf("connectd_test_bench_%d", rand.Uint32())
	exec := func(q string, args ...any) {
		if _, err := root.Execute(q, args...); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE DATABASE " + dbName)
	b.Cleanup(func() { _, _ = root.Execute("DROP DATABASE IF EXISTS " + dbName) })
	exec("USE " + dbName)
	exec(`CREATE TABLE bench (id INT PRIMARY KEY, name VARCHAR(64), qty INT, price DECIMAL(10,2),
		created DATETIME(6), status ENUM('new','active','gone'), payload VARCHAR(255))`)
	exec("INSERT INTO bench VALUES (-1, 'marker', 0, 0, NOW(6), 'new', '')")

	dir := b.TempDir()
	broker := kafkatest.StartProcess(b, connectdBin, filepath.Join(dir, "broker"), "127.0.0.1:0")
	host, port, _ := net.SplitHostPort(info.Addr)
	topic := "bench." + dbName + ".bench"
	config := filepath.Join(dir, "pipeline.yaml")
	serverID := 40000 + rand.IntN(1000)
	yaml := fmt.Sprintf(`kafka: {brokers: [%q], topic_partitions: 4}
worker: {data_dir: %s/data, http: "off", offset_flush_interval: 200ms}
sources:
  - name: bench
    type: mysql
    config: {host: %s, port: %s, user: %s, password: %s, server_id: %d, topic_prefix: bench, include_tables: ['%s\.bench']}
`, broker.Addr, dir, host, port, info.User, info.Password, serverID, dbName)
	if err := os.WriteFile(config, []byte(yaml), 0o644); err != nil {
		b.Fatal(err)
	}
	conn := kafkatest.Conn(broker.Addr)
	inKafka := func() int64 {
		kc := conn.Client()
		parts, err := kafkautil.Partitions(context.Background(), kc, topic)
		if err != nil {
			return 0
		}
		req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
		for _, p := range parts {
			req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p))
		}
		offs, err := kc.ListOffsets(context.Background(), req)
		if err != nil {
			return 0
		}
		var n int64
		for _, po := range offs.Topics[topic] {
			n += po.LastOffset
		}
		return n
	}

	// Snapshot the marker row and stop: the stored position is now before
	// the backlog.
	p := runConnectd(b, config)
	mysqlWaitB(b, "marker in Kafka", 60*time.Second, func() bool { return inKafka() >= 1 })
	time.Sleep(500 * time.Millisecond)
	if code := p.mysqlStopB(b, syscall.SIGTERM, 15*time.Second); code != 0 {
		b.Fatalf("exit %d:\n%s", code, p.stderr)
	}

	from := mysqlMasterStatus(b, root)
	inserts, updates := events*400/640, events*200/640
	deletes := events - inserts - updates
	const per = 1000
	for i := 0; i < inserts; i += per {
		var sb strings.Builder
		sb.WriteString("INSERT INTO bench VALUES ")
		for j := i; j < min(i+per, inserts); j++ {
			if j > i {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, "(%d,'name-%d',%d,%d.%02d,'2024-05-06 07:08:09.%06d','active',REPEAT('x',200))", j, j, j%997, j%100000, j%100, j%999999)
		}
		exec(sb.String())
	}
	for i := 0; i < updates; i += per {
		exec("UPDATE bench SET qty = qty + 1, status = 'new' WHERE id >= ? AND id < ?", i, min(i+per, updates))
	}
	for i := 0; i < deletes; i += per {
		exec("DELETE FROM bench WHERE id >= ? AND id < ?", inserts-deletes+i, inserts-deletes+min(i+per, deletes))
	}
	to := mysqlMasterStatus(b, root)
	want := int64(1 + events + deletes) // marker, events, tombstones

	b.ResetTimer()
	for range b.N {
		start := time.Now()
		p = runConnectd(b, config)
		mysqlWaitB(b, "backlog in Kafka", 300*time.Second, func() bool { return inKafka() >= want })
		d := time.Since(start)
		rss := benchutil.PeakRSSMB(p.cmd.Process.Pid)
		p.mysqlStopB(b, syscall.SIGTERM, 15*time.Second)
		b.ReportMetric(float64(events)/d.Seconds(), "events/s")
		b.ReportMetric(rss, "connectd-peakRSS-MB")
	}
	b.StopTimer()

	// The same binlog range through a bare BinlogSyncer.
	start := time.Now()
	p2, _ := strconv.Atoi(port)
	rows, err := mysqltest.BareDecode(context.Background(), replication.BinlogSyncerConfig{
		ServerID: uint32(serverID + 1), Flavor: gomysql.MariaDBFlavor, Host: host, Port: uint16(p2),
		User: info.User, Password: info.Password,
	}, from, to)
	if err != nil {
		b.Fatal(err)
	}
	bare := float64(rows) / time.Since(start).Seconds()
	b.ReportMetric(bare, "bare-syncer-events/s")
}

func mysqlMasterStatus(b *testing.B, c *client.Conn) gomysql.Position {
	b.Helper()
	r, err := c.Execute("SHOW MASTER STATUS")
	if err != nil {
		b.Fatal(err)
	}
	f, _ := r.GetString(0, 0)
	p, _ := r.GetUint(0, 1)
	return gomysql.Position{Name: f, Pos: uint32(p)}
}

func mysqlWaitB(b *testing.B, what string, d time.Duration, ok func() bool) {
	b.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			b.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *proc) mysqlStopB(b *testing.B, sig syscall.Signal, d time.Duration) int {
	b.Helper()
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.done
		b.Fatalf("connectd did not exit within %s", d)
		return -1
	}
}
