package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/internal/kafkatest"
	"github.com/connectd/connectd/internal/kafkautil"
	"github.com/connectd/connectd/sinks/view"
	"github.com/connectd/connectd/sources/generator"
)

// redisBenchEnv enables the throughput benchmarks (they take a minute).
const redisBenchEnv = "CONNECTD_BENCH"

// TestRedisSinkThroughput pre-fills a topic with the generator's change
// events (7 columns; creates, updates and deletes over as many keys as
// events), then measures the connectd binary applying them to a
// Redis hash view of 5 fields, beside raw go-redis pipelined HSETs (DELs
// for deletes) of the same keys and values (1000 per pipeline, one connection) against the
// same Redis, and prints both with their ratio. Set CONNECTD_BENCH=1 (and
// optionally CONNECTD_BENCH_EVENTS, default 640000, and
// CONNECTD_BENCH_CPUPROFILE, a file for connectd's CPU profile) to run it.
func TestRedisSinkThroughput(t *testing.T) {
	if os.Getenv(redisBenchEnv) == "" {
		t.Skipf("benchmark: set %s=1 to run it", redisBenchEnv)
	}
	events := 640000
	if v := os.Getenv("CONNECTD_BENCH_EVENTS"); v != "" {
		events, _ = strconv.Atoi(v)
	}
	rs := startRedisServer(t, "--appendonly", "no")
	dir := t.TempDir()
	b := kafkatest.StartProcess(t, connectdBin, filepath.Join(dir, "broker"), "127.0.0.1:0")
	ctx := context.Background()
	const topic = "bench.inventory.items"
	fields := []string{"name", "qty", "price", "status", "version"}

	// Pre-fill the topic; keep the raw HSETs of the same data.
	conn := kafkatest.Conn(b.Addr)
	if err := kafkautil.EnsureTopics(ctx, conn.Client(), kafkautil.Topic{Name: topic, Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	gcfg := generator.Config{TopicPrefix: "bench", Keys: int64(events), Total: uint64(events)}
	type hset struct {
		key  string
		args []any
	}
	raw := make([]hset, 0, events)
	var lastKey string // the key of the last event, unless a delete
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr), Topic: topic, Balancer: &kafka.Hash{}, BatchSize: 1000,
		BatchBytes: 900 << 10, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireOne, Transport: conn.Transport()}
	defer w.Close()
	var batch []kafka.Message
	flush := func() {
		if err := w.WriteMessages(ctx, batch...); err != nil {
			t.Fatalf("pre-filling the topic: %.300s", err)
		}
		batch = batch[:0]
	}
	start := time.Now()
	generator.Replay(gcfg, uint64(events), func(r cdc.Record) {
		k, _ := cdc.AppendKey(nil, &r)
		v, _ := cdc.AppendValue(nil, &r)
		batch = append(batch, kafka.Message{Key: k, Value: v})
		h := hset{key: fmt.Sprintf("raw:%v", r.Key.Value("id"))}
		if lastKey = fmt.Sprintf("item:%v", r.Key.Value("id")); r.After == nil {
			lastKey = ""
		}
		for _, f := range fields {
			if r.After == nil {
				break // a delete: DEL, as the sink does
			}
			text, _ := view.AppendText(nil, r.After.Value(f))
			h.args = append(h.args, f, text)
		}
		raw = append(raw, h)
		if len(batch) == 10000 {
			flush()
		}
	})
	if len(batch) > 0 {
		flush()
	}
	t.Logf("pre-filled %d events in %s", events, time.Since(start).Round(time.Millisecond))

	c := goredis.NewClient(&goredis.Options{Addr: rs.Addr, DisableIdentity: true})
	defer c.Close()

	// Raw go-redis: pipelined HSET, 1000 per round trip.
	start = time.Now()
	for i := 0; i < len(raw); i += 1000 {
		pipe := c.Pipeline()
		for _, h := range raw[i:min(i+1000, len(raw))] {
			if h.args == nil {
				pipe.Del(ctx, h.key)
			} else {
				pipe.HSet(ctx, h.key, h.args...)
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rawSecs := time.Since(start).Seconds()
	raw = nil

	// connectd: the binary, a redis sink on the pre-filled topic.
	config := filepath.Join(dir, "pipeline.yaml")
	redisWriteFile(t, config, fmt.Sprintf(`kafka: {brokers: [%q]}
worker: {data_dir: %s/data, http: "off"}
sinks:
  - name: bench
    type: redis
    topics: [%s]
    config: {addr: %q, key: "item:{id}", format: hash, fields: [name, qty, price, status, version], batch_size: 1000}
`, b.Addr, dir, topic, rs.Addr))
	applied := func() int {
		n := 0
		for _, v := range c.HGetAll(ctx, "connectd:offsets:bench").Val() {
			o, _ := strconv.Atoi(v)
			n += o + 1
		}
		return n
	}
	start = time.Now()
	var p *proc
	if prof := os.Getenv("CONNECTD_BENCH_CPUPROFILE"); prof != "" {
		// runConnectd with a CPU profile of the sink run.
		cmd := exec.Command(connectdBin, "run", "-c", config, "--cpuprofile", prof)
		var stderr bytes.Buffer
		cmd.Stderr, cmd.Stdout = &stderr, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p = &proc{cmd: cmd, stderr: &stderr, done: make(chan error, 1)}
		go func() { p.done <- cmd.Wait() }()
	} else {
		p = runConnectd(t, config)
	}
	var first time.Time
	var firstN int
	for {
		n := applied()
		if n > 0 && first.IsZero() {
			first, firstN = time.Now(), n
		}
		if n >= events {
			break
		}
		if time.Since(start) > 5*time.Minute {
			t.Fatalf("only %d of %d events applied after 5 minutes", n, events)
		}
		time.Sleep(10 * time.Millisecond)
	}
	total := time.Since(start).Seconds()
	steady := time.Since(first).Seconds()
	p.stop(t, syscall.SIGTERM, 15*time.Second)
	if got := c.HGetAll(ctx, lastKey).Val(); lastKey != "" && len(got) != len(fields) {
		t.Fatalf("%s = %v, want %d fields", lastKey, got, len(fields))
	}

	rawRate := float64(events) / rawSecs
	sinkRate := float64(events-firstN) / steady
	fmt.Printf("\n| %d events → Redis hash (5 fields) | events/s | seconds |\n|---|---|---|\n", events)
	fmt.Printf("| raw go-redis pipelined HSET (1000/pipeline) | %.0f | %.2f |\n", rawRate, rawSecs)
	fmt.Printf("| connectd redis sink, steady (first to last batch) | %.0f | %.2f |\n", sinkRate, steady)
	fmt.Printf("| connectd redis sink, including start-up and group join | %.0f | %.2f |\n", float64(events)/total, total)
	fmt.Printf("| ratio sink steady / raw | %.2f | |\n\n", sinkRate/rawRate)
}
