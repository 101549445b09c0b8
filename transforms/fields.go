package transforms

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/connectd/connectd/cdc"
)

// InsertFieldConfig configures insert_field, Kafka Connect's InsertField:
//
//	transforms:
//	  - type: insert_field
//	    topic_field: _topic
//	    partition_field: _partition   # sink side only
//	    offset_field: _offset         # sink side only
//	    timestamp_field: _ts
//	    static_field: _origin
//	    static_value: shop-eu
//	    target: value                 # value (default) | key
//
// Each configured field is set (replaced in place, or appended) on the
// target rows. The topic is the record's current topic; partition and
// offset are where a sink read the record and are an error on a source
// connector, where the record is not in Kafka yet; the timestamp is the
// Kafka message timestamp on the sink side and the change's commit time at
// the source (source.ts_ms, falling back to the envelope ts_ms) on the
// source side, in milliseconds since the epoch (Kafka Connect Timestamp).
// Tombstones keep their null value.
type InsertFieldConfig struct {
	Common         `yaml:",inline"`
	TopicField     string `yaml:"topic_field"`
	PartitionField string `yaml:"partition_field"`
	OffsetField    string `yaml:"offset_field"`
	TimestampField string `yaml:"timestamp_field"`
	StaticField    string `yaml:"static_field"`
	StaticValue    string `yaml:"static_value"`
	Target         Target `yaml:"target"`
}

type insertField struct{ c InsertFieldConfig }

var (
	int32Type     = &cdc.Type{Kind: cdc.KindInt32}
	int64Type     = &cdc.Type{Kind: cdc.KindInt64}
	stringType    = &cdc.Type{Kind: cdc.KindString}
	timestampType = &cdc.Type{Kind: cdc.KindInt64, Logical: "org.apache.kafka.connect.data.Timestamp"}
)

func newInsertField(dec cdc.ConfigDecoder) (InPlacer, error) {
	var c InsertFieldConfig
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	errs := []error{checkTarget(dec, &c.Target)}
	if c.TopicField == "" && c.PartitionField == "" && c.OffsetField == "" && c.TimestampField == "" && c.StaticField == "" {
		errs = append(errs, dec.Errorf("", "insert_field needs at least one of topic_field, partition_field, offset_field, timestamp_field, static_field"))
	}
	if c.StaticField == "" && c.StaticValue != "" {
		errs = append(errs, dec.Errorf("static_value", "static_value needs static_field, the name of the field to insert"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &insertField{c: c}, nil
}

func (t *insertField) ApplyInPlace(rec *cdc.Record) (bool, error) {
	c := &t.c
	if (c.PartitionField != "" || c.OffsetField != "") && rec.Kafka == nil {
		return false, fmt.Errorf("partition_field and offset_field need a record read from Kafka (a sink connector): %w", ErrNoKafkaCoordinates)
	}
	return done(applyRows(rec, c.Target, func(row cdc.Row, in *cdc.Record) (cdc.Row, error) {
		if c.TopicField != "" {
			row = setField(row, cdc.Field{Name: c.TopicField, Type: stringType, Value: in.Topic})
		}
		if c.PartitionField != "" {
			row = setField(row, cdc.Field{Name: c.PartitionField, Type: int32Type, Value: int64(in.Kafka.Partition)})
		}
		if c.OffsetField != "" {
			row = setField(row, cdc.Field{Name: c.OffsetField, Type: int64Type, Value: in.Kafka.Offset})
		}
		if c.TimestampField != "" {
			row = setField(row, cdc.Field{Name: c.TimestampField, Type: timestampType, Value: recordTime(in).UnixMilli()})
		}
		if c.StaticField != "" {
			row = setField(row, cdc.Field{Name: c.StaticField, Type: stringType, Value: c.StaticValue})
		}
		return row, nil
	}))
}

// ReplaceFieldConfig configures replace_field, Kafka Connect's
// ReplaceField:
//
//	transforms:
//	  - type: replace_field
//	    include: [id, name, price]   # keep only these (all when empty)
//	    exclude: [payload]           # drop these (wins over include)
//	    rename: {name: title}        # old: new
//	    target: value                # value (default) | key
//
// Field order is kept. Tombstones keep their null value.
type ReplaceFieldConfig struct {
	Common  `yaml:",inline"`
	Include []string          `yaml:"include"`
	Exclude []string          `yaml:"exclude"`
	Rename  map[string]string `yaml:"rename"`
	Target  Target            `yaml:"target"`
}

type replaceField struct {
	include, exclude map[string]bool
	rename           map[string]string
	target           Target
}

func newReplaceField(dec cdc.ConfigDecoder) (InPlacer, error) {
	var c ReplaceFieldConfig
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	errs := []error{checkTarget(dec, &c.Target)}
	if len(c.Include) == 0 && len(c.Exclude) == 0 && len(c.Rename) == 0 {
		errs = append(errs, dec.Errorf("", "replace_field needs include, exclude or rename"))
	}
	for from, to := range c.Rename {
		if from == "" || to == "" {
			errs = append(errs, dec.Errorf("rename", "rename %q: %q: names cannot be empty", from, to))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	t := &replaceField{rename: c.Rename, target: c.Target}
	if len(c.Include) > 0 {
		t.include = setOf(c.Include)
	}
	t.exclude = setOf(c.Exclude)
	return t, nil
}

func setOf(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

func (t *replaceField) ApplyInPlace(rec *cdc.Record) (bool, error) {
	return done(applyRows(rec, t.target, func(row cdc.Row, _ *cdc.Record) (cdc.Row, error) {
		out := make(cdc.Row, 0, len(row))
		for _, f := range row {
			if t.exclude[f.Name] || t.include != nil && !t.include[f.Name] {
				continue
			}
			if to, ok := t.rename[f.Name]; ok {
				f.Name = to
			}
			out = append(out, f)
		}
		return out, nil
	}))
}

// MaskFieldConfig configures mask_field, Kafka Connect's MaskField:
//
//	transforms:
//	  - type: mask_field
//	    fields: [ssn, card_number]
//	    replacement: "****"          # optional
//	    target: value                # value (default) | key
//
// Without replacement a value becomes the empty value of its type: "" for
// strings, 0 for numbers, false for booleans, empty bytes, list, map or
// struct. With replacement the text is converted to the field's type (a
// number field needs a numeric replacement; an error otherwise, naming the
// field). Null and unchanged (unavailable) values stay as they are.
// Absent fields are ignored.
type MaskFieldConfig struct {
	Common      `yaml:",inline"`
	Fields      []string `yaml:"fields"`
	Replacement *string  `yaml:"replacement"`
	Target      Target   `yaml:"target"`
}

type maskField struct {
	fields      map[string]bool
	replacement *string
	target      Target
}

func newMaskField(dec cdc.ConfigDecoder) (InPlacer, error) {
	var c MaskFieldConfig
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	if err := errors.Join(checkTarget(dec, &c.Target), requiredList(dec, "fields", c.Fields, "fields: [ssn]")); err != nil {
		return nil, err
	}
	return &maskField{fields: setOf(c.Fields), replacement: c.Replacement, target: c.Target}, nil
}

func (t *maskField) ApplyInPlace(rec *cdc.Record) (bool, error) {
	return done(applyRows(rec, t.target, func(row cdc.Row, _ *cdc.Record) (cdc.Row, error) {
		var out cdc.Row
		for i := range row {
			f := &row[i]
			if !t.fields[f.Name] || f.Value == nil || f.Unchanged {
				continue
			}
			v, err := t.mask(f.Value)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", f.Name, err)
			}
			if out == nil {
				out = row.Clone()
			}
			out[i].Value = v
		}
		if out == nil {
			return row, nil
		}
		return out, nil
	}))
}

func (t *maskField) mask(v any) (any, error) {
	if t.replacement == nil {
		switch v.(type) {
		case string:
			return "", nil
		case int64:
			return int64(0), nil
		case uint64:
			return uint64(0), nil
		case float64:
			return float64(0), nil
		case float32:
			return float32(0), nil
		case json.Number:
			return json.Number("0"), nil
		case bool:
			return false, nil
		case []byte:
			return []byte{}, nil
		case cdc.Row:
			return cdc.Row{}, nil
		case map[string]any:
			return map[string]any{}, nil
		case []any:
			return []any{}, nil
		}
		return nil, errorf("cannot mask a %T", v)
	}
	r := *t.replacement
	switch v.(type) {
	case string:
		return r, nil
	case []byte:
		return []byte(r), nil
	case int64:
		n, err := strconv.ParseInt(r, 10, 64)
		if err != nil {
			return nil, errorf("replacement %q is not an integer", r)
		}
		return n, nil
	case uint64:
		n, err := strconv.ParseUint(r, 10, 64)
		if err != nil {
			return nil, errorf("replacement %q is not an unsigned integer", r)
		}
		return n, nil
	case float64:
		n, err := strconv.ParseFloat(r, 64)
		if err != nil {
			return nil, errorf("replacement %q is not a number", r)
		}
		return n, nil
	case float32:
		n, err := strconv.ParseFloat(r, 32)
		if err != nil {
			return nil, errorf("replacement %q is not a number", r)
		}
		return float32(n), nil
	case json.Number:
		if _, err := strconv.ParseFloat(r, 64); err != nil {
			return nil, errorf("replacement %q is not a number", r)
		}
		return json.Number(r), nil
	case bool:
		b, err := strconv.ParseBool(r)
		if err != nil {
			return nil, errorf("replacement %q is not a boolean", r)
		}
		return b, nil
	}
	return nil, errorf("cannot mask a %T with a replacement", v)
}

// ValueToKeyConfig configures value_to_key, Kafka Connect's ValueToKey:
//
//	transforms:
//	  - type: value_to_key
//	    fields: [customer_id, order_id]
//
// The key becomes these fields of the value, in this order: of the after
// image, or of the before image for a delete. A missing field is an error.
// Tombstones carry no value to take fields from and pass through with
// their key unchanged, so compaction only matches them when the new key
// equals the old one (choose primary-key columns).
type ValueToKeyConfig struct {
	Common `yaml:",inline"`
	Fields []string `yaml:"fields"`
}

type valueToKey struct{ fields []string }

func newValueToKey(dec cdc.ConfigDecoder) (InPlacer, error) {
	var c ValueToKeyConfig
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	if err := requiredList(dec, "fields", c.Fields, "fields: [customer_id]"); err != nil {
		return nil, err
	}
	return &valueToKey{fields: c.Fields}, nil
}

func (t *valueToKey) ApplyInPlace(rec *cdc.Record) (bool, error) {
	if rec.Tombstone {
		return true, nil
	}
	row := valueRow(rec)
	if row == nil {
		return false, errorf("%s: record has no value to take key fields from", rec.Topic)
	}
	key := make(cdc.Row, 0, len(t.fields))
	for _, name := range t.fields {
		f, ok := row.Get(name)
		if !ok {
			return false, errorf("%s: value has no field %s", rec.Topic, name)
		}
		key = append(key, f)
	}
	rec.Key = key
	return true, nil
}

// valueRow is the row a record's value stands for: After, or Before when
// there is no After (a delete).
func valueRow(rec *cdc.Record) cdc.Row {
	if rec.After != nil {
		return rec.After
	}
	return rec.Before
}

// ExtractFieldConfig configures extract_field, Kafka Connect's
// ExtractField:
//
//	transforms:
//	  - type: extract_field
//	    field: address
//	    target: value                # value (default) | key
//
// The key, or the value, is replaced by the named field's content. The
// value's field is read from the after image (the before image for a
// delete) and the result is a flat record (as after unwrap). Keys and
// values are JSON objects in connectd, so the field must hold a struct or
// map: a scalar is an error naming the field. A null field gives a null
// value (value) or a null key (key); a missing field is an error.
// Tombstones pass through.
type ExtractFieldConfig struct {
	Common `yaml:",inline"`
	Field  string `yaml:"field"`
	Target Target `yaml:"target"`
}

type extractField struct {
	field  string
	target Target
}

func newExtractField(dec cdc.ConfigDecoder) (InPlacer, error) {
	var c ExtractFieldConfig
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	if err := errors.Join(checkTarget(dec, &c.Target), required(dec, "field", c.Field, "field: address")); err != nil {
		return nil, err
	}
	return &extractField{field: c.Field, target: c.Target}, nil
}

func (t *extractField) ApplyInPlace(rec *cdc.Record) (bool, error) {
	if t.target == TargetKey {
		if rec.Key == nil {
			return true, nil
		}
		row, err := t.extract(rec.Key)
		if err != nil {
			return false, fmt.Errorf("key of %s: %w", rec.Topic, err)
		}
		rec.Key = row
		return true, nil
	}
	if rec.Tombstone {
		return true, nil
	}
	row, err := t.extract(valueRow(rec))
	if err != nil {
		return false, fmt.Errorf("value of %s: %w", rec.Topic, err)
	}
	rec.Flat, rec.Before, rec.After = true, nil, row
	return true, nil
}

func (t *extractField) extract(row cdc.Row) (cdc.Row, error) {
	f, ok := row.Get(t.field)
	if !ok {
		return nil, errorf("no field %s", t.field)
	}
	switch v := f.Value.(type) {
	case nil:
		return nil, nil
	case cdc.Row:
		return v, nil
	case map[string]any:
		return rowOfMap(v), nil
	}
	return nil, errorf("field %s holds a %s, not a struct or map: keys and values are JSON objects", t.field, kindOf(f))
}

// rowOfMap converts a decoded JSON object to a row, keys sorted (the map
// lost their order). Nested objects stay maps.
func rowOfMap(m map[string]any) cdc.Row {
	row := make(cdc.Row, 0, len(m))
	for k, v := range m {
		row = append(row, cdc.Field{Name: k, Value: v})
	}
	sort.Slice(row, func(i, j int) bool { return row[i].Name < row[j].Name })
	return row
}

// kindOf names the type of a field's value for messages.
func kindOf(f cdc.Field) string {
	if f.Type != nil {
		return f.Type.Kind.String()
	}
	switch f.Value.(type) {
	case string:
		return "string"
	case json.Number, int64, uint64, float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", f.Value)
}

// HoistFieldConfig configures hoist_field, Kafka Connect's HoistField:
//
//	transforms:
//	  - type: hoist_field
//	    field: row
//	    target: value                # value (default) | key
//
// Each target row is wrapped in a struct with this single field: {"id":1}
// becomes {"row":{"id":1}}. Tombstones keep their null value.
type HoistFieldConfig struct {
	Common `yaml:",inline"`
	Field  string `yaml:"field"`
	Target Target `yaml:"target"`
}

type hoistField struct {
	field  string
	target Target
}

var structType = &cdc.Type{Kind: cdc.KindStruct}

func newHoistField(dec cdc.ConfigDecoder) (InPlacer, error) {
	var c HoistFieldConfig
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	if err := errors.Join(checkTarget(dec, &c.Target), required(dec, "field", c.Field, "field: row")); err != nil {
		return nil, err
	}
	return &hoistField{field: c.Field, target: c.Target}, nil
}

func (t *hoistField) ApplyInPlace(rec *cdc.Record) (bool, error) {
	return done(applyRows(rec, t.target, func(row cdc.Row, _ *cdc.Record) (cdc.Row, error) {
		return cdc.Row{{Name: t.field, Type: structType, Value: row}}, nil
	}))
}

// FlattenConfig configures flatten, Kafka Connect's Flatten:
//
//	transforms:
//	  - type: flatten
//	    delimiter: "."               # default "."
//	    target: value                # value (default) | key
//
// Nested structs and maps are replaced by their fields, named
// parent<delimiter>child, recursively. Map keys are taken in sorted order
// (a decoded map has lost its order). Arrays are kept as they are.
// Tombstones keep their null value.
type FlattenConfig struct {
	Common    `yaml:",inline"`
	Delimiter *string `yaml:"delimiter"`
	Target    Target  `yaml:"target"`
}

type flatten struct {
	delimiter string
	target    Target
}

func newFlatten(dec cdc.ConfigDecoder) (InPlacer, error) {
	var c FlattenConfig
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	if err := checkTarget(dec, &c.Target); err != nil {
		return nil, err
	}
	d := "."
	if c.Delimiter != nil {
		d = *c.Delimiter
	}
	return &flatten{delimiter: d, target: c.Target}, nil
}

func (t *flatten) ApplyInPlace(rec *cdc.Record) (bool, error) {
	return done(applyRows(rec, t.target, func(row cdc.Row, _ *cdc.Record) (cdc.Row, error) {
		nested := false
		for i := range row {
			switch row[i].Value.(type) {
			case cdc.Row, map[string]any:
				nested = true
			}
		}
		if !nested {
			return row, nil
		}
		out := make(cdc.Row, 0, len(row)+4)
		return t.flatten(out, "", row), nil
	}))
}

func (t *flatten) flatten(out cdc.Row, prefix string, row cdc.Row) cdc.Row {
	for _, f := range row {
		name := prefix + f.Name
		switch v := f.Value.(type) {
		case cdc.Row:
			if !f.Unchanged {
				out = t.flatten(out, name+t.delimiter, v)
				continue
			}
		case map[string]any:
			if !f.Unchanged {
				out = t.flatten(out, name+t.delimiter, rowOfMap(v))
				continue
			}
		}
		f.Name = name
		out = append(out, f)
	}
	return out
}

// text formats a value as header or string text: numbers in decimal,
// bytes in base64 (as in JSON), structures as JSON.
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case uint64:
		return strconv.FormatUint(v, 10)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return strconv.FormatFloat(v, 'g', -1, 64)
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(v), 'f', -1, 32)
	case bool:
		return strconv.FormatBool(v)
	case json.Number:
		return string(v)
	case []byte:
		return base64.StdEncoding.EncodeToString(v)
	case cdc.Row:
		b, _ := cdc.AppendValue(nil, &cdc.Record{Flat: true, After: v})
		return string(b)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
