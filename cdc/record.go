package cdc

import (
	"fmt"
	"time"
)

// Op is the kind of change a record describes. Its value is the letter used
// in Debezium's "op" field.
type Op byte

// The operations of Debezium's change events.
const (
	OpCreate   Op = 'c' // a row was inserted
	OpUpdate   Op = 'u' // a row was updated
	OpDelete   Op = 'd' // a row was deleted
	OpRead     Op = 'r' // a row was read by a snapshot
	OpTruncate Op = 't' // a table was truncated
)

// String returns the Debezium letter of op.
func (op Op) String() string {
	if op.Valid() {
		return string(rune(op))
	}
	return fmt.Sprintf("Op(%d)", byte(op))
}

// Valid reports whether op is one of the defined operations.
func (op Op) Valid() bool {
	switch op {
	case OpCreate, OpUpdate, OpDelete, OpRead, OpTruncate:
		return true
	}
	return false
}

// ParseOp parses a Debezium op letter.
func ParseOp(s string) (Op, error) {
	if len(s) == 1 && Op(s[0]).Valid() {
		return Op(s[0]), nil
	}
	return 0, fmt.Errorf("%w: unknown op %q (want c, u, d, r or t)", ErrBadEvent, s)
}

// Position is a source's resume point, as the JSON object it stores in the
// offset store (Kafka Connect's "source offset"). Only the source that made
// a Position interprets it; everyone else copies it verbatim.
type Position []byte

// String returns the position's JSON text.
func (p Position) String() string { return string(p) }

// Record is one change event as a source produces it and a sink consumes it.
type Record struct {
	// Topic is the Kafka topic the record is written to. Sources set
	// "<prefix>.<db or schema>.<table>"; transforms may change it.
	Topic string
	Op    Op
	// Key holds the primary-key (or replica-identity) columns. A nil Key
	// writes a null Kafka key (keyless tables, truncate events).
	Key Row
	// Before is the row before the change (updates with a full old image,
	// deletes); After is the row after it (creates, reads, updates).
	Before, After Row
	Source        SourceInfo
	// Time is when connectd processed the change (the envelope's ts_ms).
	Time        time.Time
	Transaction *Transaction
	Headers     []Header
	// Tombstone marks the null-valued record that follows a delete so that
	// compaction can drop the key. Only Key (and Topic) are meaningful.
	Tombstone bool
	// Flat encodes the value as the After row alone, a plain JSON object
	// (null when After is nil), instead of the change-event envelope: the
	// shape of Debezium's ExtractNewRecordState. Op and Before are then not
	// written.
	Flat bool
	// Position is where the source may resume once this record and all
	// before it are durable; nil inside a transaction.
	Position Position
	// Kafka is where the record was read from in Kafka: set on the sink
	// side, nil on the source side (before the record was written).
	Kafka *KafkaCoordinates
}

// KafkaCoordinates place a record in a Kafka topic.
type KafkaCoordinates struct {
	Partition int
	Offset    int64
	Timestamp time.Time
}

// Header is a Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

// Transaction is Debezium's "transaction" block.
type Transaction struct {
	ID                  string
	TotalOrder          int64
	DataCollectionOrder int64
}

// SourceInfo is Debezium's "source" block: where a change came from. The
// common fields are typed; connector-specific ones (MySQL server_id, file,
// pos, gtid; Postgres lsn, txId) go in Extra, in the order they are encoded.
type SourceInfo struct {
	Version   string
	Connector string // "mysql", "postgresql", "generator"
	Name      string // logical server name: the topic prefix
	TsMs      int64  // commit time at the source, milliseconds since the epoch
	// Snapshot is "true", "first", "first_in_data_collection",
	// "last_in_data_collection", "last", "incremental" or "false" ("" encodes
	// as "false").
	Snapshot string
	DB       string
	Sequence string // Postgres: JSON array of LSN strings; "" encodes null
	Schema   string // Postgres only; "" omits the field
	Table    string
	Extra    Row
}

// Message is a record as stored in a Kafka topic, seen by a sink: raw key
// and value bytes plus where they sit in the log. Decode turns it into a
// Record when a sink needs the structure.
type Message struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte // nil for a tombstone
	Headers   []Header
	Time      time.Time
}

// IsTombstone reports whether m has a null value.
func (m *Message) IsTombstone() bool { return m.Value == nil }
