// Package cdc is connectd's vocabulary: change records, operations, source
// positions, typed column values, the Debezium-compatible wire encoding and
// the contracts that sources, sinks and transforms implement.
//
// It imports only the standard library, and every other package depends on
// it. Nothing here holds state: the types are plain values, the contracts are
// interfaces, the codec is a set of pure functions.
//
// Invariants worth knowing:
//   - A Record's Position, when non-nil, says "once this record and every
//     record before it are durable downstream, the source may resume after
//     here". Records inside a source transaction carry a nil Position so that
//     no checkpoint ever lands mid-transaction.
//   - Row keeps column order, so encoded events list columns in table order
//     as Debezium does.
//   - Column values are already in their wire representation (see Kind):
//     sources convert database values once, sinks never guess.
//   - On the wire a record is Debezium's envelope, or with schemas the Kafka
//     Connect {"schema":…,"payload":…} form, or after an unwrap transform a
//     flat row (Record.Flat). Message.Decode reads all three back; with a
//     schema, column types come back too.
//   - A sink reports a record it cannot take with BadRecord, a source or
//     sink error that retrying cannot fix with Terminal; everything else is
//     retried.
package cdc
