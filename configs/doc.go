// Package configs loads connectd pipeline files: YAML with a fixed top level
// (kafka, worker, sources, sinks) and connector-specific sections that the
// connectors decode themselves.
//
// Load and Parse interpolate ${VAR} and ${VAR:-default} in scalar values,
// decode the fixed shape strictly (unknown keys are errors), validate it, fill
// in defaults and resolve relative paths against the file's directory. Each
// connector's `config:` (and `errors:`, and each transform) stays a Section
// that keeps its yaml.Node; Section.Decode decodes it as strictly.
//
// # Positions
//
// Every problem is an *Error with the file, line and column of the value at
// fault (of the key, for an unknown or repeated key; of the enclosing mapping,
// for a missing key) and the key path to it, such as
// "sources[0].config.rate". Syntax errors carry the line yaml.v3 reports, and
// column 1. Problems are never reported one at a time: the error returned is
// errors.Join of all of them, in file order, and Problems takes it apart.
//
// Values that came from the environment may be secrets: messages say "value
// from ${VAR}" instead of showing them.
//
// # Concurrency
//
// Parsing has no global state, and reads the environment only through the
// lookup function it is given. A loaded Pipeline and its Sections are not
// modified afterwards, so Sections may be decoded from several goroutines.
package configs
