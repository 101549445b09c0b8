package postgres

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/sinks/view"
)

// pgType returns the column type for a field: from its schema type when
// the event carried one, else from the JSON value. ok is false for a NULL
// of unknown type (the column waits for a non-null value).
func pgType(f *cdc.Field) (string, bool) {
	if t := f.Type; t != nil {
		switch t.Logical {
		case "io.debezium.time.Date":
			return "date", true
		case "io.debezium.time.Time", "io.debezium.time.MicroTime", "io.debezium.time.NanoTime":
			return "time", true
		case "io.debezium.time.Timestamp", "io.debezium.time.MicroTimestamp", "io.debezium.time.NanoTimestamp":
			return "timestamp", true
		case "io.debezium.time.ZonedTimestamp":
			return "timestamptz", true
		case "io.debezium.time.ZonedTime":
			return "timetz", true
		case "io.debezium.data.Json":
			return "jsonb", true
		case "io.debezium.data.Uuid":
			return "uuid", true
		case "org.apache.kafka.connect.data.Decimal", "io.debezium.data.VariableScaleDecimal":
			return "numeric", true
		}
		switch t.Kind {
		case cdc.KindInt8, cdc.KindInt16:
			return "smallint", true
		case cdc.KindInt32:
			return "integer", true
		case cdc.KindInt64:
			return "bigint", true
		case cdc.KindFloat32:
			return "real", true
		case cdc.KindFloat64:
			return "double precision", true
		case cdc.KindBoolean:
			return "boolean", true
		case cdc.KindBytes:
			return "bytea", true
		case cdc.KindArray, cdc.KindMap, cdc.KindStruct:
			return "jsonb", true
		case cdc.KindString:
			return "text", true
		}
	}
	switch v := f.Value.(type) {
	case nil:
		return "", false
	case json.Number:
		if strings.ContainsAny(string(v), ".eE") {
			return "numeric", true
		}
		if _, err := v.Int64(); err != nil {
			return "numeric", true // beyond bigint: BIGINT UNSIGNED and friends
		}
		return "bigint", true
	case int64, int, int32:
		return "bigint", true
	case uint64:
		return "numeric", true
	case float64, float32:
		return "double precision", true
	case bool:
		return "boolean", true
	case []byte:
		return "bytea", true
	case []any, map[string]any, cdc.Row:
		return "jsonb", true
	}
	return "text", true
}

// widen returns the type a column of type old must have to also hold
// values of type new, and whether that is a compatible widening.
func widen(old, new string) (string, bool) {
	if old == new {
		return old, true
	}
	rank := map[string]int{"smallint": 1, "integer": 2, "bigint": 3, "numeric": 4}
	if ro, ok := rank[old]; ok {
		if rn, ok := rank[new]; ok {
			if rn > ro {
				return new, true
			}
			return old, true
		}
		if new == "double precision" || new == "real" {
			return "numeric", true
		}
	}
	if (old == "real" && new == "double precision") || (old == "double precision" && new == "real") {
		return "double precision", true
	}
	if (old == "real" || old == "double precision") && rank[new] > 0 {
		return "numeric", true
	}
	if old == "timestamp" && new == "timestamptz" {
		return "timestamptz", true
	}
	if old == "text" {
		return "text", true // anything has a text form
	}
	return old, false
}

// text renders a value as the text PostgreSQL reads for a column of type
// typ. ok is false for NULL.
func text(f *cdc.Field, typ string) (string, bool, error) {
	v := f.Value
	if v == nil {
		return "", false, nil
	}
	logical := ""
	if f.Type != nil {
		logical = f.Type.Logical
	}
	switch logical {
	case "io.debezium.time.Date":
		if n, ok := asInt(v); ok {
			return time.Unix(n*86400, 0).UTC().Format("2006-01-02"), true, nil
		}
	case "io.debezium.time.Timestamp":
		if n, ok := asInt(v); ok {
			return time.UnixMilli(n).UTC().Format("2006-01-02 15:04:05.999999"), true, nil
		}
	case "io.debezium.time.MicroTimestamp":
		if n, ok := asInt(v); ok {
			return time.UnixMicro(n).UTC().Format("2006-01-02 15:04:05.999999"), true, nil
		}
	case "io.debezium.time.NanoTimestamp":
		if n, ok := asInt(v); ok {
			return time.Unix(0, n).UTC().Format("2006-01-02 15:04:05.999999"), true, nil
		}
	case "io.debezium.time.Time":
		if n, ok := asInt(v); ok {
			return clock(time.Duration(n) * time.Millisecond), true, nil
		}
	case "io.debezium.time.MicroTime":
		if n, ok := asInt(v); ok {
			return clock(time.Duration(n) * time.Microsecond), true, nil
		}
	case "io.debezium.time.NanoTime":
		if n, ok := asInt(v); ok {
			return clock(time.Duration(n)), true, nil
		}
	case "org.apache.kafka.connect.data.Decimal":
		if s, ok := v.(string); ok && f.Type.Kind == cdc.KindBytes {
			// precise mode: base64 of the unscaled two's-complement value
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return "", false, fmt.Errorf("decimal column %s: %w", f.Name, err)
			}
			scale, _ := strconv.Atoi(f.Type.Params["scale"])
			return decimalText(b, scale), true, nil
		}
	}
	if typ == "bytea" {
		var raw []byte
		switch x := v.(type) {
		case []byte:
			raw = x
		case string:
			b, err := base64.StdEncoding.DecodeString(x)
			if err != nil {
				return "", false, fmt.Errorf("bytes column %s: not base64: %w", f.Name, err)
			}
			raw = b
		}
		return `\x` + hex.EncodeToString(raw), true, nil
	}
	if typ == "jsonb" {
		if s, ok := v.(string); ok && logical == "io.debezium.data.Json" {
			return s, true, nil
		}
		return string(view.AppendJSON(nil, v)), true, nil
	}
	b, _ := view.AppendText(nil, v)
	return string(b), true, nil
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	}
	return 0, false
}

func clock(d time.Duration) string {
	neg := d < 0
	if neg {
		d = -d
	}
	h := d / time.Hour
	m := (d % time.Hour) / time.Minute
	s := (d % time.Minute) / time.Second
	us := (d % time.Second) / time.Microsecond
	out := fmt.Sprintf("%02d:%02d:%02d.%06d", h, m, s, us)
	if neg {
		out = "-" + out
	}
	return out
}

// decimalText renders a big-endian two's-complement unscaled value with
// scale digits after the point.
func decimalText(b []byte, scale int) string {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(b)*8)))
	}
	s := n.String()
	if scale <= 0 {
		return s
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for len(s) <= scale {
		s = "0" + s
	}
	s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	if neg {
		s = "-" + s
	}
	return s
}
