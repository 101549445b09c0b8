package mysql

import (
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/connectd/connectd/cdc"
)

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// TestConvert covers the value conversion both paths share, with the Go
// types each decoder delivers: binlog (first) and binary protocol (second).
func TestConvert(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		col  column
		mode string
		in   any
		want string // JSON of the converted value
	}{
		{name: "tinyint unsigned from signed binlog", col: column{cls: clsInt, bits: 8, unsigned: true}, in: int8(-1), want: "255"},
		{name: "int unsigned", col: column{cls: clsInt, bits: 32, unsigned: true}, in: uint32(4294967295), want: "4294967295"},
		{name: "bigint unsigned max", col: column{cls: clsInt, bits: 64, unsigned: true}, in: uint64(18446744073709551615), want: "18446744073709551615"},
		{name: "bigint unsigned from signed", col: column{cls: clsInt, bits: 64, unsigned: true}, in: int64(-1), want: "18446744073709551615"},
		{name: "bigint min", col: column{cls: clsInt, bits: 64}, in: int64(-9223372036854775808), want: "-9223372036854775808"},
		{name: "mediumint unsigned protocol", col: column{cls: clsInt, bits: 24, unsigned: true}, in: uint64(16777215), want: "16777215"},
		{name: "float from protocol", col: column{cls: clsFloat32}, in: float64(float32(0.1)), want: "0.1"},
		{name: "float from binlog", col: column{cls: clsFloat32}, in: float32(3.1415927), want: "3.1415927"},
		{name: "decimal string pads scale", col: column{cls: clsDecimal, scale: 3}, mode: DecimalString, in: "-1.5", want: `"-1.500"`},
		{name: "decimal negative zero", col: column{cls: clsDecimal, scale: 2}, mode: DecimalString, in: "-0.00", want: `"0.00"`},
		{name: "decimal leading zeros", col: column{cls: clsDecimal, scale: 2}, mode: DecimalString, in: []byte("007.10"), want: `"7.10"`},
		{name: "decimal double", col: column{cls: clsDecimal, scale: 2}, mode: DecimalDouble, in: "12.34", want: "12.34"},
		{name: "decimal precise positive", col: column{cls: clsDecimal, scale: 2}, mode: DecimalPrecise, in: "1.28", want: b64(0x00, 0x80)},
		{name: "decimal precise negative", col: column{cls: clsDecimal, scale: 2}, mode: DecimalPrecise, in: "-1.28", want: b64(0x80)},
		{name: "decimal precise -1", col: column{cls: clsDecimal, scale: 0}, mode: DecimalPrecise, in: "-1", want: b64(0xFF)},
		{name: "decimal precise zero", col: column{cls: clsDecimal, scale: 1}, mode: DecimalPrecise, in: "0.0", want: b64(0x00)},
		{name: "bit(1) true", col: column{cls: clsBool, bits: 1}, in: int64(1), want: "true"},
		{name: "bit(1) protocol", col: column{cls: clsBool, bits: 1}, in: []byte{0}, want: "false"},
		{name: "bit(10) little-endian", col: column{cls: clsBits, bits: 10}, in: int64(0x201), want: b64(0x01, 0x02)},
		{name: "bit(10) protocol", col: column{cls: clsBits, bits: 10}, in: []byte{0x02, 0x01}, want: b64(0x01, 0x02)},
		{name: "date", col: column{cls: clsDate}, in: "2024-02-29", want: "19782"},
		{name: "date before epoch", col: column{cls: clsDate}, in: []byte("1969-12-31"), want: "-1"},
		{name: "zero date nullable", col: column{cls: clsDate, nullable: true}, in: "0000-00-00", want: "null"},
		{name: "zero date not null", col: column{cls: clsDate}, in: "0000-00-00", want: "0"},
		{name: "time negative fraction", col: column{cls: clsTime, fsp: 2}, in: "-00:00:01.50", want: "-1500000"},
		{name: "time max", col: column{cls: clsTime}, in: []byte("838:59:59"), want: "3020399000000"},
		{name: "datetime(3) millis", col: column{cls: clsDatetime, fsp: 3}, in: "2024-01-01 00:00:00.123", want: "1704067200123"},
		{name: "datetime(6) micros protocol", col: column{cls: clsDatetime, fsp: 6}, in: []byte("2024-01-01 00:00:00.000001"), want: "1704067200000001"},
		{name: "datetime(3) protocol has 6 digits", col: column{cls: clsDatetime, fsp: 3}, in: []byte("2024-01-01 00:00:00.123000"), want: "1704067200123"},
		{name: "timestamp zoned", col: column{cls: clsTimestamp}, in: "2018-06-20 13:37:03", want: `"2018-06-20T13:37:03Z"`},
		{name: "timestamp(3) zoned", col: column{cls: clsTimestamp, fsp: 3}, in: []byte("2018-06-20 13:37:03.500000"), want: `"2018-06-20T13:37:03.500Z"`},
		{name: "zero timestamp not null", col: column{cls: clsTimestamp}, in: "0000-00-00 00:00:00", want: `"1970-01-01T00:00:00Z"`},
		{name: "year binlog", col: column{cls: clsYear}, in: 2024, want: "2024"},
		{name: "year protocol", col: column{cls: clsYear}, in: uint64(1901), want: "1901"},
		{name: "latin1 binlog", col: column{cls: clsText, latin1: true}, in: "caf\xe9 \x80", want: `"café €"`},
		{name: "binary padded", col: column{cls: clsBytes, padTo: 4}, in: "\x01", want: b64(1, 0, 0, 0)},
		{name: "enum index", col: column{cls: clsEnum, values: []string{"a", "b"}}, in: int64(2), want: `"b"`},
		{name: "enum empty", col: column{cls: clsEnum, values: []string{"a"}}, in: int64(0), want: `""`},
		{name: "enum protocol", col: column{cls: clsEnum, values: []string{"a", "b"}}, in: []byte("b"), want: `"b"`},
		{name: "set mask", col: column{cls: clsSet, values: []string{"x", "y", "z"}}, in: int64(5), want: `"x,z"`},
		{name: "uuid binlog", col: column{cls: clsUUID}, in: "\x12\x3e\x45\x67\xe8\x9b\x12\xd3\xa4\x56\x42\x66\x14\x17\x40\x00", want: `"123e4567-e89b-12d3-a456-426614174000"`},
		{name: "inet6 stripped zeros", col: column{cls: clsInet6}, in: "\xfe\x80", want: `"fe80::"`},
		{name: "null", col: column{cls: clsInt, bits: 32}, in: nil, want: "null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mode := tt.mode
			if mode == "" {
				mode = DecimalString
			}
			v, err := tt.col.convert(tt.in, mode)
			if err != nil {
				t.Fatal(err)
			}
			b, err := cdc.AppendValue(nil, &cdc.Record{Op: cdc.OpRead, After: cdc.Row{{Name: "v", Value: v}}})
			if err != nil {
				t.Fatal(err)
			}
			got := string(b)
			got = got[len(`{"before":null,"after":{"v":`):]
			got = got[:len(got)-len(got[indexOf(got, `},"source"`):])]
			if got != tt.want {
				t.Errorf("convert(%#v) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return len(s)
}

func b64(b ...byte) string { return `"` + base64.StdEncoding.EncodeToString(b) + `"` }

func TestConvertErrorsNameTheValue(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		col column
		in  any
	}{
		{column{cls: clsDate, sourceType: "DATE"}, "2024/01/01"},
		{column{cls: clsDecimal, scale: 2}, "1.2.3"},
		{column{cls: clsEnum, values: []string{"a"}}, int64(7)},
		{column{cls: clsInt, bits: 32, sourceType: "INT"}, "x"},
	} {
		if _, err := tt.col.convert(tt.in, DecimalString); err == nil {
			t.Errorf("convert(%#v) for %+v: no error", tt.in, tt.col)
		}
	}
}

func TestParseMembers(t *testing.T) {
	t.Parallel()
	got := fmt.Sprint(parseMembers(`enum('a','b''c','d,e','')`))
	if got != "[a b'c d,e ]" {
		t.Fatalf("parseMembers = %s", got)
	}
}

func TestTwosComplement(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want []byte
	}{
		{"127", []byte{0x7f}}, {"128", []byte{0x00, 0x80}}, {"-128", []byte{0x80}}, {"-129", []byte{0xff, 0x7f}}, {"-256", []byte{0xff, 0x00}},
	} {
		v, err := convertDecimal(tt.in, 0, DecimalPrecise)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(v) != fmt.Sprint(tt.want) {
			t.Errorf("%s: %v, want %v", tt.in, v, tt.want)
		}
	}
}
