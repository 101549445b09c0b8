package postgres

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/connectd/connectd/cdc"
)

// Backlog shape of the benchmark: 400k inserts, 200k updates and
// 40k deletes (640k change events) behind an existing slot.
const (
	benchInserts = 400_000
	benchUpdates = 200_000
	benchDeletes = 40_000
	benchEvents  = benchInserts + benchUpdates + benchDeletes
)

// BenchmarkBacklog decodes the same backlog three ways: a bare pglogrepl
// receive (parse only), the source (parse, convert, buffer), and the source
// plus the Debezium JSON encoding the runtime does next. The slot is never
// confirmed, so every run reads the whole backlog. Then it snapshots the
// remaining 360k rows.
//
//	go test ./sources/postgres/ -run '^$' -bench Backlog -benchtime 1x
func BenchmarkBacklog(b *testing.B) {
	e := newTestEnv(b)
	ctx := context.Background()
	e.exec("CREATE TABLE " + e.schema + ".bench (id int PRIMARY KEY, name text NOT NULL, qty int, price numeric(10,2), updated timestamptz, note text)")
	e.exec("CREATE PUBLICATION " + e.pub + " FOR TABLE " + e.schema + ".bench")
	var startText string
	if err := e.conn.QueryRow(ctx, "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')", e.slot).Scan(&startText); err != nil {
		b.Fatal(err)
	}
	start, _ := pglogrepl.ParseLSN(startText)
	t0 := time.Now()
	// Many moderate transactions, as an application would write them.
	const txn = 10_000
	for i := 0; i < benchInserts; i += txn {
		e.exec(fmt.Sprintf("INSERT INTO %s.bench SELECT g, 'name-' || g, g %% 1000, (g %% 100000) / 100.0, now(), 'note for row ' || g FROM generate_series(%d, %d) g", e.schema, i+1, i+txn))
	}
	for i := 0; i < benchUpdates; i += txn {
		e.exec(fmt.Sprintf("UPDATE %s.bench SET qty = qty + 1, updated = now() WHERE id BETWEEN %d AND %d", e.schema, i+1, i+txn))
	}
	for i := 0; i < benchDeletes; i += txn {
		e.exec(fmt.Sprintf("DELETE FROM %s.bench WHERE id BETWEEN %d AND %d", e.schema, benchInserts-i-txn+1, benchInserts-i))
	}
	b.Logf("backlog of %d events written in %s", benchEvents, time.Since(t0).Round(time.Millisecond))
	// One untimed pass brings the WAL into the page cache, so the first
	// timed variant is not penalised.
	if _, err := bareReceive(ctx, e.dsn, e.slot, e.pub, start, benchEvents); err != nil {
		b.Fatal(err)
	}

	b.Run("bare-pglogrepl", func(b *testing.B) {
		for b.Loop() {
			t0 := time.Now()
			n, err := bareReceive(ctx, e.dsn, e.slot, e.pub, start, benchEvents)
			if err != nil || n != benchEvents {
				b.Fatalf("received %d: %v", n, err)
			}
			b.ReportMetric(float64(n)/time.Since(t0).Seconds(), "events/s")
		}
	})
	for _, encode := range []bool{false, true} {
		name := "source"
		if encode {
			name = "source+encode"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				cfg := e.config()
				cfg.SnapshotMode = SnapshotNever
				s := e.source(cfg)
				t0 := time.Now()
				if err := s.Open(ctx, streamPosition(start, 0)); err != nil {
					b.Fatal(err)
				}
				n := 0
				var buf []byte
				for n < benchEvents {
					recs, err := s.Read(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if encode {
						for i := range recs {
							buf, _ = cdc.AppendKey(buf[:0], &recs[i])
							buf, _ = cdc.AppendValue(buf[:0], &recs[i])
						}
					}
					n += len(recs)
				}
				b.ReportMetric(float64(n)/time.Since(t0).Seconds(), "events/s")
				_ = s.Close(ctx)
			}
		})
	}
	b.Run("snapshot", func(b *testing.B) {
		rows := benchInserts - benchDeletes
		for b.Loop() {
			cfg := e.config()
			cfg.Slot = e.slot + "_snap"
			s := e.source(cfg)
			t0 := time.Now()
			if err := s.Open(ctx, nil); err != nil {
				b.Fatal(err)
			}
			n := 0
			for n < rows {
				recs, err := s.Read(ctx)
				if err != nil {
					b.Fatal(err)
				}
				n += len(recs)
			}
			b.ReportMetric(float64(n)/time.Since(t0).Seconds(), "rows/s")
			_ = s.Close(ctx)
			if err := dropSlot(ctx, e.conn, cfg.Slot); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Logf("peak RSS of the benchmark process: %s", vmHWM())
}

// bareReceive streams the slot with pglogrepl alone (parse, no value
// conversion) until want changes arrived.
func bareReceive(ctx context.Context, dsn, slot, pub string, start pglogrepl.LSN, want int) (int, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return 0, err
	}
	cfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	err = pglogrepl.StartReplication(ctx, conn, slot, start, pglogrepl.StartReplicationOptions{
		Mode: pglogrepl.LogicalReplication, PluginArgs: []string{"proto_version '1'", "publication_names '" + pub + "'"}})
	if err != nil {
		return 0, err
	}
	n := 0
	for n < want {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			return n, err
		}
		cd, ok := msg.(*pgproto3.CopyData)
		if !ok || len(cd.Data) == 0 || cd.Data[0] != pglogrepl.XLogDataByteID {
			continue
		}
		xld, err := pglogrepl.ParseXLogData(cd.Data[1:])
		if err != nil {
			return n, err
		}
		m, err := pglogrepl.Parse(xld.WALData)
		if err != nil {
			return n, err
		}
		switch m.(type) {
		case *pglogrepl.InsertMessage, *pglogrepl.UpdateMessage, *pglogrepl.DeleteMessage:
			n++
		}
	}
	return n, nil
}

func vmHWM() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
