package cdc

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func sampleRecord() Record {
	return Record{
		Topic: "shop.inventory.items",
		Op:    OpUpdate,
		Key:   Row{{Name: "id", Type: &Type{Kind: KindInt64}, Value: int64(42)}},
		Before: Row{
			{Name: "id", Type: &Type{Kind: KindInt64}, Value: int64(42)},
			{Name: "name", Type: &Type{Kind: KindString}, Value: "old \"quoted\"\n"},
		},
		After: Row{
			{Name: "id", Type: &Type{Kind: KindInt64}, Value: int64(42)},
			{Name: "name", Type: &Type{Kind: KindString}, Value: "new ✓"},
			{Name: "price", Type: &Type{Kind: KindString, Logical: "org.apache.kafka.connect.data.Decimal"}, Value: "12.50"},
			{Name: "blob", Type: &Type{Kind: KindBytes}, Value: []byte{0, 1, 2}},
			{Name: "ok", Type: &Type{Kind: KindBoolean}, Value: true},
			{Name: "ratio", Type: &Type{Kind: KindFloat64}, Value: 0.25},
			{Name: "big", Type: &Type{Kind: KindInt64}, Value: uint64(math.MaxUint64)},
			{Name: "gone", Type: &Type{Kind: KindString, Optional: true}, Value: nil},
			{Name: "toast", Type: &Type{Kind: KindString}, Unchanged: true},
		},
		Source: SourceInfo{
			Version: "0.1.0", Connector: "mysql", Name: "shop", TsMs: 1700000000000,
			DB: "inventory", Table: "items",
			Extra: Row{{Name: "server_id", Value: int64(1)}, {Name: "file", Value: "bin.000001"}, {Name: "pos", Value: int64(4)}},
		},
		Time:        time.UnixMilli(1700000000123),
		Transaction: &Transaction{ID: "0-1-7", TotalOrder: 3, DataCollectionOrder: 2},
	}
}

func TestAppendValueIsDebeziumEnvelope(t *testing.T) {
	t.Parallel()
	rec := sampleRecord()
	b, err := AppendValue(nil, &rec)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"before":{"id":42,"name":"old \"quoted\"\n"},` +
		`"after":{"id":42,"name":"new ✓","price":"12.50","blob":"AAEC","ok":true,"ratio":0.25,"big":18446744073709551615,"gone":null,"toast":"__debezium_unavailable_value"},` +
		`"source":{"version":"0.1.0","connector":"mysql","name":"shop","ts_ms":1700000000000,"snapshot":"false","db":"inventory","sequence":null,"table":"items","server_id":1,"file":"bin.000001","pos":4},` +
		`"op":"u","ts_ms":1700000000123,"transaction":{"id":"0-1-7","total_order":3,"data_collection_order":2}}`
	if string(b) != want {
		t.Fatalf("envelope mismatch\n got: %s\nwant: %s", b, want)
	}
	if !json.Valid(b) {
		t.Fatal("envelope is not valid JSON")
	}
	k, err := AppendKey(nil, &rec)
	if err != nil || string(k) != `{"id":42}` {
		t.Fatalf("key = %s, %v", k, err)
	}
}

func TestTombstoneAndNilKeyEncodeNothing(t *testing.T) {
	t.Parallel()
	rec := Record{Topic: "t", Tombstone: true, Key: Row{{Name: "id", Value: int64(1)}}}
	if b, err := AppendValue(nil, &rec); err != nil || b != nil {
		t.Fatalf("tombstone value = %q, %v; want nil", b, err)
	}
	rec = Record{Topic: "t", Op: OpTruncate}
	if b, err := AppendKey(nil, &rec); err != nil || b != nil {
		t.Fatalf("nil key = %q, %v; want nil", b, err)
	}
}

func TestInvalidOpIsRejected(t *testing.T) {
	t.Parallel()
	rec := Record{Topic: "t", Op: 'x'}
	if _, err := AppendValue(nil, &rec); err == nil || !strings.Contains(err.Error(), "invalid op") {
		t.Fatalf("err = %v, want invalid op", err)
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	cases := []string{"", "plain", "quote\"back\\slash", "ctl\x00\x01\x1f\t\r\n", "utf8 ✓ 日本", "bad \xff utf8", "sep \u2028 \u2029", "<html>&"}
	for _, s := range cases {
		got := appendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q encodes to invalid JSON %s: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("%q round-trips to %q, encoding/json gives %q", s, back, wantBack)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("a\"b")
	f.Add("\xff\xfe")
	f.Fuzz(func(t *testing.T, s string) {
		got := appendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q encodes to invalid JSON %s: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("%q round-trips to %q, encoding/json gives %q", s, back, wantBack)
		}
	})
}

func TestFloatsEncodeAsValidJSON(t *testing.T) {
	t.Parallel()
	for _, f := range []float64{0, 1.5, -2e-9, 3e25, math.MaxFloat64, math.NaN(), math.Inf(1), math.Inf(-1)} {
		b := appendFloat(nil, f, 64)
		if !json.Valid(b) {
			t.Errorf("%v encodes to invalid JSON %s", f, b)
		}
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	rec := sampleRecord()
	key, _ := AppendKey(nil, &rec)
	val, err := AppendValue(nil, &rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, wrap := range []bool{false, true} {
		v := val
		if wrap {
			v = []byte(`{"schema":{"type":"struct"},"payload":` + string(val) + `}`)
		}
		m := Message{Topic: rec.Topic, Partition: 1, Offset: 9, Key: key, Value: v}
		got, err := m.Decode()
		if err != nil {
			t.Fatalf("wrap=%v: %v", wrap, err)
		}
		if got.Op != OpUpdate || got.Topic != rec.Topic || !got.Time.Equal(rec.Time) {
			t.Fatalf("wrap=%v: header fields differ: %+v", wrap, got)
		}
		if strings.Join(got.After.Names(), ",") != strings.Join(rec.After.Names(), ",") {
			t.Fatalf("column order lost: %v", got.After.Names())
		}
		if id := got.Key.Value("id"); id != json.Number("42") {
			t.Fatalf("key id = %#v", id)
		}
		if f, _ := got.After.Get("toast"); !f.Unchanged {
			t.Fatal("unavailable TOAST value not marked Unchanged")
		}
		if got.After.Value("big") != json.Number("18446744073709551615") {
			t.Fatalf("big lost precision: %v", got.After.Value("big"))
		}
		if got.Source.Connector != "mysql" || got.Source.Table != "items" || len(got.Source.Extra) != 3 {
			t.Fatalf("source = %+v", got.Source)
		}
		if got.Transaction == nil || got.Transaction.ID != "0-1-7" {
			t.Fatalf("transaction = %+v", got.Transaction)
		}
		// Re-encoding the decoded record gives the same bytes.
		again, err := AppendValue(nil, &got)
		if err != nil || (!wrap && string(again) != string(val)) {
			t.Fatalf("re-encoded differs:\n%s\n%s (%v)", again, val, err)
		}
	}
}

func TestDecodeErrorsNamePlace(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, key, value, want string
	}{
		{"not json", `{"id":1}`, `nope`, "decoding value"},
		{"bad op", `{"id":1}`, `{"op":"x","after":{}}`, "unknown op"},
		{"bad key", `[1]`, `{"op":"c"}`, "decoding key"},
		{"after not object", `{"id":1}`, `{"op":"c","after":3}`, "decoding after"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := Message{Topic: "t1", Partition: 2, Offset: 77, Key: []byte(tc.key), Value: []byte(tc.value)}
			_, err := m.Decode()
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "t1[2]@77") {
				t.Fatalf("err = %v, want %q with t1[2]@77", err, tc.want)
			}
		})
	}
}

func TestDecodeTombstone(t *testing.T) {
	t.Parallel()
	m := Message{Topic: "t", Key: []byte(`{"id":5}`)}
	rec, err := m.Decode()
	if err != nil || !rec.Tombstone || rec.Key.Value("id") != json.Number("5") {
		t.Fatalf("rec = %+v, %v", rec, err)
	}
}

func BenchmarkAppendValue(b *testing.B) {
	rec := sampleRecord()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendValue(buf[:0], &rec)
	}
	b.SetBytes(int64(len(buf)))
}

func TestFlatValueIsTheAfterRow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		after Row
		want  string
	}{
		{name: "row", after: Row{{Name: "id", Value: int64(42)}, {Name: "name", Value: "x"}, {Name: "toast", Unchanged: true}}, want: `{"id":42,"name":"x","toast":"__debezium_unavailable_value"}`},
		{name: "nil after", after: nil, want: `null`},
		{name: "empty row", after: Row{}, want: `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := sampleRecord()
			rec.Flat = true
			rec.After = tt.after
			b, err := AppendValue(nil, &rec)
			if err != nil || string(b) != tt.want {
				t.Fatalf("AppendValue(flat) = %s, %v; want %s", b, err, tt.want)
			}
		})
	}
	rec := sampleRecord()
	rec.Flat, rec.Tombstone = true, true
	if b, err := AppendValue(nil, &rec); err != nil || b != nil {
		t.Fatalf("flat tombstone = %q, %v; want nothing", b, err)
	}
}

func TestSchemaFormRoundTrip(t *testing.T) {
	t.Parallel()
	rec := sampleRecord()
	rec.After[0].Type = &Type{Kind: KindInt64}
	rec.After[2].Type = &Type{Kind: KindBytes, Logical: "org.apache.kafka.connect.data.Decimal", Params: map[string]string{"scale": "2", "connect.decimal.precision": "10"}, Optional: true}
	v, err := AppendValueWithSchema(nil, &rec)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := AppendKeyWithSchema(nil, &rec)
	for _, b := range [][]byte{v, k} {
		if !json.Valid(b) {
			t.Fatalf("invalid JSON: %s", b)
		}
	}
	plain, _ := AppendValue(nil, &rec)
	var w struct {
		Schema  json.RawMessage `json:"schema"`
		Payload json.RawMessage `json:"payload"`
	}
	_ = json.Unmarshal(v, &w)
	if string(w.Payload) != string(plain) {
		t.Fatalf("payload differs from the schemaless envelope:\n%s\n%s", w.Payload, plain)
	}
	for _, want := range []string{
		`"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"connect.decimal.precision":"10","scale":"2"},"field":"price"`,
		`"name":"shop.inventory.items.Envelope"`,
		`"name":"io.debezium.connector.mysql.Source","field":"source"`,
		`{"type":"string","optional":false,"field":"op"}`,
	} {
		if !strings.Contains(string(w.Schema), want) {
			t.Errorf("schema lacks %s", want)
		}
	}
	m := Message{Topic: rec.Topic, Key: k, Value: v}
	got, err := m.Decode()
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := got.After.Get("price"); f.Type == nil || f.Type.Logical != "org.apache.kafka.connect.data.Decimal" || f.Type.Params["scale"] != "2" {
		t.Fatalf("price type after decode = %+v", f.Type)
	}
	if f, _ := got.Key.Get("id"); f.Type == nil || f.Type.Kind != KindInt64 {
		t.Fatalf("key id type after decode = %+v", f.Type)
	}
	if f, _ := got.After.Get("ok"); f.Type == nil || f.Type.Kind != KindBoolean {
		t.Fatalf("inferred ok type = %+v", f.Type)
	}
}

// FuzzDecodeRow checks the fast row decoder against encoding/json: same
// acceptance, same values.
func FuzzDecodeRow(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":"x","c":null,"d":true,"e":[1,{"f":2}],"g":{"h":"\u00e9"}}`, `{}`, `{"a":"\n"}`, `{"a":1e5,"b":-0.5}`, `{"a":01}`, `{"a":"x",}`, `{"a" 1}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		row, err := decodeRowJSON([]byte(s))
		if t := strings.TrimSpace(s); t == "" || t == "null" {
			return
		}
		var ref map[string]any
		var refErr error = errSyntax
		if json.Valid([]byte(s)) {
			dec := json.NewDecoder(strings.NewReader(s))
			dec.UseNumber()
			refErr = dec.Decode(&ref)
		}
		if (err == nil) != (refErr == nil) {
			t.Fatalf("%q: fast decoder err %v, encoding/json err %v", s, err, refErr)
		}
		if err != nil {
			return
		}
		last := map[string]any{} // duplicate names: the last one wins, as in encoding/json
		for _, fl := range row {
			v := fl.Value
			if fl.Unchanged {
				v = UnavailableValue
			}
			last[fl.Name] = v
		}
		if len(last) != len(ref) {
			t.Fatalf("%q: %d columns, encoding/json %d", s, len(last), len(ref))
		}
		for name, got := range last {
			want := ref[name]
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(want)
			if string(gb) != string(wb) {
				t.Fatalf("%q: column %s = %s, encoding/json %s", s, name, gb, wb)
			}
		}
	})
}

func TestFlatValuesDecodeAsRows(t *testing.T) {
	t.Parallel()
	rec := sampleRecord()
	rec.Flat = true
	for _, schemas := range []bool{false, true} {
		enc := AppendValue
		if schemas {
			enc = AppendValueWithSchema
		}
		v, err := enc(nil, &rec)
		if err != nil || !json.Valid(v) {
			t.Fatalf("schemas=%v: %s, %v", schemas, v, err)
		}
		m := Message{Topic: rec.Topic, Value: v}
		got, err := m.Decode()
		if err != nil {
			t.Fatalf("schemas=%v: %v", schemas, err)
		}
		if !got.Flat || got.Op != OpRead || got.After.Value("name") != "new ✓" || got.Before != nil {
			t.Fatalf("schemas=%v: decoded %+v", schemas, got)
		}
		if schemas {
			if f, _ := got.After.Get("id"); f.Type == nil || f.Type.Kind != KindInt64 {
				t.Fatalf("flat schema lost the id type: %+v", f.Type)
			}
		}
	}
}
