// Package postgres is a sink that materializes change topics as
// PostgreSQL tables: upserts and deletes by primary key, tables created and
// evolved from the events' column types, and the consumed offsets stored
// in the same transaction as each batch (table connectd_offsets), so a
// replay after any crash changes nothing (effectively-once views).
//
// Each Write is one transaction: changes are collapsed to the last one per
// key (a view only needs the final state of a batch), then applied per
// table with one statement per kind — DELETE … WHERE key IN (unnest …) and
// INSERT … SELECT FROM unnest(…) ON CONFLICT DO UPDATE — plus the offsets
// upsert. Values travel as text arrays and are cast to the column types by
// the server. A data error (class 22/23) re-applies the batch one message
// at a time to find the bad message, which is reported as cdc.BadRecord.
//
// Column types follow the events' Kafka Connect schemas when the source
// writes them (schemas: true); without schemas they are inferred from the
// JSON values (integers bigint, other numbers numeric, strings text,
// booleans boolean, objects and arrays jsonb).
//
// A Sink is used by one goroutine at a time.
package postgres
