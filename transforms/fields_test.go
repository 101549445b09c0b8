package transforms

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/cdc"
)

func TestInsertField(t *testing.T) {
	t.Parallel()
	all := "type: insert_field\ntopic_field: _t\npartition_field: _p\noffset_field: _o\ntimestamp_field: _ts\nstatic_field: _s\nstatic_value: eu"
	runCases(t, []tcase{
		{name: "sink side, all fields", yaml: all, in: sink(cdc.OpCreate),
			want: []string{ins[:len(ins)-len(` trace:t1`)-1] + `,"_t":"shop.inventory.items","_p":2,"_o":42,"_ts":1700000000999,"_s":"eu"} trace:t1`}},
		{name: "source side has no offset", yaml: all, in: src(cdc.OpCreate), wantErr: "offset_field need a record read from Kafka"},
		{name: "source side topic and timestamp", yaml: "type: insert_field\ntopic_field: _t\ntimestamp_field: _ts", in: src(cdc.OpCreate),
			want: []string{ins[:len(ins)-len(` trace:t1`)-1] + `,"_t":"shop.inventory.items","_ts":1700000000000} trace:t1`}},
		{name: "both images", yaml: "type: insert_field\nstatic_field: name\nstatic_value: x", in: src(cdc.OpUpdate),
			want: []string{strings.NewReplacer(`"name":"old"`, `"name":"x"`, `"name":"new"`, `"name":"x"`).Replace(upd)}},
		{name: "key", yaml: "type: insert_field\nstatic_field: tenant\nstatic_value: eu\ntarget: key", in: tomb,
			want: []string{topic + ` d key={"id":1,"tenant":"eu"} tombstone`}},
		{name: "tombstone value untouched", yaml: "type: insert_field\nstatic_field: tenant\nstatic_value: eu", in: tomb, want: []string{tombS}},
	})
}

func TestReplaceField(t *testing.T) {
	t.Parallel()
	runCases(t, []tcase{
		{name: "include", yaml: "type: replace_field\ninclude: [status, id]", in: src(cdc.OpUpdate),
			want: []string{topic + ` u key={"id":1} before={"id":1,"status":"new"} after={"id":1,"status":"active"} trace:t1`}},
		{name: "exclude wins and rename", yaml: "type: replace_field\ninclude: [id, name, qty]\nexclude: [qty]\nrename: {name: title}", in: sink(cdc.OpCreate),
			want: []string{topic + ` c key={"id":1} before=null after={"id":1,"title":"new"} trace:t1`}},
		{name: "key rename", yaml: "type: replace_field\nrename: {id: item_id}\ntarget: key", in: tomb, want: []string{topic + ` d key={"item_id":1} tombstone`}},
		{name: "absent fields ignored", yaml: "type: replace_field\nexclude: [nope]", in: src(cdc.OpDelete), want: []string{del}},
	})
}

func TestMaskField(t *testing.T) {
	t.Parallel()
	withExtra := func(base func(*testing.T) cdc.Record) func(*testing.T) cdc.Record {
		return with(base, func(r *cdc.Record) {
			r.After = append(r.After.Clone(), cdc.Field{Name: "ok", Value: true}, cdc.Field{Name: "ratio", Value: 0.5}, cdc.Field{Name: "blob", Value: []byte("x")},
				cdc.Field{Name: "gone", Value: nil}, cdc.Field{Name: "toast", Unchanged: true}, cdc.Field{Name: "u", Value: uint64(9)})
		})
	}
	runCases(t, []tcase{
		{name: "empty values by type", yaml: "type: mask_field\nfields: [name, qty, ok, ratio, blob, gone, toast, u, nope]", in: withExtra(src(cdc.OpCreate)),
			want: []string{topic + ` c key={"id":1} before=null after={"id":1,"name":"","qty":0,"price":"13.00","status":"active","ok":false,"ratio":0,"blob":"","gone":null,"toast":"__debezium_unavailable_value","u":0} trace:t1`}},
		{name: "sink json.Number", yaml: "type: mask_field\nfields: [qty]", in: sink(cdc.OpCreate),
			want: []string{strings.Replace(ins, `"qty":7`, `"qty":0`, 1)}},
		{name: "replacement", yaml: "type: mask_field\nfields: [name, qty]\nreplacement: '99'", in: src(cdc.OpUpdate),
			want: []string{strings.NewReplacer(`"name":"old","qty":5`, `"name":"99","qty":99`, `"name":"new","qty":7`, `"name":"99","qty":99`).Replace(upd)}},
		{name: "replacement not a number", yaml: "type: mask_field\nfields: [qty]\nreplacement: '****'", in: src(cdc.OpCreate),
			wantErr: `mask_field: after image of shop.inventory.items: field qty: bad value: replacement "****" is not an integer`},
	})
}

func TestValueToKey(t *testing.T) {
	t.Parallel()
	runCases(t, []tcase{
		{name: "after fields", yaml: "type: value_to_key\nfields: [status, id]", in: src(cdc.OpUpdate),
			want: []string{strings.Replace(upd, `key={"id":1}`, `key={"status":"active","id":1}`, 1)}},
		{name: "delete uses before", yaml: "type: value_to_key\nfields: [name]", in: sink(cdc.OpDelete),
			want: []string{strings.Replace(del, `key={"id":1}`, `key={"name":"old"}`, 1)}},
		{name: "tombstone unchanged", yaml: "type: value_to_key\nfields: [name]", in: tomb, want: []string{tombS}},
		{name: "missing field", yaml: "type: value_to_key\nfields: [nope]", in: src(cdc.OpCreate), wantErr: "value has no field nope"},
	})
}

func nested(base func(*testing.T) cdc.Record) func(*testing.T) cdc.Record {
	return with(base, func(r *cdc.Record) {
		r.After = cdc.Row{
			{Name: "id", Value: int64(1)},
			{Name: "addr", Value: cdc.Row{{Name: "city", Value: "Oslo"}, {Name: "geo", Value: map[string]any{"lon": json.Number("10.7"), "lat": json.Number("59.9")}}}},
			{Name: "tags", Value: []any{"a", "b"}},
			{Name: "note", Value: nil},
		}
	})
}

func TestExtractField(t *testing.T) {
	t.Parallel()
	runCases(t, []tcase{
		{name: "struct", yaml: "type: extract_field\nfield: addr", in: nested(src(cdc.OpCreate)),
			want: []string{topic + ` c key={"id":1} value={"city":"Oslo","geo":{"lat":59.9,"lon":10.7}} trace:t1`}},
		{name: "map sorted", yaml: "type: extract_field\nfield: geo", in: with(src(cdc.OpCreate), func(r *cdc.Record) {
			r.After = cdc.Row{{Name: "geo", Value: map[string]any{"lon": json.Number("10.7"), "lat": json.Number("59.9")}}}
		}), want: []string{topic + ` c key={"id":1} value={"lat":59.9,"lon":10.7} trace:t1`}},
		{name: "null", yaml: "type: extract_field\nfield: note", in: nested(src(cdc.OpCreate)), want: []string{topic + ` c key={"id":1} value=null trace:t1`}},
		{name: "scalar is an error", yaml: "type: extract_field\nfield: id", in: nested(src(cdc.OpCreate)), wantErr: "field id holds a number, not a struct or map"},
		{name: "missing", yaml: "type: extract_field\nfield: nope\ntarget: key", in: src(cdc.OpCreate), wantErr: "key of shop.inventory.items: bad value: no field nope"},
	})
}

func TestHoistField(t *testing.T) {
	t.Parallel()
	runCases(t, []tcase{
		{name: "value", yaml: "type: hoist_field\nfield: row", in: src(cdc.OpUpdate),
			want: []string{topic + ` u key={"id":1} before={"row":` + beforeJS + `} after={"row":` + afterJS + `} trace:t1`}},
		{name: "key", yaml: "type: hoist_field\nfield: k\ntarget: key", in: tomb, want: []string{topic + ` d key={"k":{"id":1}} tombstone`}},
	})
}

func TestFlatten(t *testing.T) {
	t.Parallel()
	runCases(t, []tcase{
		{name: "nested", yaml: "type: flatten", in: nested(src(cdc.OpCreate)),
			want: []string{topic + ` c key={"id":1} before=null after={"id":1,"addr.city":"Oslo","addr.geo.lat":59.9,"addr.geo.lon":10.7,"tags":["a","b"],"note":null} trace:t1`}},
		{name: "delimiter", yaml: "type: flatten\ndelimiter: _", in: nested(src(cdc.OpCreate)),
			want: []string{topic + ` c key={"id":1} before=null after={"id":1,"addr_city":"Oslo","addr_geo_lat":59.9,"addr_geo_lon":10.7,"tags":["a","b"],"note":null} trace:t1`}},
		{name: "flat rows unchanged", yaml: "type: flatten", in: src(cdc.OpUpdate), want: []string{upd}},
	})
}

func TestCast(t *testing.T) {
	t.Parallel()
	row := func(fs ...cdc.Field) func(*testing.T) cdc.Record {
		return func(*testing.T) cdc.Record {
			return cdc.Record{Topic: "t", Op: cdc.OpCreate, After: fs}
		}
	}
	f := func(name string, v any) cdc.Field { return cdc.Field{Name: name, Value: v} }
	runCases(t, []tcase{
		{name: "conversions", yaml: "type: cast\nspec: {a: int8, b: float64, c: boolean, d: string, e: int32, f: float32, g: int64, h: boolean, i: string, j: int16}",
			in:   row(f("a", "12"), f("b", "13.50"), f("c", "true"), f("d", int64(7)), f("e", 12.9), f("f", json.Number("0.1")), f("g", true), f("h", int64(0)), f("i", []byte("hi")), f("j", json.Number("-300"))),
			want: []string{`t c key=null before=null after={"a":12,"b":13.5,"c":true,"d":"7","e":12,"f":0.1,"g":1,"h":false,"i":"aGk=","j":-300}`}},
		{name: "sink decimal string to float", yaml: "type: cast\nspec: {price: float64, qty: int8}", in: sink(cdc.OpCreate),
			want: []string{strings.Replace(ins, `"qty":7,"price":"13.00"`, `"qty":7,"price":13`, 1)}},
		{name: "null and unchanged kept", yaml: "type: cast\nspec: {a: int32, b: int32}", in: row(f("a", nil), cdc.Field{Name: "b", Unchanged: true}),
			want: []string{`t c key=null before=null after={"a":null,"b":"__debezium_unavailable_value"}`}},
		{name: "overflow", yaml: "type: cast\nspec: {a: int8}", in: row(f("a", int64(300))), wantErr: "cast: after image of t: field a: bad value: cannot cast 300 (int64) to int8: out of int8 range [-128, 127]"},
		{name: "not a number", yaml: "type: cast\nspec: {qty: int32}", in: with(src(cdc.OpCreate), func(r *cdc.Record) { r.After = setField(r.After, cdc.Field{Name: "qty", Value: "abc"}) }),
			wantErr: `field qty: bad value: cannot cast "abc" to int32: not an integer`},
		{name: "NaN", yaml: "type: cast\nspec: {a: int64}", in: row(f("a", nanValue())), wantErr: "not a finite number"},
		{name: "bad boolean", yaml: "type: cast\nspec: {a: boolean}", in: row(f("a", "yes please")), wantErr: "want true or false"},
		{name: "key", yaml: "type: cast\nspec: {id: string}\ntarget: key", in: tomb, want: []string{topic + ` d key={"id":"1"} tombstone`}},
	})
}

func nanValue() float64 { return math.Inf(1) }

func TestTimestampConvert(t *testing.T) {
	t.Parallel()
	ts := time.Date(2024, 3, 5, 14, 30, 15, 123456000, time.UTC)
	typed := func(logical string, v any) func(*testing.T) cdc.Record {
		return func(*testing.T) cdc.Record {
			var typ *cdc.Type
			if logical != "" {
				typ = &cdc.Type{Kind: cdc.KindInt64, Logical: logical}
			}
			return cdc.Record{Topic: "t", Op: cdc.OpCreate, After: cdc.Row{{Name: "at", Type: typ, Value: v}}}
		}
	}
	out := func(v string) []string { return []string{`t c key=null before=null after={"at":` + v + `}`} }
	runCases(t, []tcase{
		{name: "micro timestamp to string", yaml: "type: timestamp_convert\nfield: at\ntarget_type: string\nformat: '2006-01-02 15:04:05.000'",
			in: typed("io.debezium.time.MicroTimestamp", ts.UnixMicro()), want: out(`"2024-03-05 14:30:15.123"`)},
		{name: "debezium date to Timestamp", yaml: "type: timestamp_convert\nfield: at\ntarget_type: Timestamp",
			in: typed("io.debezium.time.Date", int64(19787)), want: out(`1709596800000`)},
		{name: "untyped ms to Date", yaml: "type: timestamp_convert\nfield: at\ntarget_type: Date", in: typed("", ts.UnixMilli()), want: out(`19787`)},
		{name: "sink json.Number µs", yaml: "type: timestamp_convert\nfield: at\ntarget_type: string\nunix_precision: microseconds",
			in: typed("", json.Number("1709649015123456")), want: out(`"2024-03-05T14:30:15.123456Z"`)},
		{name: "string to unix seconds", yaml: "type: timestamp_convert\nfield: at\ntarget_type: unix\nunix_precision: seconds\nformat: '2006-01-02 15:04:05'",
			in: typed("", "2024-03-05 14:30:15"), want: out(`1709649015`)},
		{name: "zoned string to Time", yaml: "type: timestamp_convert\nfield: at\ntarget_type: Time",
			in: typed("", "2024-03-05T14:30:15.123456Z"), want: out(`52215123`)},
		{name: "bad string", yaml: "type: timestamp_convert\nfield: at\ntarget_type: unix", in: typed("", "yesterday"),
			wantErr: `timestamp_convert: after image of t: field at: bad value: cannot read "yesterday" as a timestamp`},
		{name: "absent field", yaml: "type: timestamp_convert\nfield: nope\ntarget_type: unix", in: src(cdc.OpUpdate), want: []string{upd}},
	})
}

func TestErrorsAreClassified(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		in   cdc.Record
		want error
	}{
		{name: "cast", yaml: "type: cast\nspec: {name: int64}", in: srcRecord(cdc.OpCreate), want: ErrBadValue},
		{name: "expression", yaml: "type: filter\nwhen: record.after.nope == 1", in: srcRecord(cdc.OpCreate), want: ErrBadValue},
		{name: "predicate", yaml: "type: drop_headers\nheaders: [x]\nif: {expr: 'record.after.nope == 1'}", in: srcRecord(cdc.OpCreate), want: ErrBadValue},
		{name: "offset on the source side", yaml: "type: insert_field\noffset_field: o", in: srcRecord(cdc.OpCreate), want: ErrNoKafkaCoordinates},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := mustBuild(t, tt.yaml).Apply(tt.in)
			if !errors.Is(err, tt.want) {
				t.Errorf("Apply error = %v; want one wrapping %v", err, tt.want)
			}
		})
	}
}
