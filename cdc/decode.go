package cdc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Decode parses m as a Debezium change event (with or without the
// schema/payload wrapper). A message with a null value decodes to a
// tombstone record. Errors wrap ErrBadEvent and name the topic, partition
// and offset, so a bad message can be found and dead-lettered.
func (m *Message) Decode() (Record, error) {
	rec := Record{Topic: m.Topic, Headers: m.Headers, Kafka: &KafkaCoordinates{Partition: m.Partition, Offset: m.Offset, Timestamp: m.Time}}
	where := func(what string, err error) error {
		return fmt.Errorf("%w: %s at %s[%d]@%d: %v", ErrBadEvent, what, m.Topic, m.Partition, m.Offset, err)
	}
	if len(m.Key) > 0 {
		schema, payload := splitSchema(m.Key)
		key, err := decodeRowJSON(payload)
		if err != nil {
			return rec, where("decoding key", err)
		}
		if schema != nil {
			if err := applySchema(key, schema, ""); err != nil {
				return rec, where("reading key schema", err)
			}
		}
		rec.Key = key
	}
	if m.Value == nil {
		rec.Tombstone = true
		rec.Op = OpDelete
		return rec, nil
	}
	var env struct {
		Before      json.RawMessage `json:"before"`
		After       json.RawMessage `json:"after"`
		Source      json.RawMessage `json:"source"`
		Op          string          `json:"op"`
		TsMs        *int64          `json:"ts_ms"`
		Transaction *struct {
			ID                  string `json:"id"`
			TotalOrder          int64  `json:"total_order"`
			DataCollectionOrder int64  `json:"data_collection_order"`
		} `json:"transaction"`
	}
	schema, payload := splitSchema(m.Value)
	if err := json.Unmarshal(payload, &env); err != nil {
		return rec, where("decoding value", err)
	}
	op, err := ParseOp(env.Op)
	if err != nil {
		return rec, where("reading op", err)
	}
	rec.Op = op
	if rec.Before, err = decodeRowJSON(env.Before); err != nil {
		return rec, where("decoding before", err)
	}
	if rec.After, err = decodeRowJSON(env.After); err != nil {
		return rec, where("decoding after", err)
	}
	if schema != nil {
		if err := applySchema(rec.Before, schema, "before"); err != nil {
			return rec, where("reading value schema", err)
		}
		if err := applySchema(rec.After, schema, "after"); err != nil {
			return rec, where("reading value schema", err)
		}
	}
	if rec.Source, err = decodeSource(env.Source); err != nil {
		return rec, where("decoding source", err)
	}
	if env.TsMs != nil {
		rec.Time = time.UnixMilli(*env.TsMs)
	}
	if t := env.Transaction; t != nil {
		rec.Transaction = &Transaction{ID: t.ID, TotalOrder: t.TotalOrder, DataCollectionOrder: t.DataCollectionOrder}
	}
	return rec, nil
}

// splitSchema returns the schema and payload of a {"schema":…,"payload":…}
// document, or a nil schema and b itself when it is not one.
func splitSchema(b []byte) (schema json.RawMessage, payload []byte) {
	b = bytes.TrimSpace(b)
	if !bytes.HasPrefix(b, []byte(`{"schema"`)) {
		return nil, b
	}
	var w struct {
		Schema  json.RawMessage `json:"schema"`
		Payload json.RawMessage `json:"payload"`
	}
	if json.Unmarshal(b, &w) != nil || w.Payload == nil {
		return nil, b
	}
	return w.Schema, w.Payload
}

// applySchema sets the Type of row's fields from the schema.
func applySchema(row Row, schema json.RawMessage, field string) error {
	if row == nil {
		return nil
	}
	types, err := schemaTypes(schema, field)
	if err != nil {
		return err
	}
	for i := range row {
		if t, ok := types[row[i].Name]; ok {
			row[i].Type = t
		}
	}
	return nil
}

// decodeRowJSON decodes a JSON object into a Row, keeping column order.
// Values are nil, string, json.Number (every digit kept), bool, []any or
// map[string]any; Field.Type is nil.
// null or empty input gives a nil Row.
func decodeRowJSON(b []byte) (Row, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	row, err := decodeObject(dec)
	if err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after object")
	}
	return row, nil
}

func decodeObject(dec *json.Decoder) (Row, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("expected an object, found %v", tok)
	}
	row := Row{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := tok.(string)
		f := Field{Name: name}
		if err := decodeField(dec, &f); err != nil {
			return nil, fmt.Errorf("column %s: %w", name, err)
		}
		row = append(row, f)
	}
	if _, err := dec.Token(); err != nil { // closing '}'
		return nil, err
	}
	return row, nil
}

func decodeField(dec *json.Decoder, f *Field) error {
	var v any
	if err := dec.Decode(&v); err != nil {
		return err
	}
	if s, ok := v.(string); ok && s == UnavailableValue {
		f.Unchanged = true
		return nil
	}
	f.Value = v
	return nil
}

var sourceKnown = map[string]bool{
	"version": true, "connector": true, "name": true, "ts_ms": true, "snapshot": true,
	"db": true, "sequence": true, "schema": true, "table": true,
}

func decodeSource(b []byte) (SourceInfo, error) {
	var s SourceInfo
	row, err := decodeRowJSON(b)
	if err != nil || row == nil {
		return s, err
	}
	str := func(f Field) string {
		switch v := f.Value.(type) {
		case string:
			return v
		case json.Number:
			return string(v)
		case bool:
			return strconv.FormatBool(v)
		}
		return ""
	}
	for _, f := range row {
		switch f.Name {
		case "version":
			s.Version = str(f)
		case "connector":
			s.Connector = str(f)
		case "name":
			s.Name = str(f)
		case "ts_ms":
			if n, ok := f.Value.(json.Number); ok {
				s.TsMs, _ = n.Int64()
			}
		case "snapshot":
			s.Snapshot = str(f)
		case "db":
			s.DB = str(f)
		case "sequence":
			s.Sequence = str(f)
		case "schema":
			s.Schema = str(f)
		case "table":
			s.Table = str(f)
		}
		if !sourceKnown[f.Name] {
			s.Extra = append(s.Extra, f)
		}
	}
	return s, nil
}
