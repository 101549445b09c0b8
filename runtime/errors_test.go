package runtime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/configs"
	"github.com/connectd/connectd/internal/kafkatest"
	"github.com/connectd/connectd/internal/kafkautil"
	"github.com/connectd/connectd/internal/testutil"
	"github.com/connectd/connectd/offsets"
	"github.com/connectd/connectd/runtime"
	"github.com/connectd/connectd/sources/generator"
)

// poison fails on every record whose generator seq is a multiple of 50
// (tombstones pass), as a cast that cannot convert a value would.
type poison struct{ every int64 }

func (p poison) Apply(r cdc.Record) ([]cdc.Record, error) {
	if seq, _ := r.Source.Extra.Value("seq").(int64); !r.Tombstone && seq > 0 && seq%p.every == 0 {
		return nil, fmt.Errorf("cannot cast qty of seq %d to int8", seq)
	}
	return []cdc.Record{r}, nil
}

func dlqMessages(t *testing.T, addr, topic string) []kafka.Message {
	t.Helper()
	var out []kafka.Message
	err := kafkautil.ReadAll(context.Background(), kafkatest.Conn(addr), topic, func(m kafka.Message) error {
		out = append(out, m)
		return nil
	})
	if err != nil {
		t.Fatalf("reading %s: %v", topic, err)
	}
	return out
}

func header(m kafka.Message, k string) string {
	for _, h := range m.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

func TestToleranceAllSendsPoisonRecordsToTheDeadLetterTopic(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, "")
	reg := registry(func(r *runtime.Registry) {
		r.Transform("poison", func(cdc.ConfigDecoder) (cdc.Transform, error) { return poison{every: 50}, nil })
	})
	p := pipeline(t, `
worker: {data_dir: $DIR/data, http: "off"}
sources:
  - name: gen
    type: generator
    config: {topic_prefix: dl, keys: 30, total: 1000}
    transforms: [{type: poison}]
    errors: {tolerance: all, dead_letter_topic: dlq-gen, log: true}
sinks:
  - {name: out, type: file, topics: [dl.inventory.items], config: {path: $DIR/out.jsonl}}
`)
	store, _ := offsets.OpenFile(filepath.Join(t.TempDir(), "o.json"))
	rw := start(t, p, reg, b.Addr(), store)
	waitFor(t, "position 1000 stored", 20*time.Second, func() bool {
		pos, _ := store.Get(context.Background(), offsets.Key{Connector: "gen", Server: "dl"})
		return string(pos) == `{"seq":1000}`
	})
	out := filepath.Join(filepath.Dir(p.File), "out.jsonl")
	var good int
	generator.Replay(generator.Config{TopicPrefix: "dl", Keys: 30, Total: 1000}, 1000, func(r cdc.Record) {
		if seq := r.Source.Extra.Value("seq").(int64); seq == 0 || seq%50 != 0 {
			good++
		}
	})
	waitFor(t, "every good record in the sink", 20*time.Second, func() bool { return len(readLines(t, out)) >= good })
	rw.stop(t)

	dl := dlqMessages(t, b.Addr(), "dlq-gen")
	if len(dl) != 19 {
		t.Fatalf("dead letter topic holds %d records, want 19 (seq 50, 100, …, 950)", len(dl))
	}
	seen := map[int64]bool{}
	for _, m := range dl {
		var v struct {
			Source struct {
				Seq int64 `json:"seq"`
			} `json:"source"`
		}
		if err := json.Unmarshal(m.Value, &v); err != nil || v.Source.Seq%50 != 0 || seen[v.Source.Seq] {
			t.Fatalf("dead letter: value %s (%v), want an original poisoned event, once", m.Value, err)
		}
		seen[v.Source.Seq] = true
		seq := v.Source.Seq
		for k, want := range map[string]string{
			"__connect.errors.topic":             "dl.inventory.items",
			"__connect.errors.connector.name":    "gen",
			"__connect.errors.stage":             "TRANSFORMATION",
			"__connect.errors.class.name":        "poison",
			"__connect.errors.exception.message": fmt.Sprintf("cannot cast qty of seq %d to int8", seq),
		} {
			if got := header(m, k); got != want {
				t.Errorf("dead letter seq %d: header %s = %q, want %q", seq, k, got, want)
			}
		}
	}
	lines := readLines(t, out)
	for _, l := range lines {
		var v struct {
			Source struct {
				Seq int64 `json:"seq"`
			} `json:"source"`
		}
		if string(l.Value) != "null" {
			_ = json.Unmarshal(l.Value, &v)
			if v.Source.Seq > 0 && v.Source.Seq%50 == 0 {
				t.Fatalf("poison record seq %d reached the sink", v.Source.Seq)
			}
		}
	}
}

func TestToleranceNoneStopsAtThePoisonAndResumesThereAfterTheFix(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, "")
	var fixed bool
	var mu sync.Mutex
	reg := registry(func(r *runtime.Registry) {
		r.Transform("poison", func(cdc.ConfigDecoder) (cdc.Transform, error) {
			mu.Lock()
			defer mu.Unlock()
			if fixed {
				return poison{every: 1 << 62}, nil
			}
			return poison{every: 700}, nil
		})
	})
	yaml := `
worker: {data_dir: $DIR/data, http: "off", offset_flush_interval: 50ms}
sources:
  - name: gen
    type: generator
    config: {topic_prefix: st, keys: 30, total: 1000, batch_size: 10}
    transforms: [{type: poison}]
sinks:
  - {name: out, type: file, topics: [st.inventory.items], config: {path: $DIR/out.jsonl}}
`
	p := pipeline(t, yaml)
	store, _ := offsets.OpenFile(filepath.Join(t.TempDir(), "o.json"))
	rw := start(t, p, reg, b.Addr(), store)
	waitFor(t, "gen FAILED", 20*time.Second, func() bool {
		for _, s := range rw.w.Statuses() {
			if s.Name == "gen" && s.State == runtime.StateFailed {
				return true
			}
		}
		return false
	})
	rw.stop(t)
	pos, _ := store.Get(context.Background(), offsets.Key{Connector: "gen", Server: "st"})
	if string(pos) != `{"seq":700}` {
		t.Fatalf("stored position %s, want {\"seq\":700}: the batch of records 700-709 holds the poison and nothing from it may commit", pos)
	}

	// The fix: the transform no longer fails. The same store resumes at 700.
	mu.Lock()
	fixed = true
	mu.Unlock()
	rw2 := start(t, p, reg, b.Addr(), store)
	waitFor(t, "position 1000", 20*time.Second, func() bool {
		pos, _ := store.Get(context.Background(), offsets.Key{Connector: "gen", Server: "st"})
		return string(pos) == `{"seq":1000}`
	})
	rw2.stop(t)
	var want []cdc.Record
	generator.Replay(generator.Config{TopicPrefix: "st", Keys: 30, Total: 1000}, 1000, func(r cdc.Record) { want = append(want, r) })
	rw3 := start(t, p, reg, b.Addr(), store)
	out := filepath.Join(filepath.Dir(p.File), "out.jsonl")
	n := len(want)
	for _, r := range want {
		if r.Op == cdc.OpDelete {
			n++
		}
	}
	waitFor(t, "every event in the sink", 20*time.Second, func() bool { return len(readLines(t, out)) >= n })
	rw3.stop(t)
	testutil.CheckAgainstModel(t, readLines(t, out), want, true)
}

// rejectingSink rejects messages whose offset is a multiple of 40 as bad
// records, as a store rejecting an out-of-range value would.
type rejectingSink struct {
	mu  *sync.Mutex
	got *[]cdc.Message
}

func (s rejectingSink) Open(context.Context) error  { return nil }
func (s rejectingSink) Close(context.Context) error { return nil }
func (s rejectingSink) Write(_ context.Context, b []cdc.Message) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, m := range b {
		if m.Offset%40 == 0 {
			return i, cdc.BadRecord(fmt.Errorf("value out of range at %s[%d]@%d", m.Topic, m.Partition, m.Offset))
		}
		*s.got = append(*s.got, m)
	}
	return len(b), nil
}

func TestSinkRejectionsGoToTheDeadLetterTopicWithTheirCoordinates(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, "")
	var mu sync.Mutex
	var got []cdc.Message
	reg := registry(func(r *runtime.Registry) {
		r.Sink("rejecting", func(cdc.ConfigDecoder, runtime.Env) (cdc.Sink, error) {
			return rejectingSink{mu: &mu, got: &got}, nil
		})
	})
	p := pipeline(t, `
kafka: {topic_partitions: 1}
worker: {data_dir: $DIR/data, http: "off"}
sources:
  - {name: gen, type: generator, config: {topic_prefix: rj, keys: 20, total: 400}}
sinks:
  - name: rej
    type: rejecting
    topics: [rj.inventory.items]
    errors: {tolerance: all, dead_letter_topic: dlq-rej}
  - {name: all, type: file, topics: [rj.inventory.items], config: {path: $DIR/all.jsonl}}
`)
	store, _ := offsets.OpenFile(filepath.Join(t.TempDir(), "o.json"))
	rw := start(t, p, reg, b.Addr(), store)
	all := filepath.Join(filepath.Dir(p.File), "all.jsonl")
	var total int
	waitFor(t, "all events in Kafka", 20*time.Second, func() bool { total = len(readLines(t, all)); return total > 400 })
	time.Sleep(200 * time.Millisecond)
	total = len(readLines(t, all))
	bad := (total + 39) / 40
	waitFor(t, "rejecting sink done", 20*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == total-bad
	})
	rw.stop(t)
	dl := dlqMessages(t, b.Addr(), "dlq-rej")
	if len(dl) != bad {
		t.Fatalf("dead letter topic holds %d, want %d", len(dl), bad)
	}
	for i, m := range dl {
		if header(m, "__connect.errors.offset") != fmt.Sprint(i*40) || header(m, "__connect.errors.partition") != "0" ||
			header(m, "__connect.errors.stage") != "TASK_PUT" || header(m, "__connect.errors.class.name") != "rejecting" ||
			!strings.Contains(header(m, "__connect.errors.exception.message"), "value out of range") {
			t.Fatalf("dead letter %d headers: %v", i, m.Headers)
		}
	}
	for _, s := range rw.w.Statuses() {
		if s.Name == "rej" && s.Restarts != 0 {
			t.Fatalf("a tolerated bad record restarted the task: %+v", s)
		}
	}
}

func TestErrorsBlockIsValidated(t *testing.T) {
	t.Parallel()
	p := pipeline(t, `
sources:
  - name: gen
    type: generator
    config: {topic_prefix: x}
    errors: {tolerance: some, dead_letter_topic: dlq}
`)
	err := registry(nil).Check(p, nil)
	var msgs []string
	for _, pr := range configs.Problems(err) {
		msgs = append(msgs, pr.Error())
	}
	joined := strings.Join(msgs, "\n")
	for _, want := range []string{
		`:6:25: sources[0].errors.tolerance: tolerance must be none or all, not "some"`,
		`:6:50: sources[0].errors.dead_letter_topic: dead_letter_topic only takes effect with tolerance: all`,
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems lack %q:\n%s", want, joined)
		}
	}
}
