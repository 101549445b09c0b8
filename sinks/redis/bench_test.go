package redis

import (
	"context"
	"testing"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/integration/servers"
	"github.com/connectd/connectd/sources/generator"
)

// BenchmarkWriteHash measures Write of generator change events (7
// columns) into a 5-field hash view, without Kafka.
func BenchmarkWriteHash(b *testing.B) {
	info := servers.Redis(b)
	name := unique(b)
	cleanup(b, info.Addr, name)
	s := openSink(b, info.Addr, name, `key: "`+name+`:{id}", fields: [name, qty, price, status, version]`)
	var msgs []cdc.Message
	var off int64
	generator.Replay(generator.Config{TopicPrefix: "bench", Keys: 100000, Total: 20000}, 20000, func(r cdc.Record) {
		k, _ := cdc.AppendKey(nil, &r)
		v, _ := cdc.AppendValue(nil, &r)
		msgs = append(msgs, cdc.Message{Topic: r.Topic, Key: k, Value: v})
	})
	b.ResetTimer()
	for i := 0; i < b.N; i += 2000 {
		batch := msgs[(i % len(msgs)):][:2000]
		for j := range batch {
			batch[j].Offset = off
			off++
		}
		if _, err := s.Write(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
}
