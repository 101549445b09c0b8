package redis

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/configs"
	"github.com/connectd/connectd/integration/servers"
)

// section adapts a configs.Section to cdc.ConfigDecoder, as the runtime does.
type section struct{ s configs.Section }

func (s section) Decode(out any) error { return s.s.Decode(out) }
func (s section) Errorf(key, format string, args ...any) error {
	return s.s.Errorf(key, format, args...)
}

// decoder parses config, the body of a sink's `config:` mapping in YAML
// flow style ("addr: x, key: y").
func decoder(t testing.TB, config string) cdc.ConfigDecoder {
	t.Helper()
	yaml := "sinks:\n  - name: s\n    type: redis\n    topics: [t]\n    config: {" + config + "}\n"
	p, err := configs.Parse("test.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("parsing %q: %v", config, err)
	}
	return section{p.Sinks[0].Config}
}

var seq atomic.Int64

// unique returns a name no other test uses (keys, sink names).
func unique(t testing.TB) string {
	n := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	return fmt.Sprintf("%s-%d-%d", n, time.Now().UnixNano()%1e6, seq.Add(1))
}

// openSink builds and opens a sink on addr with config (flow-style body,
// without addr), failing the test on error.
func openSink(t testing.TB, addr, name, config string) *Sink {
	t.Helper()
	s, err := New(decoder(t, fmt.Sprintf("addr: %q, %s", addr, config)), name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func client(t testing.TB, addr string) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// batcher numbers messages of one topic partition.
type batcher struct {
	topic string
	next  int64
}

// change makes a change event with key {"id":id}; after/before are JSON
// objects or "null".
func (b *batcher) change(op, id, before, after string) cdc.Message {
	v := fmt.Sprintf(`{"before":%s,"after":%s,"source":{"connector":"test","ts_ms":1},"op":%q,"ts_ms":1}`, before, after, op)
	return b.raw(`{"id":`+id+`}`, v)
}

func (b *batcher) tombstone(id string) cdc.Message {
	m := b.raw(`{"id":`+id+`}`, "")
	m.Value = nil
	return m
}

func (b *batcher) raw(key, value string) cdc.Message {
	m := cdc.Message{Topic: b.topic, Partition: 0, Offset: b.next, Key: []byte(key), Value: []byte(value)}
	b.next++
	return m
}

func write(t testing.TB, s *Sink, msgs ...cdc.Message) {
	t.Helper()
	n, err := s.Write(context.Background(), msgs)
	if err != nil || n != len(msgs) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(msgs))
	}
}

// privateRedis is a redis-server started by a test, for faults that must
// not disturb the shared server (restarts, passwords, maxmemory).
type privateRedis struct {
	t    testing.TB
	Addr string
	args []string
	cmd  *exec.Cmd
}

// startRedis starts redis-server on a free loopback port with extra args,
// or skips the test when the Redis of scripts/services.sh is not set up.
func startRedis(t testing.TB, args ...string) *privateRedis {
	t.Helper()
	servers.Redis(t) // skips (or fails when servers are required) without Redis
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not on PATH: run scripts/services.sh start redis")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := &privateRedis{t: t, Addr: addr, args: args}
	r.Start()
	t.Cleanup(r.Kill)
	return r
}

// Start starts (or restarts) the server and waits until it answers.
func (r *privateRedis) Start() {
	r.t.Helper()
	_, port, _ := net.SplitHostPort(r.Addr)
	args := append([]string{"--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", r.t.TempDir()}, r.args...)
	r.cmd = exec.Command("redis-server", args...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not start: %v", r.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server with SIGKILL and waits for it.
func (r *privateRedis) Kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

func hgetall(t testing.TB, c *goredis.Client, key string) string {
	t.Helper()
	m, err := c.HGetAll(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// cleanup deletes, when the test ends, the keys starting with prefix and
// the offsets hashes of sinks whose name does, from the shared Redis.
func cleanup(t testing.TB, addr, prefix string) {
	t.Helper()
	t.Cleanup(func() {
		c := goredis.NewClient(&goredis.Options{Addr: addr, DisableIdentity: true})
		defer c.Close()
		ctx := context.Background()
		for _, pattern := range []string{prefix + "*", OffsetsKeyPrefix + prefix + "*"} {
			it := c.Scan(ctx, 0, pattern, 1000).Iterator()
			var keys []string
			for it.Next(ctx) {
				keys = append(keys, it.Val())
			}
			for len(keys) > 0 {
				n := min(len(keys), 1000)
				c.Del(ctx, keys[:n]...)
				keys = keys[n:]
			}
		}
	})
}
