package view

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/connectd/connectd/cdc"
)

func errorf(key, format string, args ...any) error {
	return fmt.Errorf(key+": "+format, args...)
}

func TestTemplate(t *testing.T) {
	t.Parallel()
	key := cdc.Row{{Name: "id", Value: json.Number("12345678901234567890")}}
	after := cdc.Row{{Name: "id", Value: json.Number("1")}, {Name: "email", Value: "a@x"}, {Name: "nick", Value: nil},
		{Name: "big", Unchanged: true}, {Name: "ok", Value: true}, {Name: "tags", Value: []any{"a", json.Number("2.50")}}}
	before := cdc.Row{{Name: "email", Value: "old@x"}, {Name: "big", Value: "blob"}}
	tests := []struct {
		name, tmpl string
		rows       []cdc.Row
		want       string
		wantErr    string
	}{
		{name: "key field wins", tmpl: "customer:{id}", rows: []cdc.Row{key, after}, want: "customer:12345678901234567890"},
		{name: "after field", tmpl: "c:{email}:{ok}", rows: []cdc.Row{key, after, before}, want: "c:a@x:true"},
		{name: "before when after lacks it", tmpl: "c:{email}", rows: []cdc.Row{key, nil, before}, want: "c:old@x"},
		{name: "unchanged skipped to before", tmpl: "c:{big}", rows: []cdc.Row{key, after, before}, want: "c:blob"},
		{name: "array as JSON", tmpl: "t:{tags}", rows: []cdc.Row{after}, want: `t:["a",2.50]`},
		{name: "topic and braces", tmpl: "{{{$topic}}}:{ id }", rows: []cdc.Row{key}, want: "{shop.s.c}:12345678901234567890"},
		{name: "absent names field and topic", tmpl: "c:{phone}", rows: []cdc.Row{key, after}, wantErr: `field "phone" is absent from the key and the row of a record of topic shop.s.c`},
		{name: "null", tmpl: "c:{nick}", rows: []cdc.Row{key, after}, wantErr: `field "nick" is null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tp, err := ParseTemplate(tt.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tp.Append(nil, "shop.s.c", tt.rows...)
			if tt.wantErr != "" {
				var mf *MissingFieldError
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &mf) || !errors.Is(err, ErrMissingField) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("Append = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestParseTemplateErrors(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "c:{id", "c:id}", "c:{}"} {
		if _, err := ParseTemplate(s); err == nil {
			t.Errorf("ParseTemplate(%q) accepted", s)
		}
	}
	for s, want := range map[string]bool{"customer": false, "{$topic}": false, "{$topic}:{id}": true} {
		if tp, err := ParseTemplate(s); err != nil || tp.UsesRow() != want {
			t.Errorf("ParseTemplate(%q) = %v; UsesRow want %v", s, err, want)
		}
	}
	tp, _ := ParseTemplate("a:{id}:{x}:{id}")
	if got := fmt.Sprint(tp.Fields()); got != "[id x]" {
		t.Errorf("Fields = %s", got)
	}
	if tp.InRow(cdc.Row{{Name: "id"}}) || !tp.InRow(cdc.Row{{Name: "id"}, {Name: "x"}}) {
		t.Error("InRow wrong")
	}
}

func TestProjection(t *testing.T) {
	t.Parallel()
	row := cdc.Row{{Name: "id", Value: json.Number("1")}, {Name: "name", Value: "n"}, {Name: "email", Value: nil}, {Name: "blob", Unchanged: true}}
	tests := []struct {
		name string
		sel  Select
		want string
	}{
		{name: "all", sel: Select{}, want: "id name email blob"},
		{name: "fields keep order of row", sel: Select{Fields: []string{"email", "id"}}, want: "id email"},
		{name: "fields with rename", sel: Select{Fields: []string{"id", "email"}, Rename: map[string]string{"email": "mail"}}, want: "id mail"},
		{name: "exclude", sel: Select{ExcludeFields: []string{"blob", "name"}}, want: "id email"},
		{name: "rename only", sel: Select{Rename: map[string]string{"id": "ID"}}, want: "ID name email blob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := tt.sel.Compile(errorf)
			if err != nil {
				t.Fatal(err)
			}
			got := p.Append(nil, row)
			if s := strings.Join(got.Names(), " "); s != tt.want {
				t.Fatalf("got %q, want %q", s, tt.want)
			}
			for _, f := range got {
				if f.Name == "blob" && !f.Unchanged {
					t.Fatal("unchanged marker lost")
				}
			}
		})
	}
}

func TestProjectionErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		sel  Select
		want []string
	}{
		{name: "both", sel: Select{Fields: []string{"a"}, ExcludeFields: []string{"b"}}, want: []string{"exclude_fields: set either"}},
		{name: "rename unknown", sel: Select{Fields: []string{"a"}, Rename: map[string]string{"b": "c", "a": ""}}, want: []string{`"b" is not one of fields`, `"a" is renamed to an empty name`}},
		{name: "rename excluded", sel: Select{ExcludeFields: []string{"a"}, Rename: map[string]string{"a": "c"}}, want: []string{`"a" is in exclude_fields`}},
		{name: "collision", sel: Select{Fields: []string{"a", "b"}, Rename: map[string]string{"a": "b"}}, want: []string{`"a" is renamed to "b", which fields also keeps`}},
		{name: "duplicate", sel: Select{Fields: []string{"a", "a", ""}}, want: []string{`lists "a" twice`, "fields[2] is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.sel.Compile(errorf)
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		v      any
		text   string
		json   string
		noText bool
	}{
		{name: "null", v: nil, json: "null", noText: true},
		{name: "big number", v: json.Number("123456789012345678901234567890.000100"), text: "123456789012345678901234567890.000100", json: "123456789012345678901234567890.000100"},
		{name: "string", v: "a\"<b>\n\x01é", text: "a\"<b>\n\x01é", json: `"a\"<b>\n\u0001é"`},
		{name: "bool", v: false, text: "false", json: "false"},
		{name: "map sorted", v: map[string]any{"z": json.Number("1"), "a": []any{nil, "x"}}, text: `{"a":[null,"x"],"z":1}`, json: `{"a":[null,"x"],"z":1}`},
		{name: "int64", v: int64(-9007199254740993), text: "-9007199254740993", json: "-9007199254740993"},
		{name: "float", v: 0.1, text: "0.1", json: "0.1"},
		{name: "bytes", v: []byte{0, 1, 2}, text: "AAEC", json: `"AAEC"`},
		{name: "row", v: cdc.Row{{Name: "a", Value: "x"}, {Name: "t", Unchanged: true}, {Name: "n"}}, text: `{"a":"x","n":null}`, json: `{"a":"x","n":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			text, ok := AppendText(nil, tt.v)
			if ok == tt.noText || string(text) != tt.text {
				t.Errorf("AppendText = %q, %v; want %q", text, ok, tt.text)
			}
			if got := string(AppendJSON(nil, tt.v)); got != tt.json {
				t.Errorf("AppendJSON = %s, want %s", got, tt.json)
			}
			if !json.Valid(AppendJSON(nil, tt.v)) {
				t.Errorf("AppendJSON gives invalid JSON")
			}
		})
	}
}

func TestObjectRoundTrip(t *testing.T) {
	t.Parallel()
	row := cdc.Row{{Name: "id", Value: json.Number("18446744073709551615")}, {Name: "gone", Value: nil},
		{Name: "toast", Unchanged: true}, {Name: "s", Value: "x\u2028y"}, {Name: "m", Value: map[string]any{"k": true}}}
	b := AppendObject(nil, row)
	if string(b) != `{"id":18446744073709551615,"s":"x\u2028y","m":{"k":true}}` {
		t.Fatalf("AppendObject = %s", b)
	}
	back, err := DecodeObject(b)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(back.Names(), ",") != "id,s,m" || back.Value("id") != json.Number("18446744073709551615") || back.Value("s") != "x\u2028y" {
		t.Fatalf("DecodeObject = %#v", back)
	}
	if _, err := DecodeObject([]byte(`[1]`)); err == nil {
		t.Fatal("DecodeObject accepted an array")
	}
}

func TestDecodeLean(t *testing.T) {
	t.Parallel()
	full := cdc.Record{Topic: "t", Op: cdc.OpUpdate,
		Key:    cdc.Row{{Name: "id", Value: int64(7)}},
		Before: cdc.Row{{Name: "id", Value: int64(7)}, {Name: "s", Value: "old"}},
		After:  cdc.Row{{Name: "id", Value: int64(7)}, {Name: "s", Value: "n\"ew {}"}, {Name: "t", Value: cdc.UnavailableValue}, {Name: "n", Value: nil}},
		Source: cdc.SourceInfo{Connector: "x", Name: "p", DB: "d", Table: "t", Extra: cdc.Row{{Name: "seq", Value: int64(1)}}},
	}
	k, _ := cdc.AppendKey(nil, &full)
	v, _ := cdc.AppendValue(nil, &full)
	cases := []cdc.Message{
		{Topic: "t", Partition: 2, Offset: 9, Key: k, Value: v},
		{Topic: "t", Partition: 2, Offset: 9, Key: k, Value: []byte(` {"after":{"id":1},"op":"c","source":{"a":[1,{"b":"}"}]}} `)},
		{Topic: "t", Partition: 2, Offset: 9, Key: k},                                                      // tombstone
		{Topic: "t", Partition: 2, Offset: 9, Key: k, Value: []byte(`{"before":null,"after":{"id":1}}`)},   // no op
		{Topic: "t", Partition: 2, Offset: 9, Key: k, Value: []byte(`{"op":"c","after":{"id":1},"x":tru`)}, // malformed
		{Topic: "t", Partition: 2, Offset: 9, Key: k, Value: []byte(`hello`)},
	}
	for i, m := range cases {
		for _, withBefore := range []bool{true, false} {
			want, werr := m.Decode()
			got, gerr := DecodeLean(&m, withBefore)
			if fmt.Sprint(werr) != fmt.Sprint(gerr) {
				t.Fatalf("case %d: err %v, want %v", i, gerr, werr)
			}
			if werr != nil {
				continue
			}
			if !withBefore {
				want.Before = nil
			}
			if got.Op != want.Op || got.Tombstone != want.Tombstone || fmt.Sprint(got.Key) != fmt.Sprint(want.Key) ||
				fmt.Sprint(got.After) != fmt.Sprint(want.After) || fmt.Sprint(got.Before) != fmt.Sprint(want.Before) {
				t.Fatalf("case %d (before %v):\n got %+v\nwant %+v", i, withBefore, got, want)
			}
		}
	}
}
