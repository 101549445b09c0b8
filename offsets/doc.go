// Package offsets keeps source positions safe: an ordered Checkpointer that
// says which position may be committed, and the stores that hold committed
// positions (a Kafka compacted topic in Kafka Connect's layout, or a local
// file for standalone use).
//
// The Checkpointer's invariant: a position is committable only when every
// record tracked before it, and the record that carries it, has been
// acknowledged. Acknowledgements may arrive in any order; the committable
// position never moves past a gap, and never moves backwards. Tracking
// blocks once a bounded number of records is in flight, which is how a fast
// source feels a slow Kafka.
//
// Stores are safe for concurrent use. Keys are (connector, server) pairs,
// encoded as Kafka Connect does: ["<connector>",{"server":"<server>"}].
package offsets
