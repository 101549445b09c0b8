package offsets

import (
	"context"
	"sync"

	"github.com/connectd/connectd/cdc"
)

// Checkpointer tracks batches of records in read order and reports the
// highest position whose batch, and every batch before it, is fully
// acknowledged.
type Checkpointer struct {
	mu          sync.Mutex
	maxInFlight int
	inFlight    int           // records tracked and not yet behind the committed mark
	queue       []*Ticket     // unresolved or not-yet-popped tickets, in read order
	committed   cdc.Position  // highest committable position
	seq         uint64        // bumped each time committed changes
	changed     chan struct{} // closed and replaced whenever the queue shrinks
}

// Ticket stands for one tracked batch of records.
type Ticket struct {
	c         *Checkpointer
	n         int
	remaining int
	pos       cdc.Position
}

// NewCheckpointer returns a Checkpointer that lets at most maxInFlight
// records be tracked before Track blocks. maxInFlight < 1 means 1.
func NewCheckpointer(maxInFlight int) *Checkpointer {
	return &Checkpointer{maxInFlight: max(maxInFlight, 1), changed: make(chan struct{})}
}

// Track registers the next n records (in read order) and pos, the position
// that becomes committable once all of them and everything tracked before
// are acknowledged. pos may be nil: the batch then only has to be
// acknowledged before later positions can commit (records inside a source
// transaction). Track blocks while adding n records would exceed the
// in-flight bound, unless nothing is in flight (so an oversized batch still
// goes through alone). It returns ctx.Err() if ctx ends while waiting.
func (c *Checkpointer) Track(ctx context.Context, n int, pos cdc.Position) (*Ticket, error) {
	c.mu.Lock()
	for c.inFlight > 0 && c.inFlight+n > c.maxInFlight {
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ch:
		}
		c.mu.Lock()
	}
	t := &Ticket{c: c, n: n, remaining: n, pos: pos}
	c.inFlight += n
	c.queue = append(c.queue, t)
	c.advanceLocked()
	c.mu.Unlock()
	return t, nil
}

// Ack acknowledges k records of the ticket's batch. Acknowledging more
// records than the batch holds is a programming error and panics.
func (t *Ticket) Ack(k int) {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if k > t.remaining {
		panic("offsets: ticket acknowledged more records than it tracks")
	}
	t.remaining -= k
	if t.remaining == 0 {
		c.advanceLocked()
	}
}

// advanceLocked pops fully acknowledged tickets from the head of the queue.
func (c *Checkpointer) advanceLocked() {
	popped := 0
	for popped < len(c.queue) && c.queue[popped].remaining == 0 {
		t := c.queue[popped]
		c.inFlight -= t.n
		if t.pos != nil {
			c.committed = t.pos
			c.seq++
		}
		c.queue[popped] = nil
		popped++
	}
	if popped == 0 {
		return
	}
	c.queue = c.queue[popped:]
	close(c.changed)
	c.changed = make(chan struct{})
}

// Committable returns the highest position that may be committed, and a
// sequence number that changes whenever the position does (so a committer
// can skip writing the same position twice). It is nil until the first
// position resolves.
func (c *Checkpointer) Committable() (cdc.Position, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.committed, c.seq
}

// InFlight returns how many tracked records are not yet behind the
// committable mark.
func (c *Checkpointer) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inFlight
}

// Drain waits until every tracked record is acknowledged, or ctx ends.
func (c *Checkpointer) Drain(ctx context.Context) error {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.mu.Unlock()
			return nil
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}
