package transforms

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/configs"
)

// section adapts configs.Section to cdc.ConfigDecoder, as the runtime does.
type section struct{ s configs.Section }

func (s section) Decode(out any) error { return s.s.Decode(out) }
func (s section) Errorf(key, format string, args ...any) error {
	return s.s.Errorf(key, format, args...)
}

// build builds the transform written as a YAML mapping (block style, no
// indentation) as the first transform of a source in p.yaml. Its first
// line is line 5 of the file, column 9.
func build(t *testing.T, yml string) (cdc.Transform, error) {
	t.Helper()
	var b strings.Builder
	b.WriteString("sources:\n  - name: g\n    type: generator\n    transforms:\n")
	for i, line := range strings.Split(strings.TrimRight(yml, "\n"), "\n") {
		if i == 0 {
			b.WriteString("      - " + line + "\n")
		} else {
			b.WriteString("        " + line + "\n")
		}
	}
	p, err := configs.Parse("p.yaml", []byte(b.String()), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("parsing the test pipeline: %v\n%s", err, b.String())
	}
	tc := p.Sources[0].Transforms[0]
	f, ok := Factories()[tc.Type]
	if !ok {
		t.Fatalf("no transform type %q", tc.Type)
	}
	return f(section{tc.Config})
}

func mustBuild(t *testing.T, yml string) cdc.Transform {
	t.Helper()
	tr, err := build(t, yml)
	if err != nil {
		t.Fatalf("building %q: %v", yml, err)
	}
	return tr
}

var (
	i64 = &cdc.Type{Kind: cdc.KindInt64}
	str = &cdc.Type{Kind: cdc.KindString}
	dec = &cdc.Type{Kind: cdc.KindString, Logical: "org.apache.kafka.connect.data.Decimal", Params: map[string]string{"scale": "2"}}
)

func itemRow(id int64, name string, qty int64, price, status string) cdc.Row {
	return cdc.Row{
		{Name: "id", Type: i64, Value: id},
		{Name: "name", Type: str, Value: name},
		{Name: "qty", Type: i64, Value: qty},
		{Name: "price", Type: dec, Value: price},
		{Name: "status", Type: str, Value: status},
	}
}

// Source-side records, typed, as a MySQL source makes them.
func srcRecord(op cdc.Op) cdc.Record {
	rec := cdc.Record{
		Topic: "shop.inventory.items",
		Op:    op,
		Key:   cdc.Row{{Name: "id", Type: i64, Value: int64(1)}},
		Source: cdc.SourceInfo{Version: "0.1", Connector: "mysql", Name: "shop", TsMs: 1700000000000, DB: "inventory", Table: "items",
			Extra: cdc.Row{{Name: "file", Value: "bin.000001"}, {Name: "pos", Value: int64(4)}}},
		Time:    time.UnixMilli(1700000000123),
		Headers: []cdc.Header{{Key: "trace", Value: []byte("t1")}},
	}
	if op != cdc.OpCreate && op != cdc.OpRead {
		rec.Before = itemRow(1, "old", 5, "12.50", "new")
	}
	if op != cdc.OpDelete {
		rec.After = itemRow(1, "new", 7, "13.00", "active")
	}
	return rec
}

func srcTombstone() cdc.Record {
	r := srcRecord(cdc.OpDelete)
	return cdc.Record{Topic: r.Topic, Op: cdc.OpDelete, Key: r.Key, Tombstone: true, Source: r.Source, Time: r.Time}
}

// sinkRecord is srcRecord(op) written to Kafka and decoded by a sink:
// untyped JSON values, Kafka coordinates set.
func sinkRecord(t *testing.T, op cdc.Op) cdc.Record {
	t.Helper()
	src := srcRecord(op)
	key, err := cdc.AppendKey(nil, &src)
	if err != nil {
		t.Fatal(err)
	}
	val, err := cdc.AppendValue(nil, &src)
	if err != nil {
		t.Fatal(err)
	}
	m := cdc.Message{Topic: src.Topic, Partition: 2, Offset: 42, Key: key, Value: val, Headers: src.Headers, Time: time.UnixMilli(1700000000999)}
	rec, err := m.Decode()
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// deepCopy copies everything a transform could mutate in place.
func deepCopy(r cdc.Record) cdc.Record {
	r.Key, r.Before, r.After = copyRow(r.Key), copyRow(r.Before), copyRow(r.After)
	r.Source.Extra = copyRow(r.Source.Extra)
	if r.Headers != nil {
		h := make([]cdc.Header, len(r.Headers))
		for i, x := range r.Headers {
			h[i] = cdc.Header{Key: x.Key, Value: append([]byte(nil), x.Value...)}
		}
		r.Headers = h
	}
	if r.Kafka != nil {
		k := *r.Kafka
		r.Kafka = &k
	}
	return r
}

func copyRow(r cdc.Row) cdc.Row {
	if r == nil {
		return nil
	}
	out := make(cdc.Row, len(r))
	for i, f := range r {
		if f.Type != nil {
			t := *f.Type
			f.Type = &t
		}
		f.Value = copyValue(f.Value)
		out[i] = f
	}
	return out
}

func copyValue(v any) any {
	switch v := v.(type) {
	case cdc.Row:
		return copyRow(v)
	case []byte:
		return append([]byte(nil), v...)
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = copyValue(x)
		}
		return m
	case []any:
		l := make([]any, len(v))
		for i, x := range v {
			l[i] = copyValue(x)
		}
		return l
	}
	return v
}

// summary is a compact, comparable text of a record.
func summary(r cdc.Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s key=%s", r.Topic, r.Op, rowText(r.Key))
	switch {
	case r.Tombstone:
		b.WriteString(" tombstone")
	case r.Flat:
		b.WriteString(" value=" + rowText(r.After))
	default:
		b.WriteString(" before=" + rowText(r.Before) + " after=" + rowText(r.After))
	}
	for _, h := range r.Headers {
		fmt.Fprintf(&b, " %s:%s", h.Key, h.Value)
	}
	return b.String()
}

func rowText(r cdc.Row) string {
	if r == nil {
		return "null"
	}
	b, err := cdc.AppendValue(nil, &cdc.Record{Flat: true, After: r})
	if err != nil {
		return "ERR(" + err.Error() + ")"
	}
	return string(b)
}

// tcase is one transform test: the config, the input, and either the
// summaries of the outputs or a substring of the error.
type tcase struct {
	name    string
	yaml    string
	in      func(t *testing.T) cdc.Record
	want    []string
	wantErr string
}

func runCases(t *testing.T, cases []tcase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr := mustBuild(t, tt.yaml)
			in := tt.in(t)
			before := deepCopy(in)
			out, err := tr.Apply(in)
			if !reflect.DeepEqual(in, before) {
				t.Errorf("Apply mutated its input:\n got %+v\nwant %+v", in, before)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Apply error = %v; want one containing %q (output %v)", err, tt.wantErr, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			var got []string
			for _, r := range out {
				got = append(got, summary(r))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("outputs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			// ApplyInPlace gives the same, leaving what the copy shares
			// with the input alone.
			ip, ok := tr.(InPlacer)
			if !ok {
				t.Fatalf("%T does not implement InPlacer", tr)
			}
			cp := in
			keep, err := ip.ApplyInPlace(&cp)
			if err != nil || keep != (len(out) == 1) || keep && summary(cp) != summary(out[0]) {
				t.Errorf("ApplyInPlace = %v, %v, %s; want %v", keep, err, summary(cp), summaries(out))
			}
			if !reflect.DeepEqual(in, before) {
				t.Errorf("ApplyInPlace mutated the input's shared parts")
			}
			// Applying again gives the same: transforms are deterministic.
			again, err := tr.Apply(before)
			if err != nil || !reflect.DeepEqual(summaries(again), summaries(out)) {
				t.Errorf("second Apply = %v, %v; want the same outputs", summaries(again), err)
			}
		})
	}
}

func summaries(rs []cdc.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, summary(r))
	}
	return out
}

func src(op cdc.Op) func(*testing.T) cdc.Record {
	return func(*testing.T) cdc.Record { return srcRecord(op) }
}

func sink(op cdc.Op) func(*testing.T) cdc.Record {
	return func(t *testing.T) cdc.Record { return sinkRecord(t, op) }
}

func tomb(*testing.T) cdc.Record { return srcTombstone() }

// with returns an input that is base changed by fn.
func with(base func(*testing.T) cdc.Record, fn func(*cdc.Record)) func(*testing.T) cdc.Record {
	return func(t *testing.T) cdc.Record {
		r := base(t)
		fn(&r)
		return r
	}
}
