package generator

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/cdc"
)

// fakeDecoder decodes a prepared Config, standing in for a YAML section.
type fakeDecoder struct{ cfg Config }

func (f fakeDecoder) Decode(out any) error { *out.(*Config) = f.cfg; return nil }
func (f fakeDecoder) Errorf(key, format string, args ...any) error {
	return fmt.Errorf(key+": "+format, args...)
}

func readAll(t *testing.T, s *Source, n int) []cdc.Record {
	t.Helper()
	var out []cdc.Record
	for len(out) < n {
		recs, err := s.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, recs...)
	}
	return out
}

func encode(t *testing.T, recs []cdc.Record) []string {
	t.Helper()
	out := make([]string, len(recs))
	for i := range recs {
		recs[i].Time = time.Time{}
		k, _ := cdc.AppendKey(nil, &recs[i])
		v, err := cdc.AppendValue(nil, &recs[i])
		if err != nil {
			t.Fatal(err)
		}
		out[i] = recs[i].Topic + " " + string(k) + " " + string(v) + " " + string(recs[i].Position)
	}
	return out
}

func TestDeterministicAndResumable(t *testing.T) {
	t.Parallel()
	cfg := Config{TopicPrefix: "demo", Tables: []string{"inv.items", "inv.orders"}, Keys: 50, Total: 3000, Seed: 7, BatchSize: 128}
	a := newSource(cfg, "g")
	if err := a.Open(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	all := encode(t, readAll(t, a, 3000))

	// Resume at every kind of position: the tail must be identical.
	for _, at := range []uint64{1, 999, 2048, 2999} {
		b := newSource(cfg, "g")
		if err := b.Open(context.Background(), cdc.Position(fmt.Sprintf(`{"seq":%d}`, at))); err != nil {
			t.Fatal(err)
		}
		tail := encode(t, readAll(t, b, int(3000-at)))
		for i := range tail {
			if tail[i] != all[int(at)+i] {
				t.Fatalf("resumed at %d: event %d differs\n got %s\nwant %s", at, int(at)+i, tail[i], all[int(at)+i])
			}
		}
	}
}

func TestEventsAreConsistentChanges(t *testing.T) {
	t.Parallel()
	cfg := Config{TopicPrefix: "demo", Keys: 20, Total: 2000}
	s := newSource(cfg, "g")
	_ = s.Open(context.Background(), nil)
	recs := readAll(t, s, 2000)
	type state struct {
		exists  bool
		version int64
		after   string
	}
	keys := map[int64]*state{}
	ops := map[cdc.Op]int{}
	for _, r := range recs {
		id := r.Key.Value("id").(int64)
		st := keys[id]
		if st == nil {
			st = &state{}
			keys[id] = st
		}
		ops[r.Op]++
		before, _ := cdc.AppendValue(nil, &cdc.Record{Op: cdc.OpRead, After: r.Before})
		switch r.Op {
		case cdc.OpCreate:
			if st.exists || r.Before != nil {
				t.Fatalf("create of existing key %d", id)
			}
		case cdc.OpUpdate, cdc.OpDelete:
			if !st.exists || string(before) != st.after {
				t.Fatalf("%v of key %d: before image does not match the last after image", r.Op, id)
			}
		}
		if r.After != nil {
			ver := r.After.Value("version").(int64)
			if ver <= st.version {
				t.Fatalf("key %d: version went from %d to %d", id, st.version, ver)
			}
			st.version = ver
			b, _ := cdc.AppendValue(nil, &cdc.Record{Op: cdc.OpRead, After: r.After})
			st.after = string(b)
		}
		st.exists = r.Op != cdc.OpDelete
	}
	if ops[cdc.OpCreate] == 0 || ops[cdc.OpUpdate] == 0 || ops[cdc.OpDelete] == 0 {
		t.Fatalf("want inserts, updates and deletes, got %v", ops)
	}
}

func TestTransactionsOnlyCommitAtTheirEnd(t *testing.T) {
	t.Parallel()
	s := newSource(Config{TopicPrefix: "demo", Total: 100, TxnSize: 7}, "g")
	_ = s.Open(context.Background(), nil)
	recs := readAll(t, s, 100)
	for i, r := range recs {
		end := (i+1)%7 == 0 || i == 99
		if (r.Position != nil) != end {
			t.Fatalf("event %d: position %q, want one only at transaction ends", i, r.Position)
		}
		if r.Transaction == nil || r.Transaction.ID != fmt.Sprintf("gen-%d", i/7) {
			t.Fatalf("event %d: transaction %+v", i, r.Transaction)
		}
	}
}

func TestRatePacing(t *testing.T) {
	t.Parallel()
	s := newSource(Config{TopicPrefix: "demo", Rate: 1000, BatchSize: 10_000}, "g")
	clock := time.Unix(0, 0)
	s.now = func() time.Time { return clock }
	_ = s.Open(context.Background(), nil)
	clock = clock.Add(250 * time.Millisecond)
	recs, err := s.Read(context.Background())
	if err != nil || len(recs) != 250 {
		t.Fatalf("after 250ms at 1000/s got %d events, %v; want 250", len(recs), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if recs, err := s.Read(ctx); err == nil {
		t.Fatalf("no time passed but got %d more events", len(recs))
	}
}

func TestStopsAtTotal(t *testing.T) {
	t.Parallel()
	s := newSource(Config{TopicPrefix: "demo", Total: 5}, "g")
	_ = s.Open(context.Background(), nil)
	if recs := readAll(t, s, 5); len(recs) != 5 || string(recs[4].Position) != `{"seq":5}` {
		t.Fatalf("got %d records, last position %s", len(recs), recs[len(recs)-1].Position)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := s.Read(ctx); err == nil {
		t.Fatal("Read after total returned without waiting for ctx")
	}
}

func TestReplayMatchesSource(t *testing.T) {
	t.Parallel()
	cfg := Config{TopicPrefix: "demo", Keys: 30, Total: 500}
	s := newSource(cfg, "g")
	_ = s.Open(context.Background(), nil)
	want := encode(t, readAll(t, s, 500))
	var got []cdc.Record
	Replay(cfg, 500, func(r cdc.Record) { got = append(got, r) })
	for i, g := range encode(t, got) {
		if g != want[i] {
			t.Fatalf("event %d differs", i)
		}
	}
}

func TestEventSize(t *testing.T) {
	t.Parallel()
	s := newSource(Config{TopicPrefix: "demo", Total: 1000}, "g")
	_ = s.Open(context.Background(), nil)
	total := 0
	for _, e := range encode(t, readAll(t, s, 1000)) {
		total += len(e)
	}
	if avg := total / 1000; avg < 250 || avg > 800 {
		t.Fatalf("average encoded event is %d bytes; the default should be a few hundred", avg)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no prefix", Config{}, "topic_prefix is required"},
		{"bad table", Config{TopicPrefix: "d", Tables: []string{"items"}}, `tables[0] "items": write tables as db.table`},
		{"negative rate", Config{TopicPrefix: "d", Rate: -1}, "rate must be >= 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(fakeDecoder{tc.cfg}, "g")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func BenchmarkRead(b *testing.B) {
	s := newSource(Config{TopicPrefix: "demo", Keys: 100_000}, "g")
	_ = s.Open(context.Background(), nil)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = s.Read(context.Background())
	}
}
