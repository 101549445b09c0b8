package offsets

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/connectd/connectd/cdc"
)

func pos(i int) cdc.Position { return cdc.Position(fmt.Sprintf(`{"i":%d}`, i)) }

func TestOutOfOrderAcksNeverCommitPastAGap(t *testing.T) {
	t.Parallel()
	c := NewCheckpointer(100)
	ctx := context.Background()
	var ts []*Ticket
	for i := range 5 {
		tk, err := c.Track(ctx, 2, pos(i))
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tk)
	}
	check := func(want cdc.Position) {
		t.Helper()
		if got, _ := c.Committable(); string(got) != string(want) {
			t.Fatalf("committable = %s, want %s", got, want)
		}
	}
	ts[2].Ack(2)
	ts[1].Ack(2)
	check(nil) // batch 0 still open: nothing may commit
	ts[0].Ack(1)
	check(nil) // half of batch 0 is not enough
	ts[0].Ack(1)
	check(pos(2)) // 0, 1, 2 done
	ts[4].Ack(2)
	check(pos(2)) // 3 is a gap
	ts[3].Ack(2)
	check(pos(4))
	if n := c.InFlight(); n != 0 {
		t.Fatalf("in flight = %d, want 0", n)
	}
}

func TestNilPositionsWaitForTheTransactionEnd(t *testing.T) {
	t.Parallel()
	c := NewCheckpointer(100)
	ctx := context.Background()
	a, _ := c.Track(ctx, 1, pos(1))
	b, _ := c.Track(ctx, 3, nil) // mid-transaction
	d, _ := c.Track(ctx, 1, pos(2))
	a.Ack(1)
	d.Ack(1)
	if got, _ := c.Committable(); string(got) != string(pos(1)) {
		t.Fatalf("committable = %s, want %s", got, pos(1))
	}
	b.Ack(3)
	if got, _ := c.Committable(); string(got) != string(pos(2)) {
		t.Fatalf("committable = %s, want %s", got, pos(2))
	}
}

func TestInFlightBoundBlocksTheSource(t *testing.T) {
	t.Parallel()
	c := NewCheckpointer(10)
	ctx := context.Background()
	first, _ := c.Track(ctx, 8, pos(1))
	tracked := make(chan *Ticket)
	go func() {
		tk, err := c.Track(ctx, 5, pos(2)) // 8+5 > 10: must wait
		if err != nil {
			t.Error(err)
		}
		tracked <- tk
	}()
	select {
	case <-tracked:
		t.Fatal("Track did not block at the in-flight bound")
	case <-time.After(50 * time.Millisecond):
	}
	first.Ack(8)
	select {
	case tk := <-tracked:
		tk.Ack(5)
	case <-time.After(5 * time.Second):
		t.Fatal("Track stayed blocked after room was made")
	}
	// An oversized batch still goes through alone.
	if _, err := c.Track(ctx, 50, pos(3)); err != nil {
		t.Fatal(err)
	}
	// And a blocked Track gives up with its context.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := c.Track(cctx, 1, pos(4)); err == nil {
		t.Fatal("Track returned without room or cancellation")
	}
}

func TestRandomAckOrderCommitsEverythingInOrder(t *testing.T) {
	t.Parallel()
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		c := NewCheckpointer(1 << 20)
		ctx := context.Background()
		n := 200
		var ts []*Ticket
		for i := range n {
			var p cdc.Position
			if rng.IntN(3) > 0 {
				p = pos(i)
			}
			tk, _ := c.Track(ctx, 1, p)
			ts = append(ts, tk)
		}
		acked := make([]bool, n)
		lastSeq := uint64(0)
		lastI := -1
		for _, i := range rng.Perm(n) {
			ts[i].Ack(1)
			acked[i] = true
			p, seq := c.Committable()
			if seq == lastSeq {
				continue
			}
			lastSeq = seq
			var got int
			fmt.Sscanf(string(p), `{"i":%d}`, &got)
			if got < lastI {
				t.Fatalf("seed %d: committable went backwards from %d to %d", seed, lastI, got)
			}
			for j := 0; j <= got; j++ {
				if !acked[j] {
					t.Fatalf("seed %d: committed %d while %d is unacknowledged", seed, got, j)
				}
			}
			lastI = got
		}
		if err := c.Drain(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func BenchmarkTrackAck(b *testing.B) {
	c := NewCheckpointer(1 << 20)
	ctx := context.Background()
	p := pos(1)
	for b.Loop() {
		tk, _ := c.Track(ctx, 1, p)
		tk.Ack(1)
	}
}
