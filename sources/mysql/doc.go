// Package mysql is the MySQL / MariaDB binlog source: an initial consistent
// snapshot of the included tables, then row-based binlog streaming through
// go-mysql's replication.BinlogSyncer, in Debezium's change-event shape.
//
// # Positions
//
// A position is the JSON object
//
//	{"file":"mariadb-bin.000003","pos":1234,"gtids":"0-1-57",
//	 "snapshot":{"tables":["shop.a","shop.b"],"table":1,"after":["42"]}}
//
// file/pos is the binlog coordinate just after a committed transaction and
// gtids the GTID set executed up to it (MariaDB "domain-server-seq" list or
// MySQL "uuid:1-N" set; "" when the server has none). Streaming resumes by
// GTID when gtids is set, else by file/pos. "snapshot" is present only while
// the initial snapshot is unfinished: the tables it covers, the index of the
// table being read and the primary key of the last row emitted from it (text
// form, base64 for binary columns), so a restart continues with the next
// chunk. Streaming then starts from the file/pos/gtids the snapshot saw.
//
// A fresh snapshot first returns its start position alone (a heartbeat
// record) and emits no row until Ack says that position is stored: a crash
// then always resumes this snapshot at its binlog position, so deletes of
// rows the lost run already put in Kafka are streamed again. Resuming a
// snapshot opens a new consistent read for the remaining chunks; rows read
// there may be newer than the stored binlog position, and streaming from it
// replays the changes in between, so each key converges to its latest state
// (at-least-once, as everywhere in connectd).
//
// Only records that end a binlog transaction carry a position: the last row
// of each transaction is held back until its XID (or COMMIT) arrives and is
// emitted with the position after the transaction. Earlier rows of a large
// transaction are emitted as they arrive with a nil position, so memory stays
// bounded. Transactions that touch no included table move the position
// silently; heartbeat records (a null value on topic
// __debezium-heartbeat.<topic_prefix>) carry it to the offset store.
//
// # Schemas
//
// Tables without a primary key are captured with a null Kafka key (a warning
// is logged) and read by the snapshot in one pass.
//
// Row events are decoded with the table map event's full row metadata
// (binlog_row_metadata=FULL: column names, signedness, charsets, ENUM/SET
// values, primary key), so rows before and after an ALTER TABLE decode with
// the schema they were written with. The source refuses to start without
// it; schema tracking from DDL is not implemented. MariaDB UUID, INET6 and
// INET4 columns look like BINARY(16)/BINARY(4) in a table map, so for those
// the stream asks information_schema for the column's current type.
//
// # Errors and reconnects
//
// Bad credentials, missing replication privileges, server settings other
// than log_bin, binlog_format=ROW, binlog_row_image=FULL and
// binlog_row_metadata=FULL, a purged binlog position, a server_id used by
// another replica and unconvertible values are terminal errors (cdc.Terminal)
// that name the setting, file, or db.table.column. A lost connection is a
// retryable error: the runtime reopens the source with backoff at the last
// stored position. go-mysql's own reconnect is disabled because it would
// resume in the middle of a transaction.
//
// On MySQL the snapshot takes FLUSH TABLES WITH READ LOCK for the instant it
// reads the binlog position; without RELOAD it locks the captured tables
// instead (LOCK TABLES), which START TRANSACTION releases, leaving a short
// window in which a write could fall between the position and the snapshot.
// MariaDB needs no lock (binlog_snapshot_file/position).
//
// # Values
//
// One function (convert) turns a value read by the snapshot (binary protocol
// of a prepared statement) or decoded from a row event into its Debezium
// representation, so both produce byte-identical JSON.
//
// # Concurrency
//
// Read is called from one goroutine; Ack may run concurrently and only
// records the acknowledged position. The binlog syncer runs its own reader
// goroutine, which hands events to Read through a bounded channel.
package mysql
