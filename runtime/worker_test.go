package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/configs"
	"github.com/connectd/connectd/internal/kafkatest"
	"github.com/connectd/connectd/internal/testutil"
	"github.com/connectd/connectd/offsets"
	"github.com/connectd/connectd/runtime"
	"github.com/connectd/connectd/sinks/file"
	"github.com/connectd/connectd/sources/generator"
)

func registry(extra func(*runtime.Registry)) *runtime.Registry {
	reg := runtime.NewRegistry()
	reg.Source("generator", func(c cdc.ConfigDecoder, env runtime.Env) (cdc.Source, error) {
		s, err := generator.New(c, env.Name)
		if err != nil {
			return nil, err
		}
		return s, nil
	})
	reg.Sink("file", func(c cdc.ConfigDecoder, env runtime.Env) (cdc.Sink, error) {
		s, err := file.New(c, io.Discard)
		if err != nil {
			return nil, err
		}
		return s, nil
	})
	if extra != nil {
		extra(reg)
	}
	return reg
}

func pipeline(t *testing.T, yaml string) *configs.Pipeline {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "pipeline.yaml")
	yaml = strings.ReplaceAll(yaml, "$DIR", dir)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := configs.Load(path, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("loading pipeline: %v", err)
	}
	return p
}

type runningWorker struct {
	w      *runtime.Worker
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, p *configs.Pipeline, reg *runtime.Registry, addr string, store runtime.OffsetStore, opts ...func(*runtime.Options)) *runningWorker {
	t.Helper()
	o := runtime.Options{Pipeline: p, Registry: reg, Kafka: kafkatest.Conn(addr), Offsets: store,
		RetryBackoff: 50 * time.Millisecond, RetryBackoffMax: 200 * time.Millisecond}
	for _, f := range opts {
		f(&o)
	}
	w, err := runtime.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rw := &runningWorker{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { rw.done <- w.Run(ctx) }()
	t.Cleanup(func() { rw.stop(t) })
	return rw
}

func (rw *runningWorker) stop(t *testing.T) {
	t.Helper()
	if rw.cancel == nil {
		return
	}
	rw.cancel()
	rw.cancel = nil
	select {
	case err := <-rw.done:
		if err != nil {
			t.Errorf("worker stopped with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Error("worker did not stop within 20s")
	}
}

func readLines(t *testing.T, path string) []file.Line { return testutil.ReadLines(t, path) }

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	testutil.WaitFor(t, what, d, ok)
}

const genPipeline = `
kafka: {topic_partitions: 3}
worker: {data_dir: $DIR/data, http: "127.0.0.1:0", offset_flush_interval: 50ms}
sources:
  - name: gen
    type: generator
    config: {topic_prefix: demo, tables: [inv.items, inv.orders], keys: 40, total: 3000, txn_size: 3}
sinks:
  - name: out
    type: file
    topics_regex: "demo\\.inv\\..*"
    config: {path: $DIR/out.jsonl}
`

// TestPipelineDeliversEveryEventInKeyOrder runs generator → Kafka → file in
// one process and checks the file against the generator's own model.
func TestPipelineDeliversEveryEventInKeyOrder(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, "")
	p := pipeline(t, genPipeline)
	store, _ := offsets.OpenFile(filepath.Join(t.TempDir(), "offsets.json"))
	rw := start(t, p, registry(nil), b.Addr(), store)
	out := filepath.Join(filepath.Dir(p.File), "out.jsonl")

	var want []cdc.Record
	generator.Replay(generator.Config{TopicPrefix: "demo", Tables: []string{"inv.items", "inv.orders"}, Keys: 40, Total: 3000, TxnSize: 3}, 3000, func(r cdc.Record) { want = append(want, r) })
	wantLines := len(want)
	for _, r := range want {
		if r.Op == cdc.OpDelete {
			wantLines++ // its tombstone
		}
	}
	waitFor(t, fmt.Sprintf("%d lines in the file sink", wantLines), 30*time.Second, func() bool { return len(readLines(t, out)) >= wantLines })
	waitFor(t, "position {\"seq\":3000} stored", 10*time.Second, func() bool {
		pos, _ := store.Get(context.Background(), offsets.Key{Connector: "gen", Server: "demo"})
		return string(pos) == `{"seq":3000}`
	})

	// /healthz is 200 while everything runs, /metrics counts records.
	resp, err := http.Get("http://" + rw.w.HTTPAddr() + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz = %v, %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get("http://" + rw.w.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{`connectd_source_records_produced_total{connector="gen"} ` + fmt.Sprint(wantLines), `connectd_sink_records_total{connector="out"} ` + fmt.Sprint(wantLines), "connectd_batch_duration_seconds_bucket", `connectd_connector_state{connector="gen",state="RUNNING"} 1`} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("metrics lack %q", m)
		}
	}
	rw.stop(t)

	testutil.CheckAgainstModel(t, readLines(t, out), want, false)
}

// failingSink fails its first writes, then works: the task must restart
// and nothing may be lost or committed early.
type failingSink struct {
	mu    *sync.Mutex
	fails *int
	got   *[]cdc.Message
}

func (s failingSink) Open(context.Context) error  { return nil }
func (s failingSink) Close(context.Context) error { return nil }
func (s failingSink) Write(_ context.Context, b []cdc.Message) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if *s.fails > 0 {
		*s.fails--
		// Half the batch made it: the runtime must commit exactly that.
		*s.got = append(*s.got, b[:len(b)/2]...)
		return len(b) / 2, errors.New("store unavailable")
	}
	*s.got = append(*s.got, b...)
	return len(b), nil
}

func TestSinkFailureRestartsWithoutLoss(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, "")
	var mu sync.Mutex
	fails := 3
	var got []cdc.Message
	reg := registry(func(r *runtime.Registry) {
		r.Sink("flaky", func(cdc.ConfigDecoder, runtime.Env) (cdc.Sink, error) {
			return failingSink{mu: &mu, fails: &fails, got: &got}, nil
		})
	})
	p := pipeline(t, `
worker: {data_dir: $DIR/data, http: "off"}
sources:
  - {name: gen, type: generator, config: {topic_prefix: f, keys: 10, total: 500}}
sinks:
  - {name: flaky, type: flaky, topics: [f.inventory.items]}
`)
	store, _ := offsets.OpenFile(filepath.Join(t.TempDir(), "o.json"))
	rw := start(t, p, reg, b.Addr(), store)
	var want []cdc.Record
	generator.Replay(generator.Config{TopicPrefix: "f", Keys: 10, Total: 500}, 500, func(r cdc.Record) { want = append(want, r) })
	n := len(want)
	for _, r := range want {
		if r.Op == cdc.OpDelete {
			n++
		}
	}
	waitFor(t, "all events after restarts", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		seen := map[string]bool{}
		for _, m := range got {
			seen[fmt.Sprint(m.Partition, "/", m.Offset)] = true
		}
		return len(seen) == n
	})
	st := rw.w.Statuses()
	for _, s := range st {
		if s.Name == "flaky" && (s.Restarts != 3 || s.State != runtime.StateRunning) {
			t.Fatalf("flaky status = %+v, want RUNNING after 3 restarts", s)
		}
	}
}

// brokenTransform always fails: the source must end FAILED (terminal), the
// health check must name it, and no position may be stored.
type brokenTransform struct{}

func (brokenTransform) Apply(cdc.Record) ([]cdc.Record, error) {
	return nil, errors.New("cannot cast qty")
}

func TestTerminalErrorFailsConnectorAndHealth(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, "")
	reg := registry(func(r *runtime.Registry) {
		r.Transform("broken", func(cdc.ConfigDecoder) (cdc.Transform, error) { return brokenTransform{}, nil })
	})
	p := pipeline(t, `
worker: {data_dir: $DIR/data, http: "127.0.0.1:0"}
sources:
  - name: gen
    type: generator
    config: {topic_prefix: x, total: 10}
    transforms: [{type: broken}]
`)
	store, _ := offsets.OpenFile(filepath.Join(t.TempDir(), "o.json"))
	rw := start(t, p, reg, b.Addr(), store)
	waitFor(t, "gen FAILED", 10*time.Second, func() bool { return rw.w.Statuses()[0].State == runtime.StateFailed })
	if s := rw.w.Statuses()[0]; !strings.Contains(s.Error, "cannot cast qty") || s.Restarts != 0 {
		t.Fatalf("status = %+v", s)
	}
	resp, err := http.Get("http://" + rw.w.HTTPAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), "gen is FAILED") {
		t.Fatalf("healthz = %d %s", resp.StatusCode, body)
	}
	if pos, _ := store.Get(context.Background(), offsets.Key{Connector: "gen", Server: "x"}); pos != nil {
		t.Fatalf("a position was stored although nothing was produced: %s", pos)
	}
}

func TestUnknownTypesAreReportedWithPositions(t *testing.T) {
	t.Parallel()
	p := pipeline(t, `
sources:
  - name: a
    type: mysqll
    config: {}
sinks:
  - name: b
    type: file
    topics: [t]
    config: {pat: x}
    transforms:
      - type: nope
`)
	err := registry(nil).Check(p, nil)
	probs := configs.Problems(err)
	if len(probs) != 3 {
		t.Fatalf("problems = %v", err)
	}
	wants := []string{`pipeline.yaml:4:11: sources[0].type: unknown source type "mysqll"; known source types: generator`,
		`pipeline.yaml:10:14: sinks[0].config.pat: unknown key "pat"; did you mean "path"?`,
		`pipeline.yaml:12:15: sinks[0].transforms[0].type: unknown transform type "nope"`}
	for i, w := range wants {
		if got := probs[i].Error(); !strings.Contains(got, strings.TrimPrefix(w, "pipeline.yaml")) {
			t.Errorf("problem %d = %q, want %q", i, got, w)
		}
	}
}

// storingSink claims it already applied offsets up to stored per partition.
type storingSink struct {
	stored map[cdc.TopicPartition]int64
	mu     *sync.Mutex
	got    *[]cdc.Message
}

func (s storingSink) Open(context.Context) error  { return nil }
func (s storingSink) Close(context.Context) error { return nil }
func (s storingSink) StoredOffsets(context.Context) (map[cdc.TopicPartition]int64, error) {
	return s.stored, nil
}
func (s storingSink) Write(_ context.Context, b []cdc.Message) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*s.got = append(*s.got, b...)
	return len(b), nil
}

func TestSinkStoredOffsetsSkipAppliedMessages(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, "")
	var mu sync.Mutex
	var got []cdc.Message
	stored := map[cdc.TopicPartition]int64{{Topic: "s.inventory.items", Partition: 0}: 49, {Topic: "s.inventory.items", Partition: 1}: 9}
	reg := registry(func(r *runtime.Registry) {
		r.Sink("storing", func(cdc.ConfigDecoder, runtime.Env) (cdc.Sink, error) {
			return storingSink{stored: stored, mu: &mu, got: &got}, nil
		})
	})
	p := pipeline(t, `
kafka: {topic_partitions: 2}
worker: {data_dir: $DIR/data, http: "off"}
sources:
  - {name: gen, type: generator, config: {topic_prefix: s, keys: 50, total: 400}}
sinks:
  - {name: st, type: storing, topics: [s.inventory.items]}
  - {name: all, type: file, topics: [s.inventory.items], config: {path: $DIR/all.jsonl}}
`)
	store, _ := offsets.OpenFile(filepath.Join(t.TempDir(), "o.json"))
	rw := start(t, p, reg, b.Addr(), store)
	all := filepath.Join(filepath.Dir(p.File), "all.jsonl")
	var total int
	waitFor(t, "file sink complete", 30*time.Second, func() bool {
		total = len(readLines(t, all))
		return total > 400
	})
	time.Sleep(300 * time.Millisecond)
	waitFor(t, "storing sink caught up", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == total-60
	})
	rw.stop(t)
	mu.Lock()
	defer mu.Unlock()
	for _, m := range got {
		if off, ok := stored[cdc.TopicPartition{Topic: m.Topic, Partition: m.Partition}]; ok && m.Offset <= off {
			t.Fatalf("message %s[%d]@%d was re-applied although the sink stored offset %d", m.Topic, m.Partition, m.Offset, off)
		}
	}
}

func TestSchemasOptionWritesSchemaAndPayload(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, "")
	p := pipeline(t, `
worker: {data_dir: $DIR/data, http: "off"}
sources:
  - {name: gen, type: generator, schemas: true, config: {topic_prefix: sc, total: 5}}
sinks:
  - {name: out, type: file, topics: [sc.inventory.items], config: {path: $DIR/out.jsonl}}
`)
	store, _ := offsets.OpenFile(filepath.Join(t.TempDir(), "o.json"))
	start(t, p, registry(nil), b.Addr(), store)
	out := filepath.Join(filepath.Dir(p.File), "out.jsonl")
	waitFor(t, "5 events", 20*time.Second, func() bool { return len(readLines(t, out)) >= 5 })
	l := readLines(t, out)[0]
	m := cdc.Message{Topic: l.Topic, Key: l.Key, Value: l.Value}
	rec, err := m.Decode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(l.Value), `{"schema":{"type":"struct"`) || !strings.HasPrefix(string(l.Key), `{"schema":`) {
		t.Fatalf("not in schema form: key %s value %.80s", l.Key, l.Value)
	}
	if f, _ := rec.After.Get("qty"); f.Type == nil || f.Type.Kind != cdc.KindInt32 {
		t.Fatalf("qty type = %+v", f.Type)
	}
	if f, _ := rec.After.Get("status"); f.Type == nil || f.Type.Logical != "io.debezium.data.Enum" {
		t.Fatalf("status type = %+v", f.Type)
	}
}
