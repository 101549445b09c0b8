package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/configs"
	"github.com/connectd/connectd/internal/kafkatest"
	"github.com/connectd/connectd/internal/testutil"
	"github.com/connectd/connectd/offsets"
	"github.com/connectd/connectd/runtime"
	"github.com/connectd/connectd/sources/generator"
)

// crashAfterCommit wraps the sink: every third Write commits to
// PostgreSQL and then fails, as a crash between the database commit and
// the Kafka commit would. The runtime re-delivers; the sink must skip what
// it already applied.
type crashAfterCommit struct {
	*Sink
	mu      *sync.Mutex
	calls   *int
	applied map[string]int // "partition/offset" → times handed to the real sink
}

func (c crashAfterCommit) Write(ctx context.Context, b []cdc.Message) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range b {
		c.applied[fmt.Sprint(m.Partition, "/", m.Offset)]++
	}
	n, err := c.Sink.Write(ctx, b)
	*c.calls++
	if err == nil && *c.calls%3 == 0 {
		return n, errors.New("simulated crash after the database commit")
	}
	return n, err
}

func TestEffectivelyOnceThroughTheRuntime(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "")
	b := kafkatest.Start(t, "")
	dir := t.TempDir()
	var mu sync.Mutex
	calls := 0
	applied := map[string]int{}
	reg := runtime.NewRegistry()
	reg.Source("generator", func(c cdc.ConfigDecoder, env runtime.Env) (cdc.Source, error) {
		s, err := generator.New(c, env.Name)
		if err != nil {
			return nil, err
		}
		return s, nil
	})
	reg.Sink("crashy-postgres", func(c cdc.ConfigDecoder, env runtime.Env) (cdc.Sink, error) {
		s, err := New(c, env.Name, nil)
		if err != nil {
			return nil, err
		}
		return crashAfterCommit{Sink: s, mu: &mu, calls: &calls, applied: applied}, nil
	})
	yaml := fmt.Sprintf(`kafka: {topic_partitions: 2}
worker: {data_dir: %s/data, http: "off"}
sources:
  - {name: gen, type: generator, schemas: true, config: {topic_prefix: eo, keys: 300, total: 6000, rate: 20000, batch_size: 200}}
sinks:
  - name: view
    type: crashy-postgres
    topics: [eo.inventory.items]
    config: {dsn: %q, schema: %s, fields: [id, name, qty, version]}
`, dir, f.sink.cfg.DSN, f.schema)
	path := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := configs.Load(path, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	store, _ := offsets.OpenFile(filepath.Join(dir, "o.json"))
	w, err := runtime.New(runtime.Options{Pipeline: p, Registry: reg, Kafka: kafkatest.Conn(b.Addr()), Offsets: store,
		SinkBatchSize: 250, RetryBackoff: 10 * time.Millisecond, RetryBackoffMax: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	final := map[string]string{}
	generator.Replay(generator.Config{TopicPrefix: "eo", Keys: 300, Total: 6000}, 6000, func(r cdc.Record) {
		id := fmt.Sprint(r.Key.Value("id"))
		if r.After == nil {
			delete(final, id)
		} else {
			final[id] = fmt.Sprintf("%v|%v|%v", r.After.Value("name"), r.After.Value("qty"), r.After.Value("version"))
		}
	})
	testutil.WaitFor(t, "view equal to the source", 60*time.Second, func() bool {
		got, err := f.tryRows("items", "name, qty, version")
		if err != nil || len(got) != len(final) {
			return false
		}
		for id, want := range final {
			if got[id] != want {
				return false
			}
		}
		return true
	})
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if calls < 6 {
		t.Fatalf("only %d writes: the crash path was not exercised", calls)
	}
	for k, n := range applied {
		if n > 1 {
			t.Fatalf("message %s was handed to the sink %d times after crashes: not effectively once", k, n)
		}
	}
	var restarts int
	for _, s := range w.Statuses() {
		if s.Name == "view" {
			restarts = s.Restarts
		}
	}
	if restarts == 0 {
		t.Fatal("no restart happened")
	}
	t.Logf("%d writes, %d restarts after simulated crashes, %d messages each applied once", calls, restarts, len(applied))
}
