// Package runtime is the connectd worker: it builds the connectors a
// pipeline names, runs every source and sink concurrently, moves records
// source → transforms → Kafka → sink, checkpoints source positions and sink
// offsets, restarts failed tasks with backoff, and serves /healthz and
// /metrics.
//
// The runtime knows the cdc contracts and the small interfaces it consumes
// (OffsetStore); concrete connectors reach it only through a Registry built
// by the binary.
//
// Delivery guarantees. A source position is stored only after Kafka
// acknowledged (acks=all) every record up to it, so a crash at any point
// replays records but never loses one. A sink's consumer-group offset is
// committed only after the sink reported the batch durable. Per-key order is
// kept end to end: records of one key go to one partition (murmur2 of the
// key, as the Java client does), each partition is written by one ordered
// producer queue and consumed in order. After a producer error the failed
// batch is re-sent from the last stored position, so a key may repeat older
// values in the topic before reaching its newest one again; the final value
// always wins.
//
// Concurrency. Each task runs in its own goroutine under an errgroup owned
// by the Worker. A source task reads on one goroutine; the producer's
// completion callbacks acknowledge records concurrently; a committer stores
// positions at worker.offset_flush_interval and on shutdown.
package runtime
