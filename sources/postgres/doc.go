// Package postgres is the PostgreSQL source: it turns a database into
// per-table change topics (<topic_prefix>.<schema>.<table>) in Debezium's
// event format, through a logical replication slot with the pgoutput plugin
// (github.com/jackc/pglogrepl) and a regular pgx connection.
//
// Lifecycle. Open checks wal_level and the role, creates the publication and
// the slot when missing and decides what to do: with no stored position (and
// snapshot_mode initial or when_needed) it snapshots the captured tables from
// the slot's exported snapshot, chunked in primary-key order ("r" events), then
// streams from the slot's consistent point, so rows and changes meet exactly.
// A restart mid-snapshot resumes after the last checkpointed chunk, reading
// the rest as of the restart and replaying changes from the consistent point
// (rows changed meanwhile may arrive twice; the final state is exact).
//
// Positions are JSON objects:
//
//	{"lsn":"0/16B3748","txId":754}                                   streaming
//	{"lsn":"0/16B3748","snapshot":{"tables":[…],"table":1,"after":["42"]}}  snapshot progress
//
// lsn is the end LSN of the last transaction delivered; only the last record
// of a transaction carries a position. Acknowledgement: the flush LSN sent to
// the server in standby status updates is the highest acknowledged position,
// or further only across WAL that held nothing to deliver (heartbeats,
// filtered tables, keepalives) once everything before it is acknowledged.
// A transactional pg_logical_emit_message every heartbeat_interval keeps the
// slot moving on an idle database.
//
// Values: snapshot and stream both read values in text form (the snapshot
// with text-format results, the stream from pgoutput) under the same session
// settings, and convert them with one function per column type, so the same
// row gives byte-identical JSON. Unchanged TOASTed values are marked
// cdc.Field.Unchanged.
//
// Concurrency: one worker goroutine owns both connections (snapshot, stream,
// catalog lookups, heartbeats, status updates) and fills a bounded buffer
// that Read drains; Ack only stores an LSN atomically.
package postgres
