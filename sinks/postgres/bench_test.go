package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/sources/generator"
)

// BenchmarkWrite applies 64,000 generator change events (inserts, updates,
// deletes; ~300-byte rows) in batches of 2,000 and reports events/s, next
// to a raw COPY of the same number of rows into a bare table (rows/s).
//
//	go test -run x -bench Write -benchtime 3x ./sinks/postgres/
func BenchmarkWrite(b *testing.B) {
	const events = 64_000
	for b.Loop() {
		b.StopTimer()
		f := newFixtureB(b)
		var msgs []cdc.Message
		generator.Replay(generator.Config{TopicPrefix: "bench", Keys: 40_000, Total: events}, events, func(r cdc.Record) {
			msgs = append(msgs, f.msg(r, false))
		})
		b.StartTimer()
		start := time.Now()
		for i := 0; i < len(msgs); i += 2000 {
			end := min(i+2000, len(msgs))
			if _, err := f.sink.Write(context.Background(), msgs[i:end]); err != nil {
				b.Fatal(err)
			}
		}
		sinkRate := float64(len(msgs)) / time.Since(start).Seconds()
		b.StopTimer()
		copyRate := rawCopy(b, f, msgs)
		b.ReportMetric(sinkRate, "events/s")
		b.ReportMetric(copyRate, "copy-rows/s")
		b.ReportMetric(sinkRate/copyRate, "ratio")
		b.StartTimer()
	}
}

func rawCopy(b *testing.B, f *fixture, msgs []cdc.Message) float64 {
	ctx := context.Background()
	if _, err := f.conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s.raw (id bigint, name text, qty bigint, price text, status text, version bigint, payload text)", f.schema)); err != nil {
		b.Fatal(err)
	}
	rows := make([][]any, 0, len(msgs))
	for _, m := range msgs {
		if m.Value == nil {
			continue
		}
		rec, _ := m.Decode()
		img := rec.After
		if img == nil {
			img = rec.Before
		}
		row := make([]any, 0, 7)
		for _, fl := range img {
			s, _, _ := text(&fl, "")
			row = append(row, s)
		}
		rows = append(rows, row)
	}
	start := time.Now()
	_, err := f.conn.CopyFrom(ctx, pgx.Identifier{f.schema, "raw"}, []string{"id", "name", "qty", "price", "status", "version", "payload"}, pgx.CopyFromRows(rows))
	if err != nil {
		b.Fatal(err)
	}
	return float64(len(rows)) / time.Since(start).Seconds()
}
