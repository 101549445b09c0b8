package offsets

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/internal/kafkautil"
	"github.com/connectd/connectd/runtime/broker"
)

func TestKeyIsKafkaConnectLayout(t *testing.T) {
	t.Parallel()
	k := Key{Connector: "shop", Server: "shop-prefix"}
	b, _ := json.Marshal(k)
	if string(b) != `["shop",{"server":"shop-prefix"}]` {
		t.Fatalf("key = %s", b)
	}
	var back Key
	if err := json.Unmarshal(b, &back); err != nil || back != k {
		t.Fatalf("round trip = %+v, %v", back, err)
	}
	for _, bad := range []string{`{}`, `["a"]`, `["a",{"db":"x"}]`, `[1,{"server":"x"}]`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("%s decoded without error", bad)
		}
	}
}

type store interface {
	Get(context.Context, Key) (cdc.Position, error)
	Put(context.Context, Key, cdc.Position) error
	List(context.Context) ([]Entry, error)
	Close() error
}

// exercise writes, overwrites and deletes positions; reopen must see the
// final state.
func exercise(t *testing.T, s store) {
	t.Helper()
	ctx := context.Background()
	a, b := Key{"gen", "demo"}, Key{"pg", "billing"}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Put(ctx, a, cdc.Position(`{"seq":1}`)))
	must(s.Put(ctx, a, cdc.Position(`{"seq":2}`)))
	must(s.Put(ctx, b, cdc.Position(`{"lsn":"0/16B3748"}`)))
	must(s.Put(ctx, Key{"gone", "x"}, cdc.Position(`{"seq":9}`)))
	must(s.Put(ctx, Key{"gone", "x"}, nil))
	if err := s.Put(ctx, a, cdc.Position(`not json`)); err == nil {
		t.Fatal("a non-JSON position was accepted")
	}
}

func verify(t *testing.T, s store) {
	t.Helper()
	ctx := context.Background()
	if p, _ := s.Get(ctx, Key{"gen", "demo"}); string(p) != `{"seq":2}` {
		t.Fatalf("gen = %s", p)
	}
	if p, _ := s.Get(ctx, Key{"pg", "billing"}); string(p) != `{"lsn":"0/16B3748"}` {
		t.Fatalf("pg = %s", p)
	}
	if p, _ := s.Get(ctx, Key{"gone", "x"}); p != nil {
		t.Fatalf("deleted key still has %s", p)
	}
	if l, _ := s.List(ctx); len(l) != 2 || l[0].Key.Connector != "gen" {
		t.Fatalf("list = %+v", l)
	}
}

func TestFileStoreRoundTrip(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "dir", "offsets.json")
	s, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, s)
	verify(t, s)
	s2, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, s2)
	if err := os.WriteFile(path, []byte("{broken"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("corrupt file: err = %v, want one naming %s", err, path)
	}
}

func TestKafkaStoreSurvivesBrokerRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	b, err := broker.Start(broker.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	conn := kafkautil.Conn{Brokers: []string{addr}, ClientID: "test"}
	s, err := OpenKafka(ctx, conn, "connectd-offsets")
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, s)
	verify(t, s)
	_ = s.Close()
	b.Close()

	// Same data dir, same address: everything is still there.
	b2, err := broker.Start(broker.Options{DataDir: dir, Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	s2, err := OpenKafka(ctx, conn, "connectd-offsets")
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	verify(t, s2)

	// The topic is compacted, as Kafka Connect's offsets topic is.
	ti := b2.Cluster().TopicInfo("connectd-offsets")
	if ti == nil || ti.Configs["cleanup.policy"] == nil || *ti.Configs["cleanup.policy"] != "compact" {
		t.Fatalf("offsets topic configs = %+v", ti)
	}
}
