package cdc

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// AppendKeyWithSchema appends rec's key in Kafka Connect's JSON form with
// its schema ({"schema":{…},"payload":{…}}), as Debezium writes it with
// schemas.enable=true. A nil Key appends nothing.
func AppendKeyWithSchema(dst []byte, rec *Record) ([]byte, error) {
	if rec.Key == nil {
		return dst, nil
	}
	dst = append(dst, `{"schema":`...)
	dst = appendStructSchema(dst, rec.Key, false, rec.Topic+".Key", "")
	dst = append(dst, `,"payload":`...)
	dst, err := appendRow(dst, rec.Key)
	if err != nil {
		return dst, err
	}
	return append(dst, '}'), nil
}

// AppendValueWithSchema appends rec's change event in Kafka Connect's JSON
// form with its schema. Column types come from each Field's Type (inferred
// from the Go value when nil). A tombstone appends nothing.
func AppendValueWithSchema(dst []byte, rec *Record) ([]byte, error) {
	if rec.Tombstone {
		return dst, nil
	}
	if rec.Flat {
		if rec.After == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, `{"schema":`...)
		dst = appendStructSchema(dst, rec.After, true, rec.Topic+".Value", "")
		dst = append(dst, `,"payload":`...)
		dst, err := appendRow(dst, rec.After)
		if err != nil {
			return dst, err
		}
		return append(dst, '}'), nil
	}
	row := rec.After
	if row == nil {
		row = rec.Before
	}
	dst = append(dst, `{"schema":{"type":"struct","fields":[`...)
	dst = appendStructSchema(dst, row, true, rec.Topic+".Value", "before")
	dst = append(dst, ',')
	dst = appendStructSchema(dst, row, true, rec.Topic+".Value", "after")
	dst = append(dst, ',')
	dst = appendSourceSchema(dst, &rec.Source)
	dst = append(dst, `,{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"},`...)
	dst = append(dst, `{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":false,"field":"total_order"},{"type":"int64","optional":false,"field":"data_collection_order"}],"optional":true,"name":"event.block","version":1,"field":"transaction"}`...)
	dst = append(dst, `],"optional":false,"name":`...)
	dst = appendString(dst, rec.Topic+".Envelope")
	dst = append(dst, `,"version":1},"payload":`...)
	dst, err := AppendValue(dst, rec)
	if err != nil {
		return dst, err
	}
	return append(dst, '}'), nil
}

func appendStructSchema(dst []byte, row Row, optional bool, name, field string) []byte {
	dst = append(dst, `{"type":"struct","fields":[`...)
	for i := range row {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendFieldSchema(dst, &row[i])
	}
	dst = append(dst, `],"optional":`...)
	dst = strconv.AppendBool(dst, optional)
	dst = append(dst, `,"name":`...)
	dst = appendString(dst, name)
	if field != "" {
		dst = append(dst, `,"field":`...)
		dst = appendString(dst, field)
	}
	return append(dst, '}')
}

func appendFieldSchema(dst []byte, f *Field) []byte {
	t := f.Type
	if t == nil {
		t = inferType(f.Value)
	}
	dst = append(dst, `{"type":`...)
	dst = appendString(dst, t.Kind.String())
	dst = append(dst, `,"optional":`...)
	dst = strconv.AppendBool(dst, t.Optional)
	if t.Logical != "" {
		dst = append(dst, `,"name":`...)
		dst = appendString(dst, t.Logical)
		dst = append(dst, `,"version":1`...)
	}
	if len(t.Params) > 0 {
		dst = append(dst, `,"parameters":{`...)
		keys := make([]string, 0, len(t.Params))
		for k := range t.Params {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			dst = appendString(dst, t.Params[k])
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `,"field":`...)
	dst = appendString(dst, f.Name)
	return append(dst, '}')
}

func appendSourceSchema(dst []byte, s *SourceInfo) []byte {
	dst = append(dst, `{"type":"struct","fields":[{"type":"string","optional":false,"field":"version"},{"type":"string","optional":false,"field":"connector"},{"type":"string","optional":false,"field":"name"},{"type":"int64","optional":false,"field":"ts_ms"},{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},"default":"false","field":"snapshot"},{"type":"string","optional":false,"field":"db"},{"type":"string","optional":true,"field":"sequence"}`...)
	if s.Schema != "" {
		dst = append(dst, `,{"type":"string","optional":false,"field":"schema"}`...)
	}
	dst = append(dst, `,{"type":"string","optional":true,"field":"table"}`...)
	for i := range s.Extra {
		dst = append(dst, ',')
		f := s.Extra[i]
		if f.Type == nil {
			t := *inferType(f.Value)
			t.Optional = true
			f.Type = &t
		}
		dst = appendFieldSchema(dst, &f)
	}
	dst = append(dst, `],"optional":false,"name":`...)
	dst = appendString(dst, "io.debezium.connector."+s.Connector+".Source")
	return append(dst, `,"field":"source"}`...)
}

// inferType gives a schema to a value whose column type is unknown.
func inferType(v any) *Type {
	t := &Type{Optional: true}
	switch x := v.(type) {
	case int64, int, int32, uint32, uint64:
		t.Kind = KindInt64
	case float64, float32:
		t.Kind = KindFloat64
	case bool:
		t.Kind = KindBoolean
	case []byte:
		t.Kind = KindBytes
	case json.Number:
		if strings.ContainsAny(string(x), ".eE") {
			t.Kind = KindFloat64
		} else {
			t.Kind = KindInt64
		}
	case Row:
		t.Kind = KindStruct
	case []any:
		t.Kind = KindArray
	case map[string]any:
		t.Kind = KindMap
	default:
		t.Kind = KindString
	}
	return t
}

// schemaTypes reads the column types of the "before"/"after" structs of
// an envelope schema, or of a key schema when field is "".
func schemaTypes(schema json.RawMessage, field string) (map[string]*Type, error) {
	var s connectSchema
	if err := json.Unmarshal(schema, &s); err != nil {
		return nil, fmt.Errorf("reading schema: %w", err)
	}
	st := &s
	if field != "" {
		st = nil
		for i := range s.Fields {
			if s.Fields[i].Field == field {
				st = &s.Fields[i]
				break
			}
		}
		if st == nil {
			return nil, nil
		}
	}
	out := make(map[string]*Type, len(st.Fields))
	for _, f := range st.Fields {
		out[f.Field] = &Type{Kind: kindOf(f.Type), Logical: f.Name, Params: f.Parameters, Optional: f.Optional}
	}
	return out, nil
}

// connectSchema is Kafka Connect's JSON schema.
type connectSchema struct {
	Type       string            `json:"type"`
	Optional   bool              `json:"optional"`
	Name       string            `json:"name"`
	Field      string            `json:"field"`
	Parameters map[string]string `json:"parameters"`
	Fields     []connectSchema   `json:"fields"`
}

func kindOf(name string) Kind {
	for k, n := range kindNames {
		if n == name {
			return Kind(k)
		}
	}
	return KindString
}
