package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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

// redisViewFields and redisViewRename are the projection the tests' hash views use.
var (
	redisViewFields = []string{"id", "name", "qty", "price", "status", "version"}
	redisViewRename = map[string]string{"qty": "quantity"}
)

// redisExpectedViews replays the generator and returns, per Redis key
// ("<topic>:<id>"), the projected hash the view must hold; deleted keys
// are absent. It also returns the number of change events.
func redisExpectedViews(gcfg generator.Config, total uint64) map[string]map[string]string {
	want := map[string]map[string]string{}
	generator.Replay(gcfg, total, func(r cdc.Record) {
		key := fmt.Sprintf("%s:%v", r.Topic, r.Key.Value("id"))
		if r.After == nil {
			delete(want, key)
			return
		}
		h := map[string]string{}
		for _, f := range r.After {
			if !slices.Contains(redisViewFields, f.Name) {
				continue
			}
			name := f.Name
			if to, ok := redisViewRename[name]; ok {
				name = to
			}
			text, ok := view.AppendText(nil, f.Value)
			if ok {
				h[name] = string(text)
			}
		}
		want[key] = h
	})
	return want
}

// redisCheckHashView compares every key under the topics' prefixes with want.
func redisCheckHashView(t *testing.T, ctx context.Context, c goredis.UniversalClient, topics []string, want map[string]map[string]string) {
	t.Helper()
	got := 0
	for _, topic := range topics {
		var keys []string
		scan := func(ctx context.Context, node *goredis.Client) error {
			it := node.Scan(ctx, 0, topic+":*", 1000).Iterator()
			for it.Next(ctx) {
				keys = append(keys, it.Val())
			}
			return it.Err()
		}
		var err error
		if cc, ok := c.(*goredis.ClusterClient); ok {
			err = cc.ForEachMaster(ctx, func(ctx context.Context, node *goredis.Client) error { return scan(ctx, node) })
		} else {
			err = scan(ctx, c.(*goredis.Client))
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if _, ok := want[k]; !ok {
				t.Fatalf("key %s is in Redis but was deleted at the source (or never existed)", k)
			}
		}
		got += len(keys)
	}
	if got != len(want) {
		t.Fatalf("Redis holds %d keys, the source %d", got, len(want))
	}
	for k, h := range want {
		m, err := c.HGetAll(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(m, h) {
			t.Fatalf("key %s = %v, want %v", k, m, h)
		}
	}
}

func redisWriteFile(t *testing.T, path, yaml string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRedisViewsEffectivelyOnce runs generator → Kafka → two redis sinks
// (a projected hash view and a change stream) as the connectd binary,
// against a Redis of its own:
//  1. the stream sink kills the process with SIGKILL right after one of its
//     MULTI/EXECs, before the Kafka commit (test_kill_after_exec);
//  2. connectd restarts, and Redis is killed -9 and restarted mid-run;
//  3. after the run every change message in Kafka is in the streams
//     exactly once, in per-key order (the generator, killed -9 too, may
//     repeat events: each repeat is its own Kafka message), and the hash
//     view equals the generator's final state (projected and renamed
//     fields only, deleted rows absent).
func TestRedisViewsEffectivelyOnce(t *testing.T) {
	t.Parallel()
	rs := startRedisServer(t)
	dir := t.TempDir()
	b := kafkatest.StartProcess(t, connectdBin, filepath.Join(dir, "broker"), "127.0.0.1:0")
	const total = 40000
	gcfg := generator.Config{TopicPrefix: "rv", Tables: []string{"inv.items", "inv.orders"}, Keys: 400, Total: total, Rate: 6000}
	topics := []string{"rv.inv.items", "rv.inv.orders"}
	config := filepath.Join(dir, "pipeline.yaml")
	pipeline := func(kill int) string {
		return fmt.Sprintf(`kafka: {brokers: [%q], topic_partitions: 3}
worker: {data_dir: %s/data, http: "off", offset_flush_interval: 200ms}
sources:
  - name: gen
    type: generator
    config: {topic_prefix: rv, tables: [inv.items, inv.orders], keys: 400, total: %d, rate: 6000}
sinks:
  - name: view
    type: redis
    topics: [rv.inv.items, rv.inv.orders]
    config: {addr: %q, key: "{$topic}:{id}", fields: [id, name, qty, price, status, version], rename: {qty: quantity}, batch_size: 300}
  - name: changes
    type: redis
    topics: [rv.inv.items, rv.inv.orders]
    config: {addr: %q, key: "changes:{$topic}", format: stream, batch_size: 100, test_kill_after_exec: %d}
`, b.Addr, dir, total, rs.Addr, rs.Addr, kill)
	}
	c := goredis.NewClient(&goredis.Options{Addr: rs.Addr, DisableIdentity: true, MaxRetries: 10})
	defer c.Close()
	ctx := context.Background()
	streamLen := func() int64 {
		var n int64
		for _, tp := range topics {
			n += c.XLen(ctx, "changes:"+tp).Val()
		}
		return n
	}

	// 1. The fault hook kills connectd between EXEC and the Kafka commit.
	redisWriteFile(t, config, pipeline(30))
	p := runConnectd(t, config)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("the fault hook did not kill connectd; output:\n%s", p.stderr)
	}
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("connectd ended with %v, want SIGKILL; output:\n%s", p.cmd.ProcessState, p.stderr)
	}
	// Redis holds more than Kafka's committed offsets say.
	stored, err := c.HGetAll(ctx, "connectd:offsets:changes").Result()
	if err != nil {
		t.Fatal(err)
	}
	ahead := redisAheadOfKafka(t, b.Addr, "connectd-changes", stored)
	if ahead <= 0 {
		t.Fatalf("no message applied in Redis beyond the Kafka commit (stored %v): the crash proves nothing", stored)
	}
	afterKill := streamLen()
	if n, d := redisDistinctSeqs(ctx, c, topics); n != d {
		t.Fatalf("after the kill: %d entries, %d distinct", n, d)
	}
	t.Logf("killed after EXEC: %d stream entries, %d messages applied beyond the Kafka commit", afterKill, ahead)

	// 2. Restart without the hook; kill -9 Redis mid-run and restart it.
	redisWriteFile(t, config, pipeline(0))
	p = runConnectd(t, config)
	waitFor(t, "progress after the restart", 60*time.Second, func() bool { return streamLen() > afterKill+8000 })
	rs.kill()
	time.Sleep(1500 * time.Millisecond)
	rs.start()
	waitFor(t, "every event in the streams and both sinks at the end of their topics", 120*time.Second, func() bool {
		if streamLen() < total {
			return false
		}
		end := redisEndOffsets(t, b.Addr, topics)
		for _, sink := range []string{"view", "changes"} {
			if !maps.Equal(c.HGetAll(ctx, "connectd:offsets:"+sink).Val(), end) {
				return false
			}
		}
		_, d := redisDistinctSeqs(ctx, c, topics)
		return d == total
	})
	if code := p.stop(t, syscall.SIGTERM, 15*time.Second); code != 0 {
		t.Fatalf("exit code %d; output:\n%s", code, p.stderr)
	}
	t.Logf("%d retries logged while Redis restarted", strings.Count(p.stderr.String(), "retrying"))

	// 3. Exactly once in the streams: per key, the stream holds exactly
	// the Kafka messages (the source itself may have repeated events after
	// its kill -9: those are distinct messages, each applied once).
	for _, tp := range topics {
		inKafka := map[string][]string{}
		err := kafkautil.ReadAll(ctx, kafkatest.Conn(b.Addr), tp, func(m kafka.Message) error {
			if m.Value != nil {
				inKafka[string(m.Key)] = append(inKafka[string(m.Key)], string(m.Value))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		inStream := map[string][]string{}
		entries := 0
		for _, e := range c.XRange(ctx, "changes:"+tp, "-", "+").Val() {
			k := e.Values["key"].(string)
			inStream[k] = append(inStream[k], e.Values["value"].(string))
			entries++
		}
		for k, want := range inKafka {
			if got := inStream[k]; !slices.Equal(got, want) {
				t.Fatalf("%s key %s: stream holds %d entries, Kafka %d messages (or their order differs)", tp, k, len(got), len(want))
			}
		}
		if len(inStream) != len(inKafka) {
			t.Fatalf("%s: stream has %d keys, Kafka %d", tp, len(inStream), len(inKafka))
		}
		t.Logf("%s: %d stream entries, one per Kafka change event", tp, entries)
	}
	redisCheckHashView(t, ctx, c, topics, redisExpectedViews(gcfg, total))
}

// redisAheadOfKafka returns how many messages the sink applied (offsets stored
// in Redis) beyond what its consumer group committed to Kafka.
func redisAheadOfKafka(t *testing.T, broker, group string, stored map[string]string) int64 {
	t.Helper()
	req := &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{}}
	for f := range stored {
		i := strings.LastIndexByte(f, '/')
		p, _ := strconv.Atoi(f[i+1:])
		req.Topics[f[:i]] = append(req.Topics[f[:i]], p)
	}
	client := kafkatest.Conn(broker).Client()
	resp, err := client.OffsetFetch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var ahead int64
	for topic, parts := range resp.Topics {
		for _, p := range parts {
			off, _ := strconv.ParseInt(stored[topic+"/"+strconv.Itoa(p.Partition)], 10, 64)
			committed := max(p.CommittedOffset, 0) // next offset to read
			ahead += off + 1 - committed
		}
	}
	return ahead
}

func redisDistinctSeqs(ctx context.Context, c *goredis.Client, topics []string) (n, distinct int) {
	seen := map[int64]bool{}
	for _, tp := range topics {
		for _, e := range c.XRange(ctx, "changes:"+tp, "-", "+").Val() {
			m := cdc.Message{Topic: tp, Key: []byte(e.Values["key"].(string)), Value: []byte(e.Values["value"].(string))}
			rec, _ := m.Decode()
			seq, _ := rec.Source.Extra.Value("seq").(json.Number).Int64()
			seen[seq] = true
			n++
		}
	}
	return n, len(seen)
}

// redisEndOffsets returns, per "topic/partition", the offset of the last
// message in Kafka, as the redis sink stores it.
func redisEndOffsets(t *testing.T, broker string, topics []string) map[string]string {
	t.Helper()
	client := kafkatest.Conn(broker).Client()
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, tp := range topics {
		parts, err := kafkautil.Partitions(context.Background(), client, tp)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			req.Topics[tp] = append(req.Topics[tp], kafka.LastOffsetOf(p))
		}
	}
	resp, err := client.ListOffsets(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for tp, parts := range resp.Topics {
		for _, p := range parts {
			if p.LastOffset > 0 {
				out[tp+"/"+strconv.Itoa(p.Partition)] = strconv.FormatInt(p.LastOffset-1, 10)
			}
		}
	}
	return out
}

// TestRedisClusterView runs generator → Kafka → a hash view in the Redis
// Cluster of scripts/redis-cluster.sh, kills connectd -9 mid-run, restarts
// it and checks that the view equals the generator's final state: cluster
// mode is at-least-once, and the hash format makes replays harmless.
func TestRedisClusterView(t *testing.T) {
	t.Parallel()
	addrs := redisCluster(t)
	dir := t.TempDir()
	b := kafkatest.StartProcess(t, connectdBin, filepath.Join(dir, "broker"), "127.0.0.1:0")
	prefix := fmt.Sprintf("rc%d", time.Now().UnixNano())
	const total = 24000
	gcfg := generator.Config{TopicPrefix: prefix, Tables: []string{"inv.items", "inv.orders"}, Keys: 500, Total: total, Rate: 8000}
	topics := []string{prefix + ".inv.items", prefix + ".inv.orders"}
	config := filepath.Join(dir, "pipeline.yaml")
	redisWriteFile(t, config, fmt.Sprintf(`kafka: {brokers: [%q], topic_partitions: 3}
worker: {data_dir: %s/data, http: "off", offset_flush_interval: 200ms}
sources:
  - name: gen
    type: generator
    config: {topic_prefix: %s, tables: [inv.items, inv.orders], keys: 500, total: %d, rate: 8000}
sinks:
  - name: %s-view
    type: redis
    topics: [%s, %s]
    config: {cluster_addrs: [%s], key: "{$topic}:{id}", fields: [id, name, qty, price, status, version], rename: {qty: quantity}, batch_size: 500}
`, b.Addr, dir, prefix, total, prefix, topics[0], topics[1], strings.Join(addrs, ", ")))
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs, DisableIdentity: true})
	defer c.Close()
	ctx := context.Background()
	offsetsKey := "connectd:offsets:" + prefix + "-view"
	t.Cleanup(func() {
		for _, tp := range topics {
			_ = c.ForEachMaster(ctx, func(ctx context.Context, node *goredis.Client) error {
				it := node.Scan(ctx, 0, tp+":*", 1000).Iterator()
				for it.Next(ctx) {
					node.Del(ctx, it.Val())
				}
				return it.Err()
			})
		}
		c.Del(ctx, offsetsKey)
	})
	applied := func() int64 {
		var n int64
		for _, v := range c.HGetAll(ctx, offsetsKey).Val() {
			o, _ := strconv.ParseInt(v, 10, 64)
			n += o + 1
		}
		return n
	}

	p := runConnectd(t, config)
	waitFor(t, "progress in the cluster", 60*time.Second, func() bool { return applied() > 6000 })
	p.stop(t, syscall.SIGKILL, 5*time.Second)
	if applied() >= total {
		t.Fatal("the run finished before the kill: the test would prove nothing")
	}
	p = runConnectd(t, config)
	waitFor(t, "the generator to finish", 120*time.Second, func() bool {
		out, _ := exec.Command(connectdBin, "offsets", "get", "gen", "-c", config).Output()
		return strings.Contains(string(out), fmt.Sprintf(`"seq":%d`, total))
	})
	end := redisEndOffsets(t, b.Addr, topics)
	waitFor(t, "the view at the end of its topics", 120*time.Second, func() bool {
		return maps.Equal(c.HGetAll(ctx, offsetsKey).Val(), end)
	})
	if code := p.stop(t, syscall.SIGTERM, 15*time.Second); code != 0 {
		t.Fatalf("exit code %d; output:\n%s", code, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "at-least-once (cluster)") {
		t.Errorf("the sink did not say it runs at-least-once in cluster mode:\n%s", p.stderr)
	}
	redisCheckHashView(t, ctx, c, topics, redisExpectedViews(gcfg, total))
}

// TestRedisBadRecordsGoToTheDeadLetterTopic puts messages the redis sink
// cannot apply (a plain string, an event without the key template's field)
// between good ones: with errors.tolerance all they land in the dead
// letter topic with their coordinates, and the good ones in Redis.
func TestRedisBadRecordsGoToTheDeadLetterTopic(t *testing.T) {
	t.Parallel()
	info := startRedisServer(t, "--appendonly", "no")
	dir := t.TempDir()
	b := kafkatest.StartProcess(t, connectdBin, filepath.Join(dir, "broker"), "127.0.0.1:0")
	ctx := context.Background()
	conn := kafkatest.Conn(b.Addr)
	const topic = "bad.shop.customers"
	if err := kafkautil.EnsureTopics(ctx, conn.Client(), kafkautil.Topic{Name: topic, Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	ev := func(after string) []byte {
		return []byte(`{"before":null,"after":` + after + `,"source":{"connector":"test"},"op":"c","ts_ms":1}`)
	}
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr), Topic: topic, BatchSize: 4, BatchTimeout: time.Millisecond, Transport: conn.Transport()}
	defer w.Close()
	err := w.WriteMessages(ctx,
		kafka.Message{Key: []byte(`{"id":1}`), Value: ev(`{"id":1,"email":"a@x"}`)},
		kafka.Message{Key: []byte(`{"id":2}`), Value: []byte(`hello`)},
		kafka.Message{Key: []byte(`{"pk":3}`), Value: ev(`{"pk":3,"email":"c@x"}`)},
		kafka.Message{Key: []byte(`{"id":4}`), Value: ev(`{"id":4,"email":"d@x"}`)},
	)
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "pipeline.yaml")
	redisWriteFile(t, config, fmt.Sprintf(`kafka: {brokers: [%q]}
worker: {data_dir: %s/data, http: "off"}
sinks:
  - name: customers
    type: redis
    topics: [%s]
    config: {addr: %q, key: "customer:{id}", fields: [email]}
    errors: {tolerance: all, dead_letter_topic: dlq.customers}
`, b.Addr, dir, topic, info.Addr))
	c := goredis.NewClient(&goredis.Options{Addr: info.Addr, DisableIdentity: true})
	defer c.Close()
	p := runConnectd(t, config)
	waitFor(t, "the good records in Redis", 30*time.Second, func() bool {
		return c.HGet(ctx, "customer:4", "email").Val() == "d@x"
	})
	var dead []string
	waitFor(t, "two records in the dead letter topic", 30*time.Second, func() bool {
		dead = dead[:0]
		_ = kafkautil.ReadAll(ctx, conn, "dlq.customers", func(m kafka.Message) error {
			h := map[string]string{}
			for _, x := range m.Headers {
				h[x.Key] = string(x.Value)
			}
			dead = append(dead, h["__connect.errors.offset"]+":"+h["__connect.errors.exception.message"])
			return nil
		})
		return len(dead) == 2
	})
	if code := p.stop(t, syscall.SIGTERM, 15*time.Second); code != 0 {
		t.Fatalf("exit code %d; output:\n%s", code, p.stderr)
	}
	slices.Sort(dead) // the dead letter topic may have several partitions
	if !strings.HasPrefix(dead[0], "1:") || !strings.Contains(dead[0], "decoding value") ||
		!strings.HasPrefix(dead[1], "2:") || !strings.Contains(dead[1], `field "id" is absent`) {
		t.Fatalf("dead letters = %q", dead)
	}
	if got := c.HGetAll(ctx, "customer:1").Val(); got["email"] != "a@x" || len(got) != 1 {
		t.Fatalf("customer:1 = %v", got)
	}
}
