package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/connectd/connectd/internal/kafkatest"
	"github.com/connectd/connectd/internal/kafkautil"
)

// TestOutboxFromPostgres runs Debezium's outbox pattern end to end: an
// application writes an order and an outbox row in one transaction (and
// deletes the outbox row right after, as applications do); connectd's
// postgres source with the outbox transform turns each outbox insert into
// an event on outbox.event.<aggregatetype>, keyed by aggregate id, with
// id and type headers, while the orders table flows unchanged.
func TestOutboxFromPostgres(t *testing.T) {
	e := newPGEnv(t, "obx")
	ctx, conn, exec := context.Background(), e.conn, func(sql string, args ...any) { t.Helper(); e.exec(sql, args...) }
	schema, slot, pub := e.schema("obx"), e.slot, e.pub
	exec("CREATE TABLE " + schema + ".orders (id int PRIMARY KEY, customer text, total numeric(10,2))")
	exec("CREATE TABLE " + schema + ".outbox (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), aggregatetype text NOT NULL, aggregateid text NOT NULL, type text NOT NULL, payload jsonb)")

	dir := t.TempDir()
	broker := kafkatest.StartProcess(t, connectdBin, filepath.Join(dir, "broker"), "127.0.0.1:0")
	config := filepath.Join(dir, "pipeline.yaml")
	yaml := fmt.Sprintf(`kafka: {brokers: [%q], topic_partitions: 1}
worker: {data_dir: %s/data, http: "off"}
sources:
  - name: app
    type: postgres
    config: {dsn: %q, slot: %s, publication: %s, topic_prefix: app, include_tables: ["%s\\..*"], snapshot_mode: never}
    transforms:
      - type: outbox
        if: {topic_matches: 'app\.%s\.outbox'}
`, broker.Addr, dir, e.dsn, slot, pub, schema, schema)
	if err := os.WriteFile(config, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p := runConnectd(t, config)
	// Wait until the slot exists (the source streams from it).
	waitFor(t, "the replication slot", 30*time.Second, func() bool {
		var n int
		_ = conn.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND active", slot).Scan(&n)
		return n == 1
	})
	for i := 1; i <= 5; i++ {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = tx.Exec(ctx, "INSERT INTO "+schema+".orders VALUES ($1, $2, $3)", i, fmt.Sprint("cust-", i%2), float64(i)*10.5)
		_, err = tx.Exec(ctx, "INSERT INTO "+schema+".outbox (aggregatetype, aggregateid, type, payload) VALUES ('order', $1, 'OrderCreated', $2)",
			fmt.Sprint(i), fmt.Sprintf(`{"orderId": %d, "total": %v}`, i, float64(i)*10.5))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = tx.Exec(ctx, "DELETE FROM "+schema+".outbox")
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	conn2 := kafkatest.Conn(broker.Addr)
	read := func(topic string) []kafka.Message {
		var out []kafka.Message
		_ = kafkautil.ReadAll(ctx, conn2, topic, func(m kafka.Message) error { out = append(out, m); return nil })
		return out
	}
	var events []kafka.Message
	waitFor(t, "five outbox events", 30*time.Second, func() bool { events = read("outbox.event.order"); return len(events) >= 5 })
	waitFor(t, "five orders", 30*time.Second, func() bool { return len(read("app."+schema+".orders")) >= 5 })
	if code := p.stop(t, syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.stderr)
	}
	if len(events) != 5 {
		t.Fatalf("%d outbox events, want 5 (deletes must not produce events)", len(events))
	}
	for i, m := range events {
		if string(m.Key) != fmt.Sprintf(`{"aggregateid":"%d"}`, i+1) {
			t.Errorf("event %d key %s", i, m.Key)
		}
		var v map[string]any
		if err := json.Unmarshal(m.Value, &v); err != nil || v["orderId"] != float64(i+1) {
			t.Errorf("event %d value %s (%v): want the payload object", i, m.Value, err)
		}
		hs := map[string]string{}
		for _, h := range m.Headers {
			hs[h.Key] = string(h.Value)
		}
		if hs["type"] != "OrderCreated" || len(hs["id"]) != 36 {
			t.Errorf("event %d headers %v: want type and the outbox row's uuid id", i, hs)
		}
	}
	if n := len(read("app." + schema + ".outbox")); n != 0 {
		t.Errorf("the outbox table's own changes reached Kafka (%d records)", n)
	}
}
