// Package view holds the "lean view" logic shared by the sinks that keep a
// read-optimized copy of change topics (Redis, PostgreSQL, CQL, LSM): key
// templates such as "customer:{id}", projections (fields, exclude_fields,
// rename) and the rendering of decoded values as text or JSON.
//
// Values are the ones cdc.Message.Decode produces — nil, string,
// json.Number, bool, []any and map[string]any — plus the Go types sources
// put in records (int64, float64, []byte, cdc.Row, …). Numbers keep every
// digit: a json.Number is written as it arrived. NULL (nil) has no text
// form: sinks leave it absent (HDEL, a missing JSON member).
//
// Everything here is immutable once built and safe for concurrent use.
package view
