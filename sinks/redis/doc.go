// Package redis is a sink that keeps a lean, read-optimized view of change
// topics in Redis (github.com/redis/go-redis/v9): the "replicate OLTP
// tables into caches" use case.
//
// Each change event is written under the key its key template renders
// ("customer:{id}", fields looked up in the Kafka key, then the row after
// the change, then the row before it), in one of four formats:
//
//   - hash: HSET of the projected fields; a field that became NULL is
//     removed with HDEL, never stored as "".
//   - json: SET of the projected row as one JSON document (NULL fields
//     absent, numbers with every digit).
//   - string: SET of one field's text (value_field); NULL deletes the key.
//   - stream: XADD of each change event — fields "key" and "value" hold the
//     Kafka key and value as they are (Debezium Server's extended format) —
//     to the stream the template names. Tombstones add nothing.
//
// Deletes (op "d") and tombstones remove the key in the hash, json and
// string formats; snapshot reads (op "r") are upserts like creates.
// Unchanged-TOAST values never overwrite a stored field (the json format
// merges them from the stored document). When an update changes a
// non-key field the template uses and the event carries the old row, the
// old key is removed. Truncate events are logged and ignored: Redis keys
// do not belong to tables.
//
// # Delivery
//
// On standalone Redis every batch (at most batch_size messages) is written
// in one MULTI/EXEC together with the offset of the last message it
// applied per topic partition, in the hash connectd:offsets:<sink> (field
// "topic/partition"). The sink implements cdc.OffsetStorer: after a crash
// between EXEC and the Kafka commit the runtime skips what Redis already
// holds, so stream entries are not duplicated and old values are not
// re-applied (effectively once). Readers can tell how fresh the view is
// from that hash. go-redis' own command retries are off, because a blind
// retry of a MULTI/EXEC whose reply was lost would apply it twice; the
// sink retries transient faults itself (connection loss, Redis restarting,
// OOM under maxmemory, LOADING, BUSY) with backoff, re-reading the stored
// offsets first. No record is skipped: when the faults last, Write
// returns the error and the runtime restarts the sink with its own
// backoff.
//
// With cluster_addrs (Redis Cluster) keys spread over slots, so the
// offsets hash cannot share a transaction with the data: batches are
// pipelined and the offsets hash is written after they succeeded. That is
// at-least-once, which the idempotent formats (hash, json, string)
// tolerate; the stream format refuses cluster mode.
//
// # Concurrency
//
// The runtime calls Open, Write and Close from one goroutine. Inside
// Write, the topic partitions of a batch are spread over a few workers
// (up to GOMAXPROCS, at most 4), each writing its partitions' messages in
// order on its own connection, in transactions that store only its own
// partitions' offsets: per-key order holds because a Kafka key lives in
// one partition. Write returns once every worker is done, counting as
// durable the messages before the first one, in batch order, that is not.
//
// Only what a view needs of each event is decoded (op, key, the row
// after; the row before only when the key template reads row fields),
// with view.DecodeLean.
package redis
