package postgres

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/connectd/connectd/cdc"
)

// Built-in type OIDs the converter knows by heart (pg_type.dat).
const (
	oidBool        = 16
	oidBytea       = 17
	oidChar        = 18
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidOID         = 26
	oidJSON        = 114
	oidXML         = 142
	oidCIDR        = 650
	oidFloat4      = 700
	oidFloat8      = 701
	oidMacaddr8    = 774
	oidMoney       = 790
	oidMacaddr     = 829
	oidInet        = 869
	oidBPChar      = 1042
	oidVarchar     = 1043
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidInterval    = 1186
	oidTimetz      = 1266
	oidBit         = 1560
	oidVarbit      = 1562
	oidNumeric     = 1700
	oidUUID        = 2950
	oidJSONB       = 3802
)

// firstUserOID is FirstNormalObjectId: types at or above it are
// user-defined (enums, domains, extension types such as hstore).
const firstUserOID = 16384

// DecimalHandling says how numeric and money values are represented.
type DecimalHandling string

// The decimal_handling modes, as Debezium's decimal.handling.mode.
const (
	DecimalString  DecimalHandling = "string"
	DecimalDouble  DecimalHandling = "double"
	DecimalPrecise DecimalHandling = "precise"
)

// typeInfo is what the catalog says about a type the converter does not
// know by OID.
type typeInfo struct {
	oid      uint32
	name     string
	typtype  byte   // b base, d domain, e enum, r range, m multirange, c composite
	category byte   // pg_type.typcategory; 'A' for arrays
	base     uint32 // domain base type
	baseMod  int32  // domain base typmod
	elem     uint32 // array element type
	labels   []string
}

// converter turns a value's text form (as pgoutput and a text-format query
// both send it) into its cdc representation. It is the one conversion
// path shared by snapshot and stream.
type converter func(text []byte) (any, error)

// column is one column of a captured table.
type column struct {
	name     string
	oid      uint32
	typmod   int32
	typ      *cdc.Type
	conv     converter
	notNull  bool
	keyOrder int // 1-based position in the key, 0 when not a key column
}

// typeMapper builds column types and converters. It is used by one
// goroutine at a time (pgtype.Map is not safe for concurrent use).
type typeMapper struct {
	decimal DecimalHandling
	tm      *pgtype.Map
	// lookup resolves user-defined and array types through the catalog.
	lookup func(oid uint32) (*typeInfo, error)
}

func newTypeMapper(decimal DecimalHandling, lookup func(uint32) (*typeInfo, error)) *typeMapper {
	return &typeMapper{decimal: decimal, tm: pgtype.NewMap(), lookup: lookup}
}

// mapColumn fills c.typ and c.conv for c.oid and c.typmod.
func (m *typeMapper) mapColumn(c *column) error {
	t, conv, err := m.mapType(c.oid, c.typmod, 0)
	if err != nil {
		return fmt.Errorf("column %s: %w", c.name, err)
	}
	t.Optional = !c.notNull
	c.typ, c.conv = t, conv
	return nil
}

func (m *typeMapper) mapType(oid uint32, typmod int32, depth int) (*cdc.Type, converter, error) {
	if depth > 8 {
		return nil, nil, fmt.Errorf("type %d: nesting too deep", oid)
	}
	str := func(logical, src string) (*cdc.Type, converter, error) {
		return &cdc.Type{Kind: cdc.KindString, Logical: logical, SourceType: src}, convString, nil
	}
	switch oid {
	case oidBool:
		return &cdc.Type{Kind: cdc.KindBoolean, SourceType: "BOOL"}, convBool, nil
	case oidInt2:
		return &cdc.Type{Kind: cdc.KindInt16, SourceType: "INT2"}, convInt, nil
	case oidInt4:
		return &cdc.Type{Kind: cdc.KindInt32, SourceType: "INT4"}, convInt, nil
	case oidInt8:
		return &cdc.Type{Kind: cdc.KindInt64, SourceType: "INT8"}, convInt, nil
	case oidOID:
		return &cdc.Type{Kind: cdc.KindInt64, SourceType: "OID"}, convInt, nil
	case oidFloat4:
		return &cdc.Type{Kind: cdc.KindFloat32, SourceType: "FLOAT4"}, convFloat, nil
	case oidFloat8:
		return &cdc.Type{Kind: cdc.KindFloat64, SourceType: "FLOAT8"}, convFloat, nil
	case oidNumeric:
		return m.numericType(typmod)
	case oidMoney:
		t, conv := m.decimalType(2, "MONEY", true)
		return t, func(b []byte) (any, error) { return conv(moneyDigits(b)) }, nil
	case oidText, oidVarchar, oidBPChar, oidName, oidChar:
		return str("", strings.ToUpper(pgTypeName(oid)))
	case oidBytea:
		return &cdc.Type{Kind: cdc.KindBytes, SourceType: "BYTEA"}, convBytea, nil
	case oidUUID:
		return str("io.debezium.data.Uuid", "UUID")
	case oidJSON:
		return str("io.debezium.data.Json", "JSON")
	case oidJSONB:
		return str("io.debezium.data.Json", "JSONB")
	case oidXML:
		return str("io.debezium.data.Xml", "XML")
	case oidInet, oidCIDR, oidMacaddr, oidMacaddr8:
		return str("", strings.ToUpper(pgTypeName(oid)))
	case oidDate:
		return &cdc.Type{Kind: cdc.KindInt32, Logical: "io.debezium.time.Date", SourceType: "DATE"}, m.convDate, nil
	case oidTime:
		if p := timePrecision(typmod); p <= 3 {
			return &cdc.Type{Kind: cdc.KindInt32, Logical: "io.debezium.time.Time", SourceType: "TIME"}, convTimeMillis, nil
		}
		return &cdc.Type{Kind: cdc.KindInt64, Logical: "io.debezium.time.MicroTime", SourceType: "TIME"}, convTimeMicros, nil
	case oidTimetz:
		return &cdc.Type{Kind: cdc.KindString, Logical: "io.debezium.time.ZonedTime", SourceType: "TIMETZ"}, convTimetz, nil
	case oidTimestamp:
		if p := timePrecision(typmod); p <= 3 {
			return &cdc.Type{Kind: cdc.KindInt64, Logical: "io.debezium.time.Timestamp", SourceType: "TIMESTAMP"}, m.convTimestamp(false), nil
		}
		return &cdc.Type{Kind: cdc.KindInt64, Logical: "io.debezium.time.MicroTimestamp", SourceType: "TIMESTAMP"}, m.convTimestamp(true), nil
	case oidTimestamptz:
		return &cdc.Type{Kind: cdc.KindString, Logical: "io.debezium.time.ZonedTimestamp", SourceType: "TIMESTAMPTZ"}, m.convTimestamptz, nil
	case oidInterval:
		return &cdc.Type{Kind: cdc.KindInt64, Logical: "io.debezium.time.MicroDuration", SourceType: "INTERVAL"}, m.convInterval, nil
	case oidBit:
		if typmod == 1 {
			return &cdc.Type{Kind: cdc.KindBoolean, SourceType: "BIT"}, convBit1, nil
		}
		return &cdc.Type{Kind: cdc.KindBytes, Logical: "io.debezium.data.Bits", Params: map[string]string{"length": strconv.Itoa(int(max(typmod, 1)))}, SourceType: "BIT"}, convBits, nil
	case oidVarbit:
		n := int64(typmod)
		if typmod < 0 {
			n = math.MaxInt32
		}
		return &cdc.Type{Kind: cdc.KindBytes, Logical: "io.debezium.data.Bits", Params: map[string]string{"length": strconv.FormatInt(n, 10)}, SourceType: "VARBIT"}, convBits, nil
	}
	if m.lookup == nil {
		return str("", strconv.FormatUint(uint64(oid), 10))
	}
	info, err := m.lookup(oid)
	if err != nil {
		return nil, nil, fmt.Errorf("looking up type %d: %w", oid, err)
	}
	if info == nil {
		return str("", strconv.FormatUint(uint64(oid), 10))
	}
	switch {
	case info.typtype == 'd':
		t, conv, err := m.mapType(info.base, info.baseMod, depth+1)
		if err != nil {
			return nil, nil, err
		}
		t2 := *t
		t2.SourceType = strings.ToUpper(info.name)
		return &t2, conv, nil
	case info.typtype == 'e':
		return &cdc.Type{Kind: cdc.KindString, Logical: "io.debezium.data.Enum",
			Params: map[string]string{"allowed": strings.Join(info.labels, ",")}, SourceType: strings.ToUpper(info.name)}, convString, nil
	case info.category == 'A' && info.elem != 0:
		et, econv, err := m.mapType(info.elem, -1, depth+1)
		if err != nil {
			return nil, nil, err
		}
		if et.Kind == cdc.KindStruct {
			// Variable-scale decimals inside arrays are kept as strings.
			econv = convString
		}
		return &cdc.Type{Kind: cdc.KindArray, SourceType: strings.ToUpper(strings.TrimPrefix(info.name, "_")) + "[]"}, arrayConverter(econv), nil
	case info.name == "hstore":
		return &cdc.Type{Kind: cdc.KindString, Logical: "io.debezium.data.Json", SourceType: "HSTORE"}, convHstore, nil
	case info.name == "ltree":
		return str("io.debezium.data.Ltree", "LTREE")
	}
	return str("", strings.ToUpper(info.name))
}

func pgTypeName(oid uint32) string {
	switch oid {
	case oidText:
		return "text"
	case oidVarchar:
		return "varchar"
	case oidBPChar:
		return "bpchar"
	case oidName:
		return "name"
	case oidChar:
		return "char"
	case oidInet:
		return "inet"
	case oidCIDR:
		return "cidr"
	case oidMacaddr:
		return "macaddr"
	case oidMacaddr8:
		return "macaddr8"
	}
	return strconv.FormatUint(uint64(oid), 10)
}

// timePrecision is the fractional-second precision of a time or timestamp
// typmod; -1 (unspecified) means 6.
func timePrecision(typmod int32) int32 {
	if typmod < 0 {
		return 6
	}
	return typmod
}

func (m *typeMapper) numericType(typmod int32) (*cdc.Type, converter, error) {
	if typmod < 4 { // no precision and scale: variable scale
		switch m.decimal {
		case DecimalPrecise:
			return &cdc.Type{Kind: cdc.KindStruct, Logical: "io.debezium.data.VariableScaleDecimal", SourceType: "NUMERIC"}, convVariableDecimal, nil
		default:
			t, conv := m.decimalType(-1, "NUMERIC", false)
			return t, conv, nil
		}
	}
	scale := int((typmod - 4) & 0xffff)
	precision := int(((typmod - 4) >> 16) & 0xffff)
	t, conv := m.decimalType(scale, "NUMERIC", false)
	if t.Params != nil {
		t.Params["connect.decimal.precision"] = strconv.Itoa(precision)
	}
	return t, conv, nil
}

// decimalType is a decimal of fixed scale (scale < 0: variable, only for
// string and double).
func (m *typeMapper) decimalType(scale int, src string, money bool) (*cdc.Type, converter) {
	switch m.decimal {
	case DecimalDouble:
		return &cdc.Type{Kind: cdc.KindFloat64, SourceType: src}, convFloat
	case DecimalPrecise:
		t := &cdc.Type{Kind: cdc.KindBytes, Logical: "org.apache.kafka.connect.data.Decimal",
			Params: map[string]string{"scale": strconv.Itoa(scale)}, SourceType: src}
		return t, func(b []byte) (any, error) { return preciseDecimal(b, scale) }
	}
	var params map[string]string
	if scale >= 0 && !money {
		params = map[string]string{"scale": strconv.Itoa(scale)}
	}
	return &cdc.Type{Kind: cdc.KindString, Params: params, SourceType: src}, convString
}

func convString(b []byte) (any, error) { return string(b), nil }

func convBool(b []byte) (any, error) {
	switch string(b) {
	case "t", "true":
		return true, nil
	case "f", "false":
		return false, nil
	}
	return nil, fmt.Errorf("bad boolean %q", b)
}

func convInt(b []byte) (any, error) {
	return strconv.ParseInt(string(b), 10, 64)
}

// convFloat parses the shortest-exact text PostgreSQL sends, so float4
// values encode as their decimal text (1.1, not 1.100000023841858).
func convFloat(b []byte) (any, error) {
	return strconv.ParseFloat(string(b), 64)
}

func convBytea(b []byte) (any, error) {
	if !bytes.HasPrefix(b, []byte(`\x`)) {
		return nil, fmt.Errorf("bytea not in hex format (set bytea_output = hex)")
	}
	out := make([]byte, hex.DecodedLen(len(b)-2))
	_, err := hex.Decode(out, b[2:])
	return out, err
}

func convBit1(b []byte) (any, error) { return string(b) == "1", nil }

// convBits encodes a bit string as Debezium's Bits: the number the bits
// spell (first bit most significant) as little-endian bytes, ceil(n/8) long.
func convBits(b []byte) (any, error) {
	n := len(b)
	out := make([]byte, (n+7)/8)
	for i := range n {
		if b[n-1-i] == '1' {
			out[i/8] |= 1 << (i % 8)
		}
	}
	return out, nil
}

// moneyDigits strips currency symbols and group separators from money's
// text ("$1,234.56", "-$5.00", "($5.00)").
func moneyDigits(b []byte) []byte {
	out := make([]byte, 0, len(b))
	neg := false
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9', c == '.':
			out = append(out, c)
		case c == '-', c == '(':
			neg = true
		}
	}
	if neg {
		out = append([]byte{'-'}, out...)
	}
	return out
}

// preciseDecimal is Kafka Connect's Decimal: the unscaled value as a
// big-endian two's-complement integer. NaN and infinities have no such
// form and become null.
func preciseDecimal(b []byte, scale int) (any, error) {
	s := string(b)
	if s == "NaN" || s == "Infinity" || s == "-Infinity" {
		return nil, nil
	}
	intPart, frac, _ := strings.Cut(s, ".")
	if len(frac) > scale {
		return nil, fmt.Errorf("decimal %s has more than %d fractional digits", s, scale)
	}
	frac += strings.Repeat("0", scale-len(frac))
	n, ok := new(big.Int).SetString(intPart+frac, 10)
	if !ok {
		return nil, fmt.Errorf("bad decimal %q", s)
	}
	return twosComplement(n), nil
}

func twosComplement(n *big.Int) []byte {
	if n.Sign() >= 0 {
		b := n.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// -n: invert the bits of (|n| - 1).
	m := new(big.Int).Neg(n)
	m.Sub(m, big.NewInt(1))
	b := m.Bytes()
	if len(b) == 0 || b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	for i := range b {
		b[i] = ^b[i]
	}
	return b
}

// Types of VariableScaleDecimal's fields.
var (
	scaleType = &cdc.Type{Kind: cdc.KindInt32}
	valueType = &cdc.Type{Kind: cdc.KindBytes}
)

func convVariableDecimal(b []byte) (any, error) {
	s := string(b)
	if s == "NaN" || s == "Infinity" || s == "-Infinity" {
		return nil, nil
	}
	_, frac, _ := strings.Cut(s, ".")
	v, err := preciseDecimal(b, len(frac))
	if err != nil {
		return nil, err
	}
	return cdc.Row{{Name: "scale", Type: scaleType, Value: int64(len(frac))}, {Name: "value", Type: valueType, Value: v}}, nil
}

func (m *typeMapper) convDate(b []byte) (any, error) {
	var d pgtype.Date
	if err := m.tm.Scan(oidDate, pgtype.TextFormatCode, b, &d); err != nil {
		return nil, err
	}
	switch d.InfinityModifier {
	case pgtype.Infinity:
		return int64(math.MaxInt32), nil
	case pgtype.NegativeInfinity:
		return int64(math.MinInt32), nil
	}
	secs := d.Time.Unix()
	days := secs / 86400
	if secs%86400 < 0 {
		days--
	}
	return days, nil
}

// parseClock parses "HH:MM:SS[.ffffff]" into microseconds and returns the
// rest of the text (a zone offset for timetz).
func parseClock(s string) (int64, string, error) {
	if len(s) < 8 || s[2] != ':' || s[5] != ':' {
		return 0, "", fmt.Errorf("bad time %q", s)
	}
	h, err1 := strconv.Atoi(s[0:2])
	mi, err2 := strconv.Atoi(s[3:5])
	se, err3 := strconv.Atoi(s[6:8])
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, "", fmt.Errorf("bad time %q", s)
	}
	us := (int64(h)*3600 + int64(mi)*60 + int64(se)) * 1e6
	rest := s[8:]
	if len(rest) > 0 && rest[0] == '.' {
		j := 1
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		frac := rest[1:j] + "000000"
		f, _ := strconv.ParseInt(frac[:6], 10, 64)
		us += f
		rest = rest[j:]
	}
	return us, rest, nil
}

func convTimeMicros(b []byte) (any, error) {
	us, _, err := parseClock(string(b))
	return us, err
}

func convTimeMillis(b []byte) (any, error) {
	us, _, err := parseClock(string(b))
	return us / 1000, err
}

// convTimetz gives ISO-8601 time in UTC, e.g. "10:15:30.5Z".
func convTimetz(b []byte) (any, error) {
	us, zone, err := parseClock(string(b))
	if err != nil {
		return nil, err
	}
	off, err := parseOffset(zone)
	if err != nil {
		return nil, fmt.Errorf("bad timetz %q: %w", b, err)
	}
	day := int64(86400e6)
	us = ((us-off*1e6)%day + day) % day
	t := time.UnixMicro(us).UTC()
	return t.Format("15:04:05.999999") + "Z", nil
}

// parseOffset parses "+hh[:mm[:ss]]" into seconds east of UTC.
func parseOffset(z string) (int64, error) {
	if z == "" {
		return 0, nil
	}
	sign := int64(1)
	switch z[0] {
	case '-':
		sign = -1
	case '+':
	default:
		return 0, fmt.Errorf("bad zone offset %q", z)
	}
	var secs int64
	mult := int64(3600)
	for part := range strings.SplitSeq(z[1:], ":") {
		n, err := strconv.ParseInt(part, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bad zone offset %q", z)
		}
		secs += n * mult
		mult /= 60
	}
	return sign * secs, nil
}

func (m *typeMapper) convTimestamp(micro bool) converter {
	return func(b []byte) (any, error) {
		var ts pgtype.Timestamp
		if err := m.tm.Scan(oidTimestamp, pgtype.TextFormatCode, b, &ts); err != nil {
			return nil, err
		}
		switch ts.InfinityModifier {
		case pgtype.Infinity:
			return int64(math.MaxInt64), nil
		case pgtype.NegativeInfinity:
			return int64(math.MinInt64), nil
		}
		if micro {
			return ts.Time.UnixMicro(), nil
		}
		return ts.Time.UnixMilli(), nil
	}
}

// convTimestamptz gives ISO-8601 in UTC with as many fractional digits as
// needed, e.g. "2024-01-02T03:04:05.123Z".
func (m *typeMapper) convTimestamptz(b []byte) (any, error) {
	var ts pgtype.Timestamptz
	if err := m.tm.Scan(oidTimestamptz, pgtype.TextFormatCode, b, &ts); err != nil {
		return nil, err
	}
	switch ts.InfinityModifier {
	case pgtype.Infinity:
		return "infinity", nil
	case pgtype.NegativeInfinity:
		return "-infinity", nil
	}
	return ts.Time.UTC().Format("2006-01-02T15:04:05.999999Z"), nil
}

// microsPerMonth is Debezium's average month, 365.25/12 days, in µs.
const microsPerMonth = 2_629_800_000_000

func (m *typeMapper) convInterval(b []byte) (any, error) {
	var iv pgtype.Interval
	if err := m.tm.Scan(oidInterval, pgtype.TextFormatCode, b, &iv); err != nil {
		return nil, err
	}
	return int64(iv.Months)*microsPerMonth + int64(iv.Days)*86_400_000_000 + iv.Microseconds, nil
}

// arrayConverter parses PostgreSQL's array text ("{1,2,NULL}", nested for
// several dimensions) and converts each element with elem.
func arrayConverter(elem converter) converter {
	return func(b []byte) (any, error) {
		s := string(b)
		if i := strings.IndexByte(s, '='); i >= 0 && strings.HasPrefix(s, "[") { // "[0:1]={…}" bounds
			s = s[i+1:]
		}
		v, rest, err := parseArray(s, elem)
		if err != nil {
			return nil, fmt.Errorf("bad array %q: %w", b, err)
		}
		if rest != "" {
			return nil, fmt.Errorf("bad array %q: trailing %q", b, rest)
		}
		return v, nil
	}
}

func parseArray(s string, elem converter) ([]any, string, error) {
	if s == "" || s[0] != '{' {
		return nil, s, fmt.Errorf("expected {")
	}
	s = s[1:]
	out := []any{}
	if strings.HasPrefix(s, "}") {
		return out, s[1:], nil
	}
	for {
		var v any
		var err error
		switch {
		case s == "":
			return nil, s, fmt.Errorf("unterminated array")
		case s[0] == '{':
			v, s, err = parseArray(s, elem)
		case s[0] == '"':
			var sb strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				sb.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, s, fmt.Errorf("unterminated string")
			}
			s = s[i+1:]
			v, err = elem([]byte(sb.String()))
		default:
			i := strings.IndexAny(s, ",}")
			if i < 0 {
				return nil, s, fmt.Errorf("unterminated array")
			}
			tok := s[:i]
			s = s[i:]
			if tok != "NULL" {
				v, err = elem([]byte(tok))
			}
		}
		if err != nil {
			return nil, s, err
		}
		out = append(out, v)
		if s == "" {
			return nil, s, fmt.Errorf("unterminated array")
		}
		if s[0] == '}' {
			return out, s[1:], nil
		}
		if s[0] != ',' {
			return nil, s, fmt.Errorf("expected , or }")
		}
		s = s[1:]
	}
}

// convHstore turns hstore text (`"a"=>"1", "b"=>NULL`) into a JSON object
// string, as Debezium's hstore.handling.mode=json does.
func convHstore(b []byte) (any, error) {
	s := string(b)
	out := []byte{'{'}
	first := true
	readQuoted := func() (string, bool) {
		s = strings.TrimLeft(s, " ,")
		if s == "" || s[0] != '"' {
			return "", false
		}
		var sb strings.Builder
		i := 1
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			sb.WriteByte(s[i])
		}
		if i >= len(s) {
			return "", false
		}
		s = s[i+1:]
		return sb.String(), true
	}
	for {
		k, ok := readQuoted()
		if !ok {
			break
		}
		s = strings.TrimLeft(s, " ")
		if !strings.HasPrefix(s, "=>") {
			return nil, fmt.Errorf("bad hstore %q", b)
		}
		s = strings.TrimLeft(s[2:], " ")
		if !first {
			out = append(out, ',')
		}
		first = false
		out = cdc.AppendString(out, k)
		out = append(out, ':')
		if strings.HasPrefix(s, "NULL") {
			s = s[4:]
			out = append(out, "null"...)
			continue
		}
		v, ok := readQuoted()
		if !ok {
			return nil, fmt.Errorf("bad hstore %q", b)
		}
		out = cdc.AppendString(out, v)
	}
	return string(append(out, '}')), nil
}
