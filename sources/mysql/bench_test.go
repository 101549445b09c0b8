package mysql

import (
	"context"
	"fmt"
	"github.com/connectd/connectd/internal/benchutil"
	"github.com/connectd/connectd/sources/mysql/mysqltest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/connectd/connectd/cdc"
)

// benchEvents is the backlog size: MYSQL_BENCH_EVENTS (default 64000; the
// issue's figure is 640000), split 62.5% inserts, 31.25% updates, 6.25%
// deletes as 400k/200k/40k.
func benchEvents() int {
	if n, err := strconv.Atoi(os.Getenv("MYSQL_BENCH_EVENTS")); err == nil && n > 0 {
		return n
	}
	return 64000
}

// writeBacklog fills a ~300-byte-row table with inserts, updates and
// deletes (100 rows per transaction) and returns the binlog range.
func writeBacklog(b *testing.B, db *testDB, events int) (from, to position) {
	b.Helper()
	db.exec(`CREATE TABLE bench (id INT PRIMARY KEY, name VARCHAR(64), qty INT, price DECIMAL(10,2),
		created DATETIME(6), status ENUM('new','active','gone'), payload VARCHAR(255))`)
	from, err := currentPosition(db.conn, gomysql.MariaDBFlavor)
	if err != nil {
		b.Fatal(err)
	}
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
		db.exec(sb.String())
	}
	for i := 0; i < updates; i += per {
		db.exec("UPDATE bench SET qty = qty + 1, status = 'new' WHERE id >= ? AND id < ?", i, min(i+per, updates))
	}
	for i := 0; i < deletes; i += per {
		db.exec("DELETE FROM bench WHERE id >= ? AND id < ?", inserts-deletes+i, inserts-deletes+min(i+per, deletes))
	}
	to, err = currentPosition(db.conn, gomysql.MariaDBFlavor)
	if err != nil {
		b.Fatal(err)
	}
	return from, to
}

// BenchmarkBacklog measures catching up a backlog of row events: the
// source's rate (records out of Read, values converted) next to a bare
// BinlogSyncer decoding the same range.
//
//	go test ./sources/mysql -run '^$' -bench Backlog -benchtime 1x
func BenchmarkBacklog(b *testing.B) {
	db := newTestDB(b)
	events := benchEvents()
	from, to := writeBacklog(b, db, events)
	b.Logf("backlog: %d events from %s:%d to %s:%d", events, from.File, from.Pos, to.File, to.Pos)

	b.Run("bare-syncer", func(b *testing.B) {
		for range b.N {
			start := time.Now()
			cfg := db.config()
			rows, err := mysqltest.BareDecode(context.Background(), replication.BinlogSyncerConfig{
				ServerID: cfg.ServerID, Flavor: gomysql.MariaDBFlavor, Host: cfg.Host, Port: uint16(cfg.Port),
				User: cfg.User, Password: cfg.Password, TimestampStringLocation: time.UTC,
				Logger: newSource(b, cfg).warnLogger(),
			}, gomysql.Position{Name: from.File, Pos: from.Pos}, gomysql.Position{Name: to.File, Pos: to.Pos})
			if err != nil {
				b.Fatal(err)
			}
			d := time.Since(start)
			if rows != events {
				b.Fatalf("decoded %d row changes, want %d", rows, events)
			}
			b.ReportMetric(float64(rows)/d.Seconds(), "events/s")
		}
	})

	b.Run("source", func(b *testing.B) {
		for range b.N {
			start := time.Now()
			cfg := db.config()
			s := openSource(b, cfg, from.encode())
			got := 0
			ctx := context.Background()
			for got < events {
				recs, err := readAck(ctx, s)
				if err != nil {
					b.Fatal(err)
				}
				for i := range recs {
					if !isHeartbeat(recs[i]) {
						got++
					}
				}
			}
			d := time.Since(start)
			_ = s.Close(ctx)
			b.ReportMetric(float64(got)/d.Seconds(), "events/s")
			b.ReportMetric(benchutil.PeakRSSMB(0), "peakRSS-MB")
		}
	})
}

// BenchmarkSnapshot measures the snapshot of MYSQL_BENCH_ROWS rows
// (default 200000; the figure is 1000000).
//
//	go test ./sources/mysql -run '^$' -bench Snapshot -benchtime 1x
func BenchmarkSnapshot(b *testing.B) {
	rows := 200000
	if n, err := strconv.Atoi(os.Getenv("MYSQL_BENCH_ROWS")); err == nil && n > 0 {
		rows = n
	}
	db := newTestDB(b)
	db.exec(`CREATE TABLE snap (id INT PRIMARY KEY, name VARCHAR(64), qty INT, price DECIMAL(10,2),
		created DATETIME(6), status ENUM('new','active','gone'), payload VARCHAR(255))`)
	for i := 0; i < rows; i += 2000 {
		var sb strings.Builder
		sb.WriteString("INSERT INTO snap VALUES ")
		for j := i; j < min(i+2000, rows); j++ {
			if j > i {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, "(%d,'name-%d',%d,%d.%02d,'2024-05-06 07:08:09.%06d','active',REPEAT('x',200))", j, j, j%997, j%100000, j%100, j%999999)
		}
		db.exec(sb.String())
	}
	runtime.GC()
	for range b.N {
		start := time.Now()
		s := openSource(b, db.config(), nil)
		got := 0
		ctx := context.Background()
		for got < rows {
			recs, err := readAck(ctx, s)
			if err != nil {
				b.Fatal(err)
			}
			for i := range recs {
				if recs[i].Op == cdc.OpRead {
					got++
				}
			}
		}
		d := time.Since(start)
		_ = s.Close(ctx)
		b.ReportMetric(float64(got)/d.Seconds(), "rows/s")
	}
}
