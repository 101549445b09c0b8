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
// tombstone record. A flat value — a plain row without the envelope, as
// after ExtractNewRecordState — decodes to a Flat record with that row as
// After and op "r" (an upsert of the row). Errors wrap ErrBadEvent and name the topic, partition
// and offset, so a bad message can be found and dead-lettered.
func (m *Message) Decode() (Record, error) { return m.decode(true, true) }

// DecodeLean is Decode for sinks that need only the row images: it skips
// the source block (Source stays zero) and, unless withBefore, the before
// image. Errors are the ones Decode gives.
func (m *Message) DecodeLean(withBefore bool) (Record, error) { return m.decode(withBefore, false) }

func (m *Message) decode(withBefore, withSource bool) (Record, error) {
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
		before, after, source, transaction []byte
		op                                 string
		tsMs                               *int64
	}
	schema, payload := splitSchema(m.Value)
	err := eachMember(payload, func(name string, raw []byte) error {
		switch name {
		case "before":
			env.before = raw
		case "after":
			env.after = raw
		case "source":
			env.source = raw
		case "transaction":
			env.transaction = raw
		case "op":
			if raw[0] != '"' {
				return fmt.Errorf("op is not a string")
			}
			s, err := decodeString(raw)
			env.op = s
			return err
		case "ts_ms":
			if raw[0] == 'n' {
				return nil
			}
			n, err := strconv.ParseInt(string(raw), 10, 64)
			if err != nil {
				return fmt.Errorf("ts_ms: %w", err)
			}
			env.tsMs = &n
		}
		return nil
	})
	if err != nil {
		return rec, where("decoding value", err)
	}
	if env.op == "" && env.source == nil && env.before == nil && env.after == nil {
		// A flat value (ExtractNewRecordState, outbox): the row itself.
		row, err := decodeRowJSON(payload)
		if err != nil {
			return rec, where("decoding flat value", err)
		}
		if schema != nil {
			if err := applySchema(row, schema, ""); err != nil {
				return rec, where("reading value schema", err)
			}
		}
		rec.Op, rec.After, rec.Flat = OpRead, row, true
		return rec, nil
	}
	op, err := ParseOp(env.op)
	if err != nil {
		return rec, where("reading op", err)
	}
	rec.Op = op
	if withBefore {
		if rec.Before, err = decodeRowJSON(env.before); err != nil {
			return rec, where("decoding before", err)
		}
	}
	if rec.After, err = decodeRowJSON(env.after); err != nil {
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
	if withSource {
		if rec.Source, err = decodeSource(env.source); err != nil {
			return rec, where("decoding source", err)
		}
	}
	if env.tsMs != nil {
		rec.Time = time.UnixMilli(*env.tsMs)
	}
	if raw := env.transaction; len(raw) > 0 && raw[0] == '{' {
		var t struct {
			ID                  string `json:"id"`
			TotalOrder          int64  `json:"total_order"`
			DataCollectionOrder int64  `json:"data_collection_order"`
		}
		if err := json.Unmarshal(raw, &t); err != nil {
			return rec, where("decoding transaction", err)
		}
		rec.Transaction = &Transaction{ID: t.ID, TotalOrder: t.TotalOrder, DataCollectionOrder: t.DataCollectionOrder}
	}
	return rec, nil
}

// splitSchema returns the schema and payload of a {"schema":…,"payload":…}
// document, or a nil schema and b itself when it is not one.
func splitSchema(b []byte) (schema json.RawMessage, payload []byte) {
	b = trimJSONSpace(b)
	if !bytes.HasPrefix(b, []byte(`{"schema"`)) {
		return nil, b
	}
	var sch, pay []byte
	err := eachMember(b, func(name string, raw []byte) error {
		switch name {
		case "schema":
			sch = raw
		case "payload":
			pay = raw
		}
		return nil
	})
	if err != nil || pay == nil {
		return nil, b
	}
	return sch, pay
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
// map[string]any; Field.Type is nil. null or empty input gives a nil Row.
func decodeRowJSON(b []byte) (Row, error) {
	b = trimJSONSpace(b)
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return nil, nil
	}
	row := make(Row, 0, 8)
	err := eachMember(b, func(name string, raw []byte) error {
		v, err := decodeValue(raw)
		if err != nil {
			return fmt.Errorf("column %s: %w", name, err)
		}
		f := Field{Name: name, Value: v}
		if s, ok := v.(string); ok && s == UnavailableValue {
			f.Value, f.Unchanged = nil, true
		}
		row = append(row, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return row, nil
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
