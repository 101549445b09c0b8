package cdc

// Kind is the Kafka Connect schema type of a column value, which fixes the Go
// type the value has in a Row and its JSON encoding.
type Kind uint8

// Kinds and the Go types their values have. A nil Value is NULL, whatever
// the kind.
const (
	KindString  Kind = iota // string
	KindInt8                // int64
	KindInt16               // int64
	KindInt32               // int64
	KindInt64               // int64
	KindFloat32             // float64
	KindFloat64             // float64
	KindBoolean             // bool
	KindBytes               // []byte; JSON: base64
	KindArray               // []any
	KindMap                 // map[string]any
	KindStruct              // Row
	// KindNumber is a decoded JSON number whose schema is unknown (a sink
	// reading an event without schemas). Value is a json.Number-like string
	// that keeps every digit.
	KindNumber
)

var kindNames = [...]string{
	KindString: "string", KindInt8: "int8", KindInt16: "int16", KindInt32: "int32",
	KindInt64: "int64", KindFloat32: "float32", KindFloat64: "float64",
	KindBoolean: "boolean", KindBytes: "bytes", KindArray: "array", KindMap: "map",
	KindStruct: "struct", KindNumber: "number",
}

// String returns the Kafka Connect name of k ("int64", "string", …).
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Type describes a column: its wire kind plus the Debezium semantic type
// name (e.g. "io.debezium.time.MicroTimestamp") and parameters (e.g. scale).
type Type struct {
	Kind Kind
	// Logical is the Kafka Connect / Debezium schema name, "" for plain kinds.
	Logical string
	// Params are the schema parameters, e.g. {"scale": "2"}.
	Params map[string]string
	// Optional is true when the column is nullable.
	Optional bool
	// SourceType is the database's type name, e.g. "DECIMAL(10,2)".
	SourceType string
}

// Field is one named, typed value of a Row.
type Field struct {
	Name string
	// Type is the column's type, shared by every row of a table; nil when
	// unknown (a sink decoding an event without schemas: then the Go type
	// of Value is all there is).
	Type  *Type
	Value any
	// Unchanged marks a value the source did not send (Postgres unchanged
	// TOAST). Sinks must leave the stored value untouched. It is encoded as
	// UnavailableValue, or as Value when a source sets its configured
	// placeholder string there.
	Unchanged bool
}

// Row is an ordered list of fields: a table row, a key, or a struct value.
type Row []Field

// Get returns the field named name.
func (r Row) Get(name string) (Field, bool) {
	for i := range r {
		if r[i].Name == name {
			return r[i], true
		}
	}
	return Field{}, false
}

// Value returns the value of the field named name, or nil.
func (r Row) Value(name string) any {
	f, _ := r.Get(name)
	return f.Value
}

// Names returns the field names in order.
func (r Row) Names() []string {
	names := make([]string, len(r))
	for i := range r {
		names[i] = r[i].Name
	}
	return names
}

// Clone returns a copy of r that shares no Field slice with it (values
// themselves are shared: they are treated as immutable).
func (r Row) Clone() Row {
	if r == nil {
		return nil
	}
	out := make(Row, len(r))
	copy(out, r)
	return out
}
