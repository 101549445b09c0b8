// Package generator is a source of deterministic synthetic table changes —
// inserts, updates and deletes over a fixed key space — in the same record
// shape as the database sources. It exists for trying connectd without a
// database, for tests (the expected final state of every key can be
// computed with Replay) and for benchmarks.
//
// Event i depends only on the seed and the events before it, so a
// generator resumed at a position emits exactly what an uninterrupted one
// would have. Per key, source.version strictly increases.
package generator
