// Package transforms holds connectd's single-message transforms and their
// predicates: the Kafka Connect and Debezium SMT catalogue (filter, unwrap,
// insert_field, replace_field, mask_field, cast, timestamp_convert,
// value_to_key, extract_field, hoist_field, flatten, route,
// timestamp_route, insert_header, drop_headers, content_route, set,
// outbox), with CEL (github.com/google/cel-go) where Kafka Connect uses
// Java classes or scripts.
//
// Factories returns a constructor per type name; cmd/connectd registers
// them. A constructor decodes the transform's config block strictly and
// reports every problem positioned at its key, CEL syntax and type errors
// included: expressions are compiled once, at construction.
//
// Every transform may carry an `if:` block (topic_matches, is_tombstone,
// has_header, expr, negate): it then applies only to the records the
// predicate holds for and passes the others through.
//
// # Records
//
// Transforms see cdc.Record values. On a source connector values are Go
// values with column types; on a sink connector they are decoded JSON
// (string, json.Number, bool, nil, []any, map[string]any) without types.
// Every transform handles both. "Value fields" are the columns of the row
// images: a field transform with target value changes After and, when
// present, Before, so updates and deletes stay consistent; after unwrap
// (Record.Flat) the value is After alone. Tombstones have no value: field
// transforms pass them through, changing only their key when they target
// the key.
//
// # Expressions
//
// CEL expressions see the variable record, a map with topic, op ("c", "u",
// "d", "r", "t"), key, before, after (maps from column name to value; null
// when absent), source (the source block as encoded), headers (map of
// string to string), ts_ms (int) and tombstone (bool). int64 reads as
// int, uint64 as uint, float64 as double, a decoded json.Number as int
// when it is an int64 and double otherwise, decimal strings stay strings,
// and unchanged (unavailable) values read as the placeholder
// "__debezium_unavailable_value". The set transform also sees row, the
// image being written. The ext.Strings library and optional syntax
// (record.?after.?status) are available. Values are converted only when an
// expression reads them.
//
// # Contract
//
// Transforms follow cdc.Transform: they never change their input (rows are
// cloned before a change, values are shared and never modified), are
// deterministic (no wall clock, map keys sorted), are safe for concurrent
// use, and return errors instead of dropping a record they cannot handle.
// Errors name the transform type and, for bad values, the field and the
// value; they wrap ErrBadValue or ErrNoKafkaCoordinates. What happens next
// (stop, retry, dead letter topic) is the runtime's error policy.
//
// Every transform gives at most one record per input and also implements
// InPlacer, whose ApplyInPlace rewrites the caller's copy of the record
// instead of allocating a result slice: a chain run that way costs a
// fraction of one run through Apply.
package transforms
