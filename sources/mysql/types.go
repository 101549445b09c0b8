package mysql

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"net/netip"
	"strconv"
	"strings"

	"github.com/connectd/connectd/cdc"
)

// class is how a column's values are represented, whatever protocol they
// were read with.
type class uint8

const (
	clsInt class = iota
	clsFloat32
	clsFloat64
	clsDecimal
	clsBool // BIT(1)
	clsBits // BIT(n>1)
	clsDate
	clsTime
	clsDatetime
	clsTimestamp
	clsYear
	clsText
	clsBytes
	clsEnum
	clsSet
	clsJSON
	clsGeometry
	clsUUID  // MariaDB UUID: 16 bytes in the binlog, text in a result set
	clsInet6 // MariaDB INET6: 16 bytes / text
	clsInet4 // MariaDB INET4: 4 bytes / text
)

// column describes one column: enough to convert its values and to build
// its Debezium type. The snapshot builds it from information_schema, the
// stream from the table map event; both must agree.
type column struct {
	name       string
	cls        class
	bits       int // integer width (8, 16, 24, 32, 64) or BIT length
	unsigned   bool
	precision  int  // DECIMAL
	scale      int  // DECIMAL
	fsp        int  // fractional seconds digits of TIME, DATETIME, TIMESTAMP
	padTo      int  // BINARY(n): values are zero-padded to n bytes
	latin1     bool // raw latin1 bytes (binlog only: the snapshot's connection is utf8mb4)
	nullable   bool
	values     []string // ENUM / SET members
	sourceType string
	typ        *cdc.Type
}

// Debezium / Kafka Connect logical type names.
const (
	logicalDecimal   = "org.apache.kafka.connect.data.Decimal"
	logicalBits      = "io.debezium.data.Bits"
	logicalDate      = "io.debezium.time.Date"
	logicalMicroTime = "io.debezium.time.MicroTime"
	logicalTimestamp = "io.debezium.time.Timestamp"
	logicalMicroTS   = "io.debezium.time.MicroTimestamp"
	logicalZonedTS   = "io.debezium.time.ZonedTimestamp"
	logicalYear      = "io.debezium.time.Year"
	logicalEnum      = "io.debezium.data.Enum"
	logicalEnumSet   = "io.debezium.data.EnumSet"
	logicalJSON      = "io.debezium.data.Json"
	logicalGeometry  = "io.debezium.data.geometry.Geometry"
)

// geometryTypes are the field types of a Geometry struct.
var (
	wkbType  = &cdc.Type{Kind: cdc.KindBytes}
	sridType = &cdc.Type{Kind: cdc.KindInt32, Optional: true}
)

// buildType sets c.typ from the column description, Debezium's defaults
// and the decimal handling mode.
func (c *column) buildType(decimalMode string) {
	t := &cdc.Type{Optional: c.nullable, SourceType: c.sourceType}
	switch c.cls {
	case clsInt:
		switch {
		case c.bits <= 8:
			t.Kind = cdc.KindInt16
		case c.bits == 16 && !c.unsigned:
			t.Kind = cdc.KindInt16
		case c.bits <= 24, c.bits == 32 && !c.unsigned:
			t.Kind = cdc.KindInt32
		default:
			t.Kind = cdc.KindInt64
		}
	case clsFloat32:
		t.Kind = cdc.KindFloat32
	case clsFloat64:
		t.Kind = cdc.KindFloat64
	case clsDecimal:
		switch decimalMode {
		case DecimalDouble:
			t.Kind = cdc.KindFloat64
		case DecimalPrecise:
			t.Kind, t.Logical = cdc.KindBytes, logicalDecimal
			t.Params = map[string]string{"scale": strconv.Itoa(c.scale), "connect.decimal.precision": strconv.Itoa(c.precision)}
		default:
			t.Kind = cdc.KindString
		}
	case clsBool:
		t.Kind = cdc.KindBoolean
	case clsBits:
		t.Kind, t.Logical = cdc.KindBytes, logicalBits
		t.Params = map[string]string{"length": strconv.Itoa(c.bits)}
	case clsDate:
		t.Kind, t.Logical = cdc.KindInt32, logicalDate
	case clsTime:
		t.Kind, t.Logical = cdc.KindInt64, logicalMicroTime
	case clsDatetime:
		t.Kind, t.Logical = cdc.KindInt64, logicalTimestamp
		if c.fsp > 3 {
			t.Logical = logicalMicroTS
		}
	case clsTimestamp:
		t.Kind, t.Logical = cdc.KindString, logicalZonedTS
	case clsYear:
		t.Kind, t.Logical = cdc.KindInt32, logicalYear
	case clsText:
		t.Kind = cdc.KindString
	case clsBytes:
		t.Kind = cdc.KindBytes
	case clsEnum:
		t.Kind, t.Logical = cdc.KindString, logicalEnum
		t.Params = map[string]string{"allowed": strings.Join(c.values, ",")}
	case clsSet:
		t.Kind, t.Logical = cdc.KindString, logicalEnumSet
		t.Params = map[string]string{"allowed": strings.Join(c.values, ",")}
	case clsJSON:
		t.Kind, t.Logical = cdc.KindString, logicalJSON
	case clsGeometry:
		t.Kind, t.Logical = cdc.KindStruct, logicalGeometry
	case clsUUID, clsInet6, clsInet4:
		t.Kind = cdc.KindString
	}
	c.typ = t
}

// convert turns v, a value of column c as the binlog row decoder or the
// binary protocol delivers it, into its Debezium value. It is the only
// conversion path: snapshot and stream rows go through it alike.
func (c *column) convert(v any, decimalMode string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch c.cls {
	case clsInt:
		return c.convertInt(v)
	case clsFloat32:
		switch f := v.(type) {
		case float32:
			return f, nil
		case float64:
			return float32(f), nil
		}
	case clsFloat64:
		switch f := v.(type) {
		case float64:
			return f, nil
		case float32:
			return float64(f), nil
		}
	case clsDecimal:
		s, ok := asString(v)
		if !ok {
			break
		}
		return convertDecimal(s, c.scale, decimalMode)
	case clsBool, clsBits:
		b, ok := c.bitBytes(v)
		if !ok {
			break
		}
		if c.cls == clsBool {
			return b[len(b)-1]&1 != 0, nil
		}
		le := make([]byte, len(b)) // Debezium's Bits are little-endian
		for i := range b {
			le[i] = b[len(b)-1-i]
		}
		return le, nil
	case clsDate:
		s, ok := asString(v)
		if !ok {
			break
		}
		y, m, d, ok := parseDate(s)
		if !ok {
			return nil, fmt.Errorf("%w: DATE %q", ErrConvert, s)
		}
		if m == 0 || d == 0 {
			return c.zero(int64(0)), nil
		}
		return daysFromCivil(y, m, d), nil
	case clsTime:
		s, ok := asString(v)
		if !ok {
			break
		}
		us, ok := parseTime(s)
		if !ok {
			return nil, fmt.Errorf("%w: TIME %q", ErrConvert, s)
		}
		return us, nil
	case clsDatetime, clsTimestamp:
		s, ok := asString(v)
		if !ok {
			break
		}
		y, m, d, ok := parseDate(s)
		var us int64
		if ok && len(s) > 10 {
			us, ok = parseTime(s[11:])
		}
		if !ok {
			return nil, fmt.Errorf("%w: %s %q", ErrConvert, c.sourceType, s)
		}
		if c.cls == clsTimestamp {
			if m == 0 || d == 0 {
				return c.zero("1970-01-01T00:00:00Z"), nil
			}
			return formatZoned(y, m, d, us, c.fsp), nil
		}
		if m == 0 || d == 0 {
			return c.zero(int64(0)), nil
		}
		us += daysFromCivil(y, m, d) * 86_400_000_000
		if c.fsp <= 3 {
			return floorDiv(us, 1000), nil
		}
		return us, nil
	case clsYear:
		switch y := v.(type) {
		case int:
			return int64(y), nil
		case int64:
			return y, nil
		case uint64:
			return int64(y), nil
		case int16:
			return int64(y), nil
		case uint16:
			return int64(y), nil
		}
	case clsText, clsJSON:
		switch s := v.(type) {
		case string:
			if c.latin1 {
				return latin1ToUTF8(s), nil
			}
			return s, nil
		case []byte:
			if c.latin1 {
				return latin1ToUTF8(string(s)), nil
			}
			return string(s), nil
		}
	case clsBytes:
		var b []byte
		switch s := v.(type) {
		case string:
			b = make([]byte, max(len(s), c.padTo))
			copy(b, s)
		case []byte:
			b = make([]byte, max(len(s), c.padTo))
			copy(b, s)
		default:
			return nil, c.badType(v)
		}
		return b, nil
	case clsEnum:
		switch e := v.(type) {
		case int64:
			if e == 0 {
				return "", nil
			}
			if e < 0 || int(e) > len(c.values) {
				return nil, fmt.Errorf("%w: ENUM index %d of %d members (table map without ENUM values?)", ErrConvert, e, len(c.values))
			}
			return c.values[e-1], nil
		case []byte:
			return string(e), nil
		case string:
			return e, nil
		}
	case clsSet:
		switch e := v.(type) {
		case int64:
			var sb strings.Builder
			for i := range c.values {
				if e&(1<<i) != 0 {
					if sb.Len() > 0 {
						sb.WriteByte(',')
					}
					sb.WriteString(c.values[i])
				}
			}
			return sb.String(), nil
		case []byte:
			return string(e), nil
		case string:
			return e, nil
		}
	case clsGeometry:
		s, ok := asString(v)
		if !ok {
			break
		}
		if len(s) < 4 {
			return nil, fmt.Errorf("%w: GEOMETRY value of %d bytes", ErrConvert, len(s))
		}
		return cdc.Row{
			{Name: "wkb", Type: wkbType, Value: []byte(s[4:])},
			{Name: "srid", Type: sridType, Value: int64(int32(binary.LittleEndian.Uint32([]byte(s[:4]))))},
		}, nil
	case clsUUID, clsInet6, clsInet4:
		switch b := v.(type) {
		case []byte: // result set: the server's text form
			return string(b), nil
		case string: // binlog: the binary form
			return formatFixedBinary(c.cls, b)
		}
	}
	return nil, c.badType(v)
}

// formatFixedBinary renders MariaDB's UUID / INET6 / INET4 binary forms as
// the server prints them.
func formatFixedBinary(cls class, s string) (string, error) {
	switch {
	case cls == clsUUID && len(s) == 16:
		const hex = "0123456789abcdef"
		b := make([]byte, 0, 36)
		for i := 0; i < 16; i++ {
			if i == 4 || i == 6 || i == 8 || i == 10 {
				b = append(b, '-')
			}
			b = append(b, hex[s[i]>>4], hex[s[i]&0xF])
		}
		return string(b), nil
	case cls == clsInet6 && len(s) <= 16:
		var a [16]byte
		copy(a[:], s) // trailing zero bytes are stripped in the binlog
		return netip.AddrFrom16(a).String(), nil
	case cls == clsInet4 && len(s) <= 4:
		var a [4]byte
		copy(a[:], s)
		return netip.AddrFrom4(a).String(), nil
	case cls == clsUUID && len(s) < 16:
		return formatFixedBinary(cls, s+strings.Repeat("\x00", 16-len(s)))
	}
	return "", fmt.Errorf("%w: %d bytes for a UUID/INET value", ErrConvert, len(s))
}

func (c *column) badType(v any) error {
	return fmt.Errorf("%w: unexpected %T for %s column", ErrConvert, v, c.sourceType)
}

// zero is the value of a zero date: null where the column allows it,
// else the epoch, as Debezium does.
func (c *column) zero(epoch any) any {
	if c.nullable {
		return nil
	}
	return epoch
}

func (c *column) convertInt(v any) (any, error) {
	var i int64
	var u uint64
	signed := true
	switch n := v.(type) {
	case int8:
		i = int64(n)
	case int16:
		i = int64(n)
	case int32:
		i = int64(n)
	case int64:
		i = n
	case int:
		i = int64(n)
	case uint8:
		u, signed = uint64(n), false
	case uint16:
		u, signed = uint64(n), false
	case uint32:
		u, signed = uint64(n), false
	case uint64:
		u, signed = n, false
	default:
		return nil, c.badType(v)
	}
	if !c.unsigned {
		if signed {
			return i, nil
		}
		return int64(u), nil
	}
	if signed {
		// A decoder that did not know the column is unsigned: reinterpret
		// the bits at the column's width.
		u = uint64(i)
		if c.bits < 64 {
			u &= 1<<c.bits - 1
		}
	}
	if u > math.MaxInt64 {
		return u, nil
	}
	return int64(u), nil
}

// bitBytes returns a BIT value as big-endian bytes of the column's length.
func (c *column) bitBytes(v any) ([]byte, bool) {
	n := (c.bits + 7) / 8
	b := make([]byte, n)
	switch x := v.(type) {
	case int64:
		for i := n - 1; i >= 0; i-- {
			b[i] = byte(x)
			x >>= 8
		}
	case []byte:
		if len(x) > n {
			x = x[len(x)-n:]
		}
		copy(b[n-len(x):], x)
	case string:
		if len(x) > n {
			x = x[len(x)-n:]
		}
		copy(b[n-len(x):], x)
	default:
		return nil, false
	}
	return b, true
}

func asString(v any) (string, bool) {
	switch s := v.(type) {
	case string:
		return s, true
	case []byte:
		return string(s), true
	}
	return "", false
}

// convertDecimal renders a DECIMAL's text with exactly scale fraction
// digits (string), as a float64 (double) or as Kafka Connect's Decimal:
// the unscaled value in big-endian two's complement (precise).
func convertDecimal(s string, scale int, mode string) (any, error) {
	neg := strings.HasPrefix(s, "-")
	digits := strings.TrimPrefix(s, "-")
	ip, fp, _ := strings.Cut(digits, ".")
	ip = strings.TrimLeft(ip, "0")
	if !allDigits(ip) || !allDigits(fp) || len(fp) > scale && strings.Trim(fp[scale:], "0") != "" {
		return nil, fmt.Errorf("%w: DECIMAL %q", ErrConvert, s)
	}
	if len(fp) > scale {
		fp = fp[:scale]
	}
	fp += strings.Repeat("0", scale-len(fp))
	if strings.Trim(ip+fp, "0") == "" {
		neg = false
	}
	switch mode {
	case DecimalPrecise:
		n, ok := new(big.Int).SetString("0"+ip+fp, 10)
		if !ok {
			return nil, fmt.Errorf("%w: DECIMAL %q", ErrConvert, s)
		}
		if neg {
			n.Neg(n)
		}
		return twosComplement(n), nil
	}
	var sb strings.Builder
	if neg {
		sb.WriteByte('-')
	}
	if ip == "" {
		ip = "0"
	}
	sb.WriteString(ip)
	if scale > 0 {
		sb.WriteByte('.')
		sb.WriteString(fp)
	}
	if mode == DecimalDouble {
		return strconv.ParseFloat(sb.String(), 64)
	}
	return sb.String(), nil
}

// twosComplement is Java's BigInteger.toByteArray: the shortest big-endian
// two's complement form.
func twosComplement(n *big.Int) []byte {
	if n.Sign() >= 0 {
		b := n.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	// -n = ^(n-1): encode |n|-1 and invert.
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

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseDate reads "YYYY-MM-DD" at the start of s.
func parseDate(s string) (y, m, d int, ok bool) {
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return 0, 0, 0, false
	}
	y, ok1 := atoi(s[0:4])
	m, ok2 := atoi(s[5:7])
	d, ok3 := atoi(s[8:10])
	return y, m, d, ok1 && ok2 && ok3
}

// parseTime reads "[-]H+:MM:SS[.f+]" as microseconds.
func parseTime(s string) (int64, bool) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	hs, rest, ok := strings.Cut(s, ":")
	if !ok || len(rest) < 5 || rest[2] != ':' {
		return 0, false
	}
	h, ok1 := atoi(hs)
	mi, ok2 := atoi(rest[0:2])
	sec, ok3 := atoi(rest[3:5])
	if !ok1 || !ok2 || !ok3 {
		return 0, false
	}
	var frac int64
	if len(rest) > 5 {
		if rest[5] != '.' {
			return 0, false
		}
		f := rest[6:]
		if len(f) > 6 {
			f = f[:6]
		}
		fv, ok := atoi(f + strings.Repeat("0", 6-len(f)))
		if !ok {
			return 0, false
		}
		frac = int64(fv)
	}
	us := (int64(h)*3600+int64(mi)*60+int64(sec))*1_000_000 + frac
	if neg {
		us = -us
	}
	return us, true
}

func atoi(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// daysFromCivil is the number of days from 1970-01-01 to y-m-d in the
// proleptic Gregorian calendar (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := floorDiv(int64(y), 400)
	yoe := int64(y) - era*400
	mp := int64(m+9) % 12
	doy := (153*mp+2)/5 + int64(d) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// formatZoned renders a UTC timestamp as ISO-8601 with fsp fraction
// digits and a Z zone, as Debezium's ZonedTimestamp.
func formatZoned(y, m, d int, us int64, fsp int) string {
	b := make([]byte, 0, 32)
	b = appendPad(b, y, 4)
	b = append(b, '-')
	b = appendPad(b, m, 2)
	b = append(b, '-')
	b = appendPad(b, d, 2)
	b = append(b, 'T')
	sec := us / 1_000_000
	b = appendPad(b, int(sec/3600), 2)
	b = append(b, ':')
	b = appendPad(b, int(sec/60%60), 2)
	b = append(b, ':')
	b = appendPad(b, int(sec%60), 2)
	if fsp > 0 {
		frac := int(us % 1_000_000)
		for i := fsp; i < 6; i++ {
			frac /= 10
		}
		b = append(b, '.')
		b = appendPad(b, frac, fsp)
	}
	return string(append(b, 'Z'))
}

func appendPad(b []byte, n, width int) []byte {
	s := strconv.Itoa(n)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// latin1ToUTF8 decodes MySQL latin1 (Windows-1252) text.
func latin1ToUTF8(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	var sb strings.Builder
	sb.Grow(len(s) + len(s)/4)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 && c < 0xA0 {
			sb.WriteRune(cp1252[c-0x80])
		} else {
			sb.WriteRune(rune(c))
		}
	}
	return sb.String()
}

// cp1252 maps bytes 0x80-0x9F of MySQL's latin1 (which is Windows-1252).
var cp1252 = [32]rune{
	0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
	0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
}

// latin1Collations are the collation ids of the latin1 character set.
var latin1Collations = map[uint64]bool{5: true, 8: true, 15: true, 31: true, 47: true, 48: true, 49: true, 94: true}

// binaryCollation is the collation id of the binary character set.
const binaryCollation = 63
