package transforms

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/connectd/connectd/cdc"
)

// CastConfig configures cast, Kafka Connect's Cast:
//
//	transforms:
//	  - type: cast
//	    spec: {qty: int16, price: float64, active: boolean, id: string}
//	    target: value                # value (default) | key
//
// Types: int8, int16, int32, int64, float32, float64, boolean, string.
// Numbers convert between each other (a float to an integer truncates
// toward zero), strings are parsed ("12" → 12, "12.5" → 12.5, "true" →
// true), booleans become 1/0 and numbers booleans (non-zero is true);
// anything becomes its text with string. A value that does not fit or
// parse (300 as int8, "abc" as int32, NaN as an integer) is an error that
// names the field and the value: the record goes to the error policy
// rather than being changed silently. Null and unchanged (unavailable)
// values are kept; absent fields are ignored. The field's type becomes the
// target kind.
type CastConfig struct {
	Common `yaml:",inline"`
	Spec   map[string]string `yaml:"spec"`
	Target Target            `yaml:"target"`
}

type cast struct {
	spec   map[string]cdc.Kind
	target Target
}

var castKinds = map[string]cdc.Kind{
	"int8": cdc.KindInt8, "int16": cdc.KindInt16, "int32": cdc.KindInt32, "int64": cdc.KindInt64,
	"float32": cdc.KindFloat32, "float64": cdc.KindFloat64, "boolean": cdc.KindBoolean, "string": cdc.KindString,
}

func newCast(dec cdc.ConfigDecoder) (InPlacer, error) {
	var c CastConfig
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	errs := []error{checkTarget(dec, &c.Target)}
	if len(c.Spec) == 0 {
		errs = append(errs, dec.Errorf("spec", "spec is required: field: type, e.g. spec: {qty: int32}"))
	}
	t := &cast{spec: map[string]cdc.Kind{}, target: c.Target}
	for field, typ := range c.Spec {
		k, ok := castKinds[typ]
		if !ok {
			errs = append(errs, dec.Errorf("spec", "field %s: unknown type %q; want int8, int16, int32, int64, float32, float64, boolean or string", field, typ))
		}
		t.spec[field] = k
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *cast) ApplyInPlace(rec *cdc.Record) (bool, error) {
	return done(applyRows(rec, t.target, func(row cdc.Row, _ *cdc.Record) (cdc.Row, error) {
		var out cdc.Row
		for i := range row {
			f := &row[i]
			k, ok := t.spec[f.Name]
			if !ok || f.Value == nil || f.Unchanged {
				continue
			}
			v, err := castValue(f.Value, k)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", f.Name, err)
			}
			if out == nil {
				out = row.Clone()
			}
			typ := &cdc.Type{Kind: k}
			if f.Type != nil {
				typ.Optional = f.Type.Optional
			}
			out[i].Value, out[i].Type = v, typ
		}
		if out == nil {
			return row, nil
		}
		return out, nil
	}))
}

// castValue converts v to kind k: int64 for the integer kinds, float32 or
// float64, bool, string.
func castValue(v any, k cdc.Kind) (any, error) {
	bad := func(why string) error {
		return errorf("cannot cast %s to %s: %s", quote(v), k, why)
	}
	switch k {
	case cdc.KindString:
		return text(v), nil
	case cdc.KindBoolean:
		switch v := v.(type) {
		case bool:
			return v, nil
		case string:
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return nil, bad("want true or false")
			}
			return b, nil
		}
		f, ok := number(v)
		if !ok {
			return nil, bad("not a number or boolean")
		}
		return f != 0, nil
	case cdc.KindFloat32, cdc.KindFloat64:
		var f float64
		switch v := v.(type) {
		case bool:
			f = b2f(v)
		case string:
			p, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return nil, bad("not a number")
			}
			f = p
		default:
			p, ok := number(v)
			if !ok {
				return nil, bad("not a number")
			}
			f = p
		}
		if k == cdc.KindFloat32 {
			if !math.IsInf(f, 0) && !math.IsNaN(f) && math.Abs(f) > math.MaxFloat32 {
				return nil, bad("out of float32 range")
			}
			return float32(f), nil // as the MySQL source gives FLOAT columns
		}
		return f, nil
	}
	// Integers.
	var lo, hi int64
	switch k {
	case cdc.KindInt8:
		lo, hi = math.MinInt8, math.MaxInt8
	case cdc.KindInt16:
		lo, hi = math.MinInt16, math.MaxInt16
	case cdc.KindInt32:
		lo, hi = math.MinInt32, math.MaxInt32
	default:
		lo, hi = math.MinInt64, math.MaxInt64
	}
	var n int64
	switch v := v.(type) {
	case bool:
		if v {
			n = 1
		}
	case int64:
		n = v
	case uint64:
		if v > math.MaxInt64 {
			return nil, bad("out of range")
		}
		n = int64(v)
	case string, json.Number:
		s := strings.TrimSpace(fmt.Sprint(v))
		p, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			f, ferr := strconv.ParseFloat(s, 64)
			if ferr != nil {
				return nil, bad("not an integer")
			}
			if p, err = truncate(f); err != nil {
				return nil, bad(err.Error())
			}
		}
		n = p
	default:
		f, ok := number(v)
		if !ok {
			return nil, bad("not a number")
		}
		p, err := truncate(f)
		if err != nil {
			return nil, bad(err.Error())
		}
		n = p
	}
	if n < lo || n > hi {
		return nil, bad(fmt.Sprintf("out of %s range [%d, %d]", k, lo, hi))
	}
	return n, nil
}

func truncate(f float64) (int64, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("not a finite number")
	}
	f = math.Trunc(f)
	if f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, fmt.Errorf("out of range")
	}
	return int64(f), nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// number returns a numeric value as a float64.
func number(v any) (float64, bool) {
	switch v := v.(type) {
	case int64:
		return float64(v), true
	case uint64:
		return float64(v), true
	case float64:
		return v, true
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case int:
		return float64(v), true
	case int32:
		return float64(v), true
	case float32:
		return float64(v), true
	}
	return 0, false
}

// quote shows a value in an error message.
func quote(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case []byte:
		return "bytes " + strconv.Quote(string(v))
	}
	return fmt.Sprintf("%v (%T)", v, v)
}

// TimestampConvertConfig configures timestamp_convert, Kafka Connect's
// TimestampConverter:
//
//	transforms:
//	  - type: timestamp_convert
//	    field: created_at
//	    target_type: string          # string | unix | Date | Time | Timestamp
//	    format: "2006-01-02 15:04:05"   # Go layout, for string input and output
//	    unix_precision: milliseconds    # seconds | milliseconds (default) | microseconds | nanoseconds
//	    target: value                # value (default) | key
//
// The input is read from the field's type when it has one: Debezium's
// io.debezium.time.Date (days), Timestamp (ms), MicroTimestamp (µs),
// NanoTimestamp (ns), ZonedTimestamp (RFC 3339 text) and Kafka Connect's
// Date (days), Time (ms of the day) and Timestamp (ms). Without a type (a
// sink reading JSON), an integer is a unix time in unix_precision and a
// string is parsed with format (RFC 3339 when format is empty). Output, in
// UTC: string (formatted with format, RFC 3339 by default), unix (integer
// in unix_precision), Date (Kafka Connect Date: days since the epoch),
// Time (ms since midnight), Timestamp (Kafka Connect Timestamp: ms since
// the epoch). Unparseable input is an error naming the field and value.
// Null and unchanged values are kept.
type TimestampConvertConfig struct {
	Common        `yaml:",inline"`
	Field         string `yaml:"field"`
	TargetType    string `yaml:"target_type"`
	Format        string `yaml:"format"`
	UnixPrecision string `yaml:"unix_precision"`
	Target        Target `yaml:"target"`
}

type timestampConvert struct {
	field, targetType, format string
	unit                      time.Duration
	target                    Target
}

var precisions = map[string]time.Duration{
	"seconds": time.Second, "milliseconds": time.Millisecond, "microseconds": time.Microsecond, "nanoseconds": time.Nanosecond,
}

func newTimestampConvert(dec cdc.ConfigDecoder) (InPlacer, error) {
	var c TimestampConvertConfig
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	errs := []error{checkTarget(dec, &c.Target), required(dec, "field", c.Field, "field: created_at")}
	switch c.TargetType {
	case "string", "unix", "Date", "Time", "Timestamp":
	case "":
		errs = append(errs, dec.Errorf("target_type", "target_type is required: string, unix, Date, Time or Timestamp"))
	default:
		errs = append(errs, dec.Errorf("target_type", "unknown target_type %q; want string, unix, Date, Time or Timestamp", c.TargetType))
	}
	if c.UnixPrecision == "" {
		c.UnixPrecision = "milliseconds"
	}
	unit, ok := precisions[c.UnixPrecision]
	if !ok {
		errs = append(errs, dec.Errorf("unix_precision", "unknown unix_precision %q; want seconds, milliseconds, microseconds or nanoseconds", c.UnixPrecision))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &timestampConvert{field: c.Field, targetType: c.TargetType, format: c.Format, unit: unit, target: c.Target}, nil
}

const day = 24 * time.Hour

func (t *timestampConvert) ApplyInPlace(rec *cdc.Record) (bool, error) {
	return done(applyRows(rec, t.target, func(row cdc.Row, _ *cdc.Record) (cdc.Row, error) {
		i := index(row, t.field)
		if i < 0 || row[i].Value == nil || row[i].Unchanged {
			return row, nil
		}
		ts, err := t.read(row[i])
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", t.field, err)
		}
		f := row[i]
		f.Value, f.Type = t.write(ts)
		if row[i].Type != nil {
			f.Type = &cdc.Type{Kind: f.Type.Kind, Logical: f.Type.Logical, Optional: row[i].Type.Optional}
		}
		out := row.Clone()
		out[i] = f
		return out, nil
	}))
}

func (t *timestampConvert) read(f cdc.Field) (time.Time, error) {
	bad := func(why string) (time.Time, error) {
		return time.Time{}, errorf("cannot read %s as a timestamp: %s", quote(f.Value), why)
	}
	logical := ""
	if f.Type != nil {
		logical = f.Type.Logical
	}
	if s, ok := f.Value.(string); ok {
		layout := t.format
		if layout == "" || logical == "io.debezium.time.ZonedTimestamp" {
			layout = time.RFC3339Nano
		}
		ts, err := time.Parse(layout, s)
		if err != nil {
			return bad(fmt.Sprintf("does not match layout %q", layout))
		}
		return ts.UTC(), nil
	}
	var n int64
	switch v := f.Value.(type) {
	case int64:
		n = v
	case uint64:
		if v > math.MaxInt64 {
			return bad("out of range")
		}
		n = int64(v)
	case json.Number:
		p, err := v.Int64()
		if err != nil {
			return bad("not an integer")
		}
		n = p
	default:
		return bad("not an integer or a string")
	}
	unit := t.unit
	switch logical {
	case "io.debezium.time.Date", "org.apache.kafka.connect.data.Date":
		unit = day
	case "io.debezium.time.Timestamp", "org.apache.kafka.connect.data.Timestamp", "org.apache.kafka.connect.data.Time", "io.debezium.time.Time":
		unit = time.Millisecond
	case "io.debezium.time.MicroTimestamp", "io.debezium.time.MicroTime":
		unit = time.Microsecond
	case "io.debezium.time.NanoTimestamp", "io.debezium.time.NanoTime":
		unit = time.Nanosecond
	}
	switch unit {
	case day:
		return time.Unix(n*86400, 0).UTC(), nil
	case time.Second:
		return time.Unix(n, 0).UTC(), nil
	case time.Millisecond:
		return time.UnixMilli(n).UTC(), nil
	case time.Microsecond:
		return time.UnixMicro(n).UTC(), nil
	}
	return time.Unix(0, n).UTC(), nil
}

func (t *timestampConvert) write(ts time.Time) (any, *cdc.Type) {
	switch t.targetType {
	case "string":
		layout := t.format
		if layout == "" {
			layout = time.RFC3339Nano
		}
		return ts.Format(layout), &cdc.Type{Kind: cdc.KindString}
	case "unix":
		var n int64
		switch t.unit {
		case time.Second:
			n = ts.Unix()
		case time.Millisecond:
			n = ts.UnixMilli()
		case time.Microsecond:
			n = ts.UnixMicro()
		default:
			n = ts.UnixNano()
		}
		return n, &cdc.Type{Kind: cdc.KindInt64}
	case "Date":
		days := ts.Unix() / 86400
		if ts.Unix() < 0 && ts.Unix()%86400 != 0 {
			days--
		}
		return days, &cdc.Type{Kind: cdc.KindInt32, Logical: "org.apache.kafka.connect.data.Date"}
	case "Time":
		midnight := time.Date(ts.Year(), ts.Month(), ts.Day(), 0, 0, 0, 0, time.UTC)
		return ts.Sub(midnight).Milliseconds(), &cdc.Type{Kind: cdc.KindInt32, Logical: "org.apache.kafka.connect.data.Time"}
	}
	return ts.UnixMilli(), &cdc.Type{Kind: cdc.KindInt64, Logical: "org.apache.kafka.connect.data.Timestamp"}
}
