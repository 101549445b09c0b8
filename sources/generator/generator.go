package generator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/connectd/connectd/cdc"
)

// Config is the generator's `config:` block.
type Config struct {
	// TopicPrefix starts every topic name: <topic_prefix>.<db>.<table>.
	TopicPrefix string `yaml:"topic_prefix"`
	// Tables are "db.table" names (default ["inventory.items"]).
	Tables []string `yaml:"tables"`
	// Keys is the number of distinct primary keys per table (default 1000).
	Keys int64 `yaml:"keys"`
	// Total is the number of events to emit; 0 emits forever.
	Total uint64 `yaml:"total"`
	// Rate caps events per second; 0 is unbounded.
	Rate float64 `yaml:"rate"`
	// Seed selects the sequence (default 1).
	Seed uint64 `yaml:"seed"`
	// BatchSize is the most events one Read returns (default 1000).
	BatchSize int `yaml:"batch_size"`
	// TxnSize groups events into transactions of this many; positions are
	// only committable at transaction ends (default 1: no transactions).
	TxnSize uint64 `yaml:"txn_size"`
	// PayloadBytes is the length of a filler column that sets the event
	// size (default 120).
	PayloadBytes int `yaml:"payload_bytes"`
}

func (c *Config) defaults() {
	if len(c.Tables) == 0 {
		c.Tables = []string{"inventory.items"}
	}
	if c.Keys == 0 {
		c.Keys = 1000
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.TxnSize == 0 {
		c.TxnSize = 1
	}
	if c.PayloadBytes == 0 {
		c.PayloadBytes = 120
	}
}

// Source is the generator source.
type Source struct {
	cfg    Config
	name   string
	tables []table
	state  []map[int64]*keyState
	next   uint64 // index of the next event
	start  time.Time
	sent   uint64 // events sent since Open, for rate pacing
	now    func() time.Time
	types  columnTypes
	pad    string // filler text that payload columns are cut from
}

type table struct{ db, name, topic string }

type keyState struct {
	version uint64
	exists  bool
}

// position is the generator's offset: the index of the next event.
type position struct {
	Seq uint64 `json:"seq"`
}

// New builds a generator from its config block.
func New(dec cdc.ConfigDecoder, name string) (*Source, error) {
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		return nil, err
	}
	var errs []error
	if cfg.TopicPrefix == "" {
		errs = append(errs, dec.Errorf("topic_prefix", "topic_prefix is required; it starts every topic name, e.g. topic_prefix: demo"))
	}
	for i, t := range cfg.Tables {
		if db, tb, ok := strings.Cut(t, "."); !ok || db == "" || tb == "" || strings.Contains(tb, ".") {
			errs = append(errs, dec.Errorf("tables", "tables[%d] %q: write tables as db.table, e.g. inventory.items", i, t))
		}
	}
	if cfg.Keys < 0 {
		errs = append(errs, dec.Errorf("keys", "keys must be > 0"))
	}
	if cfg.Rate < 0 {
		errs = append(errs, dec.Errorf("rate", "rate must be >= 0 (0 is unbounded)"))
	}
	if cfg.BatchSize < 0 {
		errs = append(errs, dec.Errorf("batch_size", "batch_size must be > 0"))
	}
	if cfg.PayloadBytes < 0 {
		errs = append(errs, dec.Errorf("payload_bytes", "payload_bytes must be >= 0"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return newSource(cfg, name), nil
}

func newSource(cfg Config, name string) *Source {
	cfg.defaults()
	s := &Source{cfg: cfg, name: name, now: time.Now, types: newColumnTypes()}
	s.pad = strings.Repeat(filler, (cfg.PayloadBytes+2*len(filler))/len(filler))
	for _, t := range cfg.Tables {
		db, tb, _ := strings.Cut(t, ".")
		s.tables = append(s.tables, table{db: db, name: tb, topic: cfg.TopicPrefix + "." + db + "." + tb})
		s.state = append(s.state, map[int64]*keyState{})
	}
	return s
}

// ServerName keys the generator's offsets by its topic prefix.
func (s *Source) ServerName() string { return s.cfg.TopicPrefix }

// Open resumes after pos by replaying the events before it (cheap: no
// records are built).
func (s *Source) Open(_ context.Context, pos cdc.Position) error {
	if pos != nil {
		var p position
		if err := json.Unmarshal(pos, &p); err != nil {
			return cdc.Terminal(fmt.Errorf("reading generator position %s: %w", pos, err))
		}
		for s.next < p.Seq {
			s.step(nil)
		}
	}
	s.start = s.now()
	return nil
}

// Read returns the next batch of events, paced to the configured rate.
// Once Total events were emitted it blocks until ctx is done.
func (s *Source) Read(ctx context.Context) ([]cdc.Record, error) {
	n := uint64(s.cfg.BatchSize)
	if s.cfg.Total > 0 {
		if s.next >= s.cfg.Total {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		n = min(n, s.cfg.Total-s.next)
	}
	if s.cfg.Rate > 0 {
		for {
			elapsed := s.now().Sub(s.start)
			if allowed := uint64(s.cfg.Rate * elapsed.Seconds()); allowed > s.sent {
				n = min(n, allowed-s.sent)
				break
			}
			wait := time.Duration(float64(s.sent+1)/s.cfg.Rate*float64(time.Second)) - elapsed
			t := time.NewTimer(max(min(wait, 100*time.Millisecond), time.Millisecond))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
		}
	}
	recs := make([]cdc.Record, 0, n)
	for range n {
		s.step(&recs)
	}
	s.sent += n
	return recs, nil
}

// Ack needs no action: the generator holds no server-side state.
func (s *Source) Ack(context.Context, cdc.Position) error { return nil }

// Close releases nothing.
func (s *Source) Close(context.Context) error { return nil }

// splitmix64 is a fast, well-mixed hash of the event index.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// baseTime is the source commit time of event 0 (2024-01-01T00:00:00Z in
// milliseconds); event i commits i ms later, so replays produce identical
// events.
const baseTime = 1704067200000

// step advances the model by one event, appending its record to out when
// out is non-nil.
func (s *Source) step(out *[]cdc.Record) {
	i := s.next
	s.next++
	h := splitmix64(s.cfg.Seed*0x100000001b3 ^ i)
	ti := int(h % uint64(len(s.tables)))
	key := 1 + int64((h>>16)%uint64(s.cfg.Keys))
	st := s.state[ti][key]
	if st == nil {
		st = &keyState{}
		s.state[ti][key] = st
	}
	var op cdc.Op
	switch {
	case !st.exists:
		op = cdc.OpCreate
	case (h>>40)%100 < 80:
		op = cdc.OpUpdate
	default:
		op = cdc.OpDelete
	}
	prev := st.version
	st.version++
	st.exists = op != cdc.OpDelete
	if out == nil {
		return
	}
	t := &s.tables[ti]
	rec := cdc.Record{
		Topic: t.topic,
		Op:    op,
		Key:   cdc.Row{{Name: "id", Type: s.types.ID, Value: key}},
		Source: cdc.SourceInfo{
			Version: "connectd", Connector: "generator", Name: s.cfg.TopicPrefix,
			TsMs: baseTime + int64(i), DB: t.db, Table: t.name,
			Extra: cdc.Row{{Name: "seq", Type: s.types.Seq, Value: int64(i)}},
		},
	}
	if op != cdc.OpCreate {
		rec.Before = s.row(ti, key, prev)
	}
	if op != cdc.OpDelete {
		rec.After = s.row(ti, key, st.version)
	}
	txn := s.cfg.TxnSize
	if txn > 1 {
		rec.Transaction = &cdc.Transaction{ID: "gen-" + strconv.FormatUint(i/txn, 10), TotalOrder: int64(i%txn) + 1, DataCollectionOrder: int64(i%txn) + 1}
	}
	if (i+1)%txn == 0 || i+1 == s.cfg.Total {
		rec.Position = cdc.Position(`{"seq":` + strconv.FormatUint(i+1, 10) + `}`)
	}
	*out = append(*out, rec)
}

// columnTypes are the types of generated columns.
type columnTypes struct {
	ID, Seq, Name, Qty, Price, Status, Version, Payload *cdc.Type
}

func newColumnTypes() columnTypes {
	return columnTypes{
		ID:      &cdc.Type{Kind: cdc.KindInt64, SourceType: "BIGINT"},
		Seq:     &cdc.Type{Kind: cdc.KindInt64},
		Name:    &cdc.Type{Kind: cdc.KindString, SourceType: "VARCHAR(64)"},
		Qty:     &cdc.Type{Kind: cdc.KindInt32, SourceType: "INT"},
		Price:   &cdc.Type{Kind: cdc.KindString, SourceType: "DECIMAL(10,2)"}, // decimal.handling.mode=string
		Status:  &cdc.Type{Kind: cdc.KindString, Logical: "io.debezium.data.Enum", SourceType: "ENUM"},
		Version: &cdc.Type{Kind: cdc.KindInt64, SourceType: "BIGINT UNSIGNED"},
		Payload: &cdc.Type{Kind: cdc.KindString, Optional: true, SourceType: "TEXT"},
	}
}

const filler = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// row is the content of (table, key) at version v: a pure function, so the
// expected state of any key can be recomputed.
func (s *Source) row(ti int, key int64, v uint64) cdc.Row {
	h := splitmix64(uint64(key)<<20 ^ v ^ uint64(ti)<<56)
	cents := int64(h % 1_000_000)
	off := int(h>>8) % len(filler)
	payload := s.pad[off : off+s.cfg.PayloadBytes]
	return cdc.Row{
		{Name: "id", Type: s.types.ID, Value: key},
		{Name: "name", Type: s.types.Name, Value: "item-" + strconv.FormatInt(key, 10)},
		{Name: "qty", Type: s.types.Qty, Value: int64(h>>20) % 1000},
		{Name: "price", Type: s.types.Price, Value: price(cents)},
		{Name: "status", Type: s.types.Status, Value: status(h >> 40)},
		{Name: "version", Type: s.types.Version, Value: int64(v)},
		{Name: "payload", Type: s.types.Payload, Value: payload},
	}
}

// Replay runs the generator model for cfg from the first event up to (not
// including) event upto and calls fn with each record, exactly as a
// generator source would emit them. Tests use it to compute expected
// topics and final states.
func Replay(cfg Config, upto uint64, fn func(cdc.Record)) {
	s := newSource(cfg, "replay")
	var buf []cdc.Record
	for s.next < upto {
		buf = buf[:0]
		s.step(&buf)
		fn(buf[0])
	}
}

func status(h uint64) string {
	switch h % 4 {
	case 0:
		return "new"
	case 1:
		return "active"
	case 2:
		return "backordered"
	}
	return "discontinued"
}

// price formats cents as a DECIMAL(10,2) string, e.g. 1234 → "12.34".
func price(cents int64) string {
	b := strconv.AppendInt(make([]byte, 0, 12), cents/100, 10)
	c := cents % 100
	return string(append(b, '.', byte('0'+c/10), byte('0'+c%10)))
}
