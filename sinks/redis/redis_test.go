package redis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/integration/servers"
	"github.com/connectd/connectd/sinks/view"
)

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, config string
		want         []string
	}{
		{name: "nothing", config: "", want: []string{"addr (host:port of a standalone Redis) or cluster_addrs", "key is required"}},
		{name: "both addrs", config: `addr: "a:1", cluster_addrs: ["b:2"], key: "k:{id}"`, want: []string{"not both"}},
		{name: "bad addr and format", config: `addr: nohost, key: "k:{id}", format: xml`, want: []string{`addr "nohost": want host:port`, `unknown format "xml"`}},
		{name: "template syntax", config: `addr: "a:1", key: "k:{id"`, want: []string{"has no closing '}'"}},
		{name: "constant key", config: `addr: "a:1", key: "all"`, want: []string{"names no field"}},
		{name: "string needs value_field", config: `addr: "a:1", key: "k:{id}", format: string`, want: []string{"format string needs value_field"}},
		{name: "value_field outside fields", config: `addr: "a:1", key: "k:{id}", format: string, value_field: x, fields: [id]`, want: []string{`value_field "x" is not one of fields`}},
		{name: "value_field on hash", config: `addr: "a:1", key: "k:{id}", value_field: x`, want: []string{"value_field applies to format string only"}},
		{name: "stream in cluster", config: `cluster_addrs: ["a:1"], key: "s", format: stream`, want: []string{"format stream needs a standalone Redis"}},
		{name: "stream projection", config: `addr: "a:1", key: "s", format: stream, fields: [id]`, want: []string{"stream entries carry the whole change event"}},
		{name: "cluster db", config: `cluster_addrs: ["a:1"], key: "k:{id}", db: 2`, want: []string{"db must be 0 with cluster_addrs"}},
		{name: "numbers", config: `addr: "a:1", key: "k:{id}", ttl: -1s, batch_size: -1, db: -1`, want: []string{"ttl must be >= 0", "batch_size must be > 0", "db must be >= 0"}},
		{name: "projection", config: `addr: "a:1", key: "k:{id}", fields: [a], exclude_fields: [b], rename: {c: d}`, want: []string{"not both", `"c" is not one of fields`}},
		{name: "unknown key", config: `addr: "a:1", key: "k:{id}", fromat: hash`, want: []string{"fromat"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := New(decoder(t, tt.config), "s", nil)
			if err == nil || s != nil {
				t.Fatalf("New accepted %q", tt.config)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), "test.yaml:") {
				t.Errorf("error %q has no position", err)
			}
		})
	}
}

func TestPasswordNeverInErrors(t *testing.T) {
	t.Parallel()
	r := startRedis(t, "--requirepass", "right-secret")
	s, err := New(decoder(t, `addr: "`+r.Addr+`", password: "wrong-secret", key: "k:{id}"`), "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Open(context.Background())
	if err == nil || !cdc.IsTerminal(err) || !strings.Contains(err.Error(), "WRONGPASS") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("Open with a wrong password = %v; want a terminal WRONGPASS error without the password", err)
	}
	s2, _ := New(decoder(t, `addr: "`+r.Addr+`", key: "k:{id}"`), "s", nil)
	if err := s2.Open(context.Background()); err == nil || !cdc.IsTerminal(err) {
		t.Fatalf("Open without a password = %v; want a terminal NOAUTH error", err)
	}
	ok := openSink(t, r.Addr, "s", `password: "right-secret", key: "k:{id}"`)
	b := &batcher{topic: "t"}
	write(t, ok, b.change("c", "1", "null", `{"id":1}`))
}

func TestHashView(t *testing.T) {
	t.Parallel()
	info := servers.Redis(t)
	name := unique(t)
	cleanup(t, info.Addr, name)
	s := openSink(t, info.Addr, name, `key: "`+name+`:{id}", fields: [id, name, email, big, blob], rename: {email: mail}, batch_size: 3`)
	c := client(t, info.Addr)
	ctx := context.Background()
	b := &batcher{topic: "shop.s.customers"}
	k1, k2 := name+":1", name+":2"

	write(t, s,
		b.change("r", "1", "null", `{"id":1,"name":"Ann","email":"a@x","big":12345678901234567890.000001,"blob":"B","secret":"s"}`),
		b.change("c", "2", "null", `{"id":2,"name":"Bob","email":null,"big":1,"blob":"C"}`),
	)
	if got := hgetall(t, c, k1); got != "big=12345678901234567890.000001 blob=B id=1 mail=a@x name=Ann" {
		t.Fatalf("after snapshot read: %s", got)
	}
	if got := hgetall(t, c, k2); got != "big=1 blob=C id=2 name=Bob" {
		t.Fatalf("NULL stored: %s", got)
	}
	// Update: email becomes NULL (HDEL), blob is unchanged TOAST (kept).
	write(t, s, b.change("u", "1", "null", `{"id":1,"name":"Ann B","email":null,"big":2,"blob":"__debezium_unavailable_value"}`))
	if got := hgetall(t, c, k1); got != "big=2 blob=B id=1 name=Ann B" {
		t.Fatalf("after update: %s", got)
	}
	// Delete, tombstone; create again then tombstone only.
	write(t, s, b.change("d", "1", `{"id":1}`, "null"), b.tombstone("1"), b.tombstone("2"))
	if n := c.Exists(ctx, k1, k2).Val(); n != 0 {
		t.Fatalf("%d keys left after delete and tombstone", n)
	}
	// The offsets hash says how far the view is.
	if got := hgetall(t, c, OffsetsKeyPrefix+name); got != "shop.s.customers/0=5" {
		t.Fatalf("offsets hash: %s", got)
	}
}

func TestJSONAndStringViews(t *testing.T) {
	t.Parallel()
	info := servers.Redis(t)
	name := unique(t)
	cleanup(t, info.Addr, name)
	js := openSink(t, info.Addr, name+"-j", `key: "`+name+`:j:{id}", format: json, exclude_fields: [secret]`)
	st := openSink(t, info.Addr, name+"-s", `key: "`+name+`:s:{id}", format: string, value_field: email, ttl: 1h`)
	c := client(t, info.Addr)
	ctx := context.Background()
	b := &batcher{topic: "shop.s.customers"}
	msgs := []cdc.Message{
		b.change("c", "1", "null", `{"id":1,"name":"Ann","email":"a@x","big":0.10,"blob":"long","secret":"s"}`),
		// Unchanged TOAST merged from the batch's own earlier write…
		b.change("u", "1", "null", `{"id":1,"name":"Ann","email":"a@y","big":0.10,"blob":"__debezium_unavailable_value","secret":"s"}`),
	}
	write(t, js, msgs...)
	write(t, st, msgs...)
	// …and from the stored document in a later batch.
	m := b.change("u", "1", "null", `{"id":1,"name":"Ann","email":null,"big":1e400,"blob":"__debezium_unavailable_value","secret":"s"}`)
	write(t, js, m)
	if got := c.Get(ctx, name+":j:1").Val(); got != `{"id":1,"name":"Ann","big":1e400,"blob":"long"}` {
		t.Fatalf("json document: %s", got)
	}
	if got := c.Get(ctx, name+":s:1").Val(); got != "a@y" {
		t.Fatalf("string value: %q", got)
	}
	if ttl := c.PTTL(ctx, name+":s:1").Val(); ttl < 59*time.Minute {
		t.Fatalf("PTTL = %s, want about 1h", ttl)
	}
	write(t, st, m) // NULL value_field deletes the key
	if c.Exists(ctx, name+":s:1").Val() != 0 {
		t.Fatal("string key kept after its field became NULL")
	}
}

func TestKeyChangeRemovesOldKey(t *testing.T) {
	t.Parallel()
	info := servers.Redis(t)
	name := unique(t)
	cleanup(t, info.Addr, name)
	s := openSink(t, info.Addr, name, `key: "`+name+`:{email}"`)
	c := client(t, info.Addr)
	b := &batcher{topic: "t"}
	write(t, s,
		b.change("c", "1", "null", `{"id":1,"email":"a@x"}`),
		b.change("u", "1", `{"id":1,"email":"a@x"}`, `{"id":1,"email":"b@x"}`))
	if got := c.Keys(context.Background(), name+":*").Val(); len(got) != 1 || got[0] != name+":b@x" {
		t.Fatalf("keys = %v, want only the new one", got)
	}
}

func TestStreamIsEffectivelyOnce(t *testing.T) {
	t.Parallel()
	info := servers.Redis(t)
	name := unique(t)
	cleanup(t, info.Addr, name)
	cfg := `key: "` + name + `:{$topic}", format: stream, batch_size: 2`
	s := openSink(t, info.Addr, name, cfg)
	c := client(t, info.Addr)
	ctx := context.Background()
	b := &batcher{topic: "inv.items"}
	batch := []cdc.Message{
		b.change("c", "1", "null", `{"id":1}`),
		b.change("d", "1", `{"id":1}`, "null"),
		b.tombstone("1"),
		b.change("c", "2", "null", `{"id":2}`),
	}
	write(t, s, batch...)
	stream := name + ":inv.items"
	if n := c.XLen(ctx, stream).Val(); n != 3 {
		t.Fatalf("XLEN = %d, want 3 (tombstones add nothing)", n)
	}
	e := c.XRange(ctx, stream, "-", "+").Val()[0]
	if e.Values["key"] != `{"id":1}` || !strings.Contains(e.Values["value"].(string), `"op":"c"`) {
		t.Fatalf("entry = %v", e.Values)
	}
	// A restarted sink (a crash before the Kafka commit) is given the same
	// messages again: it knows it applied them.
	s2 := openSink(t, info.Addr, name, cfg)
	off, err := s2.StoredOffsets(ctx)
	if err != nil || off[cdc.TopicPartition{Topic: "inv.items"}] != 3 {
		t.Fatalf("StoredOffsets = %v, %v", off, err)
	}
	more := b.change("c", "3", "null", `{"id":3}`)
	write(t, s2, append(batch, more)...)
	if n := c.XLen(ctx, stream).Val(); n != 4 {
		t.Fatalf("XLEN after replay = %d, want 4", n)
	}
}

func TestBadMessagesStopAtTheirOffset(t *testing.T) {
	t.Parallel()
	info := servers.Redis(t)
	name := unique(t)
	cleanup(t, info.Addr, name)
	s := openSink(t, info.Addr, name, `key: "`+name+`:{id}:{region}"`)
	c := client(t, info.Addr)
	tests := []struct {
		name string
		bad  func(b *batcher) cdc.Message
		want string
	}{
		{name: "plain string", bad: func(b *batcher) cdc.Message { return b.raw(`{"id":1}`, "hello") }, want: "bad change event: decoding value at bad.topic[0]@1"},
		{name: "missing field", bad: func(b *batcher) cdc.Message { return b.change("c", "2", "null", `{"id":2}`) }, want: `bad.topic[0]@1: rendering the key: key template "` + name + `:{id}:{region}": field "region" is absent from the key and the row of a record of topic bad.topic`},
		{name: "no after", bad: func(b *batcher) cdc.Message { return b.change("u", "2", "null", "null") }, want: `has no "after" row`},
	}
	for _, tt := range tests {
		b := &batcher{topic: "bad.topic"}
		good := b.change("c", "1", "null", `{"id":1,"region":"eu"}`)
		n, err := s.Write(context.Background(), []cdc.Message{good, tt.bad(b), b.change("c", "3", "null", `{"id":3,"region":"eu"}`)})
		if n != 1 || !cdc.IsTerminal(err) || !cdc.IsBadRecord(err) || !strings.Contains(err.Error(), tt.want) {
			t.Fatalf("%s: Write = %d, %v; want 1 and a terminal error containing %q", tt.name, n, err, tt.want)
		}
		if tt.name == "missing field" && !errors.Is(err, view.ErrMissingField) {
			t.Fatalf("err does not wrap view.ErrMissingField")
		}
	}
	if c.Exists(context.Background(), name+":1:eu").Val() != 1 || c.Exists(context.Background(), name+":3:eu").Val() != 0 {
		t.Fatal("the message before the bad one must be written, the one after it not")
	}
}

func TestRefusesClusterNodeAsAddr(t *testing.T) {
	t.Parallel()
	r := startRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes-"+unique(t)+".conf")
	s, _ := New(decoder(t, `addr: "`+r.Addr+`", key: "k:{id}"`), "s", nil)
	if err := s.Open(context.Background()); !errors.Is(err, ErrRedisCluster) || !cdc.IsTerminal(err) {
		t.Fatalf("Open = %v, want ErrRedisCluster", err)
	}
}

// TestRetriesThroughRestartAndOOM restarts Redis under a Write, then
// refuses writes for memory (maxmemory), and checks that Write waits,
// retries and finally writes everything, skipping nothing.
func TestRetriesThroughRestartAndOOM(t *testing.T) {
	t.Parallel()
	r := startRedis(t)
	s := openSink(t, r.Addr, "s", `key: "k", format: stream`)
	b := &batcher{topic: "t"}
	write(t, s, b.change("c", "1", "null", `{"id":1}`))

	r.Kill()
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		time.Sleep(700 * time.Millisecond)
		r.Start()
	}()
	write(t, s, b.change("c", "2", "null", `{"id":2}`))
	<-restarted
	c := client(t, r.Addr)
	ctx := context.Background()
	// The restarted server has no data (no persistence): only entry 2.
	if n := c.XLen(ctx, "k").Val(); n != 1 {
		t.Fatalf("XLEN after restart = %d, want 1; offsets %s; keys %v", n, hgetall(t, c, OffsetsKeyPrefix+"s"), c.Keys(ctx, "*").Val())
	}

	if err := c.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	freed := make(chan struct{})
	go func() {
		defer close(freed)
		time.Sleep(700 * time.Millisecond)
		_ = c.ConfigSet(ctx, "maxmemory", "0").Err()
	}()
	defer func() { <-freed }()
	start := time.Now()
	write(t, s, b.change("c", "3", "null", `{"id":3}`), b.change("c", "4", "null", `{"id":4}`))
	if time.Since(start) < 500*time.Millisecond {
		t.Fatal("Write did not wait for memory")
	}
	if n := c.XLen(ctx, "k").Val(); n != 3 {
		t.Fatalf("XLEN after OOM = %d, want 3", n)
	}
}

// TestPartitionsAndPartialFailure writes a batch mixing partitions, one of
// which holds a bad message: Write reports the messages before it, in batch
// order, as durable, and a retry of the rest applies each message once.
func TestPartitionsAndPartialFailure(t *testing.T) {
	t.Parallel()
	info := servers.Redis(t)
	name := unique(t)
	cleanup(t, info.Addr, name)
	s := openSink(t, info.Addr, name, `key: "`+name+`:{$topic}", format: stream, batch_size: 2`)
	for len(s.workers) < 3 { // several workers even on one CPU
		s.workers = append(s.workers, &worker{Sink: s, applied: map[cdc.TopicPartition]int64{}, truncWarned: map[string]bool{}, names: map[string]any{}})
	}
	var batch []cdc.Message
	bs := []*batcher{{topic: "p"}, {topic: "p"}, {topic: "p"}}
	for i := range 12 {
		p := i % 3
		m := bs[p].change("c", "1", "null", `{"id":1}`)
		m.Partition = p
		if i == 7 {
			m.Value = []byte("not an event")
		}
		batch = append(batch, m)
	}
	n, err := s.Write(context.Background(), batch)
	if n != 7 || !cdc.IsTerminal(err) || !strings.Contains(err.Error(), "p[1]@2") {
		t.Fatalf("Write = %d, %v; want 7 and the error of p[1]@2", n, err)
	}
	batch[7].Value = batch[6].Value
	write(t, s, batch[n:]...) // the runtime re-delivers from the first message not durable
	c := client(t, info.Addr)
	if got := c.XLen(context.Background(), name+":p").Val(); got != 12 {
		t.Fatalf("XLEN = %d, want 12: each message once", got)
	}
	if got := hgetall(t, c, OffsetsKeyPrefix+name); got != "p/0=3 p/1=3 p/2=3" {
		t.Fatalf("offsets = %s", got)
	}
}

func TestHashAndStreamTTL(t *testing.T) {
	t.Parallel()
	info := servers.Redis(t)
	name := unique(t)
	cleanup(t, info.Addr, name)
	h := openSink(t, info.Addr, name+"-h", `key: "`+name+`:h:{id}", ttl: 90s`)
	st := openSink(t, info.Addr, name+"-s", `key: "`+name+`:s", format: stream, ttl: 90s`)
	c := client(t, info.Addr)
	b := &batcher{topic: "t"}
	m := b.change("c", "1", "null", `{"id":1,"a":"x"}`)
	write(t, h, m)
	write(t, st, m)
	for _, k := range []string{name + ":h:1", name + ":s"} {
		if ttl := c.PTTL(context.Background(), k).Val(); ttl < 85*time.Second || ttl > 90*time.Second {
			t.Errorf("PTTL %s = %s, want about 90s", k, ttl)
		}
	}
}
