package cdc

import "context"

// ConfigDecoder decodes a connector's or transform's own configuration
// block into a struct with `yaml` tags. Implementations report unknown keys
// and wrong types with their position in the config file.
type ConfigDecoder interface {
	Decode(out any) error
	// Errorf returns an error positioned at the value of key (or at the
	// block itself when key is ""), for problems Decode cannot see, such as
	// a value out of range.
	Errorf(key, format string, args ...any) error
}

// Source turns a database (or a generator) into change records.
//
// The runtime calls Open once, then Read repeatedly from one goroutine. Ack
// may run concurrently with Read. Close is called once, after Read has
// returned, whatever happened before.
type Source interface {
	// Open connects and prepares to read changes after pos. A nil pos means
	// the source has never committed: start as its snapshot mode says.
	Open(ctx context.Context, pos Position) error
	// Read blocks until at least one record is available, ctx is done, or a
	// fatal error happens. Records come in source order. When ctx is done,
	// Read returns ctx.Err() and no records.
	Read(ctx context.Context) ([]Record, error)
	// Ack says that every record up to and including the one carrying pos is
	// durable in Kafka and its position is stored. Acks arrive in read order.
	// Sources that hold server-side state (a replication slot) release it
	// here, and never further than pos.
	Ack(ctx context.Context, pos Position) error
	// Close releases everything Open acquired, waiting at most until ctx
	// is done.
	Close(ctx context.Context) error
}

// ServerNamer is implemented by sources whose offsets are keyed by a
// logical server name (the topic prefix) rather than the connector name:
// the offset key becomes ["<connector>",{"server":"<ServerName()>"}].
type ServerNamer interface {
	ServerName() string
}

// Sink applies change events from Kafka to a store.
//
// The runtime calls Open once, then Write from one goroutine, then Close.
type Sink interface {
	// Open connects to the store.
	Open(ctx context.Context) error
	// Write applies batch in order and returns how many messages, from the
	// start of batch, are durable in the store. n < len(batch) implies
	// err != nil. Write must be idempotent under replay: after a crash the
	// runtime re-delivers everything after the last committed offset.
	Write(ctx context.Context, batch []Message) (n int, err error)
	// Close flushes and releases the store, waiting at most until ctx is
	// done.
	Close(ctx context.Context) error
}

// Transform reshapes records in flight.
//
// Apply must not mutate rec or anything it points to (copy a Row with Clone
// before changing it), and must be deterministic: after a restart the same
// input is transformed again and must give the same output. It returns zero
// records to drop rec, one to replace it, or several to fan out.
type Transform interface {
	Apply(rec Record) ([]Record, error)
}

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int
}

// OffsetStorer is implemented by sinks that store, atomically with their
// writes, the offset of the last message they applied in each topic
// partition (a Redis MULTI/EXEC, a database transaction). After Open the
// runtime asks for those offsets and skips every message at or below them,
// so re-delivery after a crash changes nothing: the view is effectively
// once, not merely at least once.
type OffsetStorer interface {
	// StoredOffsets returns the offset of the last applied message per
	// topic partition; partitions never written are absent.
	StoredOffsets(ctx context.Context) (map[TopicPartition]int64, error)
}
