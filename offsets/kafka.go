package offsets

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/internal/kafkautil"
)

// KafkaStore keeps positions in a compacted Kafka topic in Kafka Connect's
// layout, so the same topic can be inspected with Kafka tools and read by
// any worker. Opening it reads the topic to its end; afterwards Get answers
// from memory and Put writes through synchronously (acks=all).
type KafkaStore struct {
	conn   kafkautil.Conn
	topic  string
	writer *kafka.Writer
	mu     sync.Mutex
	m      map[Key]cdc.Position
}

// OpenKafka creates topic when missing (compacted, one partition) and loads
// every position stored in it.
func OpenKafka(ctx context.Context, conn kafkautil.Conn, topic string) (*KafkaStore, error) {
	err := kafkautil.EnsureTopics(ctx, conn.Client(), kafkautil.Topic{
		Name:       topic,
		Partitions: 1,
		Configs:    map[string]string{"cleanup.policy": "compact"},
	})
	if err != nil {
		return nil, fmt.Errorf("opening offsets topic: %w", err)
	}
	s := &KafkaStore{conn: conn, topic: topic, m: map[Key]cdc.Position{}}
	err = kafkautil.ReadAll(ctx, conn, topic, func(msg kafka.Message) error {
		var k Key
		if err := json.Unmarshal(msg.Key, &k); err != nil {
			return nil // another connector family's key: not ours to read
		}
		if msg.Value == nil {
			delete(s.m, k)
		} else {
			s.m[k] = cdc.Position(msg.Value)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading offsets from %s: %w", topic, err)
	}
	s.writer = &kafka.Writer{
		Addr:         kafka.TCP(conn.Brokers...),
		Topic:        topic,
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    1,
		BatchTimeout: time.Millisecond,
		MaxAttempts:  5,
		Transport:    conn.Transport(),
	}
	return s, nil
}

// Get returns the stored position for k, or nil when none is stored.
func (s *KafkaStore) Get(_ context.Context, k Key) (cdc.Position, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k], nil
}

// Put writes pos for k and returns once Kafka acknowledged it; a nil pos
// writes a tombstone, deleting k.
func (s *KafkaStore) Put(ctx context.Context, k Key, pos cdc.Position) error {
	if err := validPosition(pos); err != nil {
		return err
	}
	key, _ := k.MarshalJSON()
	msg := kafka.Message{Key: key}
	if pos != nil {
		msg.Value = slices.Clone(pos)
	}
	if err := s.writer.WriteMessages(ctx, msg); err != nil {
		return fmt.Errorf("writing offset of %s to %s on %s: %w", k, s.topic, s.conn.Addr(), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if pos == nil {
		delete(s.m, k)
	} else {
		s.m[k] = msg.Value
	}
	return nil
}

// List returns every stored entry, ordered by key.
func (s *KafkaStore) List(context.Context) ([]Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedEntries(s.m), nil
}

// Close flushes and closes the writer.
func (s *KafkaStore) Close() error {
	if err := s.writer.Close(); err != nil {
		return fmt.Errorf("closing offsets writer: %w", err)
	}
	return nil
}
