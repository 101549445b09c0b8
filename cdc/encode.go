package cdc

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendKey appends the Kafka key of rec, the key columns as a JSON object
// such as {"id":42}, to dst. A nil Key appends nothing and returns dst
// unchanged: callers send a null key.
func AppendKey(dst []byte, rec *Record) ([]byte, error) {
	if rec.Key == nil {
		return dst, nil
	}
	return appendRow(dst, rec.Key)
}

// AppendValue appends the Debezium change-event envelope of rec to dst:
//
//	{"before":…,"after":…,"source":{…},"op":"c","ts_ms":…,"transaction":…}
//
// A tombstone appends nothing and returns dst unchanged: callers send a
// null value. A Flat record appends its After row alone, as a plain JSON
// object (null when After is nil).
func AppendValue(dst []byte, rec *Record) ([]byte, error) {
	if rec.Tombstone {
		return dst, nil
	}
	if rec.Flat {
		return appendNullableRow(dst, rec.After)
	}
	if !rec.Op.Valid() {
		return dst, fmt.Errorf("%w: topic %s: invalid op %v", ErrBadEvent, rec.Topic, rec.Op)
	}
	var err error
	dst = append(dst, `{"before":`...)
	if dst, err = appendNullableRow(dst, rec.Before); err != nil {
		return dst, err
	}
	dst = append(dst, `,"after":`...)
	if dst, err = appendNullableRow(dst, rec.After); err != nil {
		return dst, err
	}
	dst = append(dst, `,"source":`...)
	if dst, err = appendSource(dst, &rec.Source); err != nil {
		return dst, err
	}
	dst = append(dst, `,"op":"`...)
	dst = append(dst, byte(rec.Op))
	dst = append(dst, `","ts_ms":`...)
	dst = strconv.AppendInt(dst, millis(rec.Time), 10)
	dst = append(dst, `,"transaction":`...)
	if t := rec.Transaction; t != nil {
		dst = append(dst, `{"id":`...)
		dst = appendString(dst, t.ID)
		dst = append(dst, `,"total_order":`...)
		dst = strconv.AppendInt(dst, t.TotalOrder, 10)
		dst = append(dst, `,"data_collection_order":`...)
		dst = strconv.AppendInt(dst, t.DataCollectionOrder, 10)
		dst = append(dst, '}')
	} else {
		dst = append(dst, "null"...)
	}
	return append(dst, '}'), nil
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func appendSource(dst []byte, s *SourceInfo) ([]byte, error) {
	dst = append(dst, `{"version":`...)
	dst = appendString(dst, s.Version)
	dst = append(dst, `,"connector":`...)
	dst = appendString(dst, s.Connector)
	dst = append(dst, `,"name":`...)
	dst = appendString(dst, s.Name)
	dst = append(dst, `,"ts_ms":`...)
	dst = strconv.AppendInt(dst, s.TsMs, 10)
	dst = append(dst, `,"snapshot":`...)
	if s.Snapshot == "" {
		dst = append(dst, `"false"`...)
	} else {
		dst = appendString(dst, s.Snapshot)
	}
	dst = append(dst, `,"db":`...)
	dst = appendString(dst, s.DB)
	dst = append(dst, `,"sequence":`...)
	if s.Sequence == "" {
		dst = append(dst, "null"...)
	} else {
		dst = appendString(dst, s.Sequence)
	}
	if s.Schema != "" {
		dst = append(dst, `,"schema":`...)
		dst = appendString(dst, s.Schema)
	}
	dst = append(dst, `,"table":`...)
	dst = appendString(dst, s.Table)
	var err error
	for i := range s.Extra {
		dst = append(dst, ',')
		dst = appendString(dst, s.Extra[i].Name)
		dst = append(dst, ':')
		if dst, err = appendValue(dst, s.Extra[i].Value); err != nil {
			return dst, fmt.Errorf("encoding source field %s: %w", s.Extra[i].Name, err)
		}
	}
	return append(dst, '}'), nil
}

func appendNullableRow(dst []byte, r Row) ([]byte, error) {
	if r == nil {
		return append(dst, "null"...), nil
	}
	return appendRow(dst, r)
}

// appendRow encodes r as a JSON object in column order. Unchanged fields
// are encoded as Debezium does for unavailable TOAST values: the
// placeholder string "__debezium_unavailable_value".
func appendRow(dst []byte, r Row) ([]byte, error) {
	dst = append(dst, '{')
	var err error
	for i := range r {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, r[i].Name)
		dst = append(dst, ':')
		if r[i].Unchanged {
			// A source may carry its configured placeholder as the value.
			ph, ok := r[i].Value.(string)
			if !ok {
				ph = UnavailableValue
			}
			dst = appendString(dst, ph)
			continue
		}
		if dst, err = appendValue(dst, r[i].Value); err != nil {
			return dst, fmt.Errorf("encoding column %s: %w", r[i].Name, err)
		}
	}
	return append(dst, '}'), nil
}

// UnavailableValue is the placeholder Debezium writes for a column value the
// source did not send (Postgres unchanged TOAST).
const UnavailableValue = "__debezium_unavailable_value"

func appendValue(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return appendString(dst, v), nil
	case int64:
		return strconv.AppendInt(dst, v, 10), nil
	case int:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case uint64:
		return strconv.AppendUint(dst, v, 10), nil
	case uint32:
		return strconv.AppendUint(dst, uint64(v), 10), nil
	case float64:
		return appendFloat(dst, v, 64), nil
	case float32:
		return appendFloat(dst, float64(v), 32), nil
	case bool:
		return strconv.AppendBool(dst, v), nil
	case []byte:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, v)
		return append(dst, '"'), nil
	case json.Number:
		return append(dst, v...), nil
	case Row:
		return appendRow(dst, v)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return dst, err
		}
		return append(dst, b...), nil
	}
}

// appendFloat encodes f as JSON does; NaN and infinities, which JSON cannot
// hold, become the strings "NaN", "Infinity" and "-Infinity".
func appendFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21)) {
		format = 'e'
	}
	return strconv.AppendFloat(dst, f, format, -1, bits)
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does; <, > and & are not escaped (the output is not HTML).
func AppendString(dst []byte, s string) []byte { return appendString(dst, s) }

func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
