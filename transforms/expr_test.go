package transforms

import (
	"strings"
	"testing"

	"github.com/connectd/connectd/cdc"
)

const (
	topic    = "shop.inventory.items"
	beforeJS = `{"id":1,"name":"old","qty":5,"price":"12.50","status":"new"}`
	afterJS  = `{"id":1,"name":"new","qty":7,"price":"13.00","status":"active"}`
	upd      = topic + ` u key={"id":1} before=` + beforeJS + ` after=` + afterJS + ` trace:t1`
	ins      = topic + ` c key={"id":1} before=null after=` + afterJS + ` trace:t1`
	del      = topic + ` d key={"id":1} before=` + beforeJS + ` after=null trace:t1`
	tombS    = topic + ` d key={"id":1} tombstone`
)

func TestFilter(t *testing.T) {
	t.Parallel()
	runCases(t, []tcase{
		{name: "true keeps", yaml: "type: filter\nwhen: 'record.after.status == \"active\"'", in: src(cdc.OpUpdate), want: []string{upd}},
		{name: "false drops", yaml: "type: filter\nwhen: 'record.after.status == \"gone\"'", in: src(cdc.OpUpdate)},
		{name: "int column compares as int", yaml: "type: filter\nwhen: record.after.qty > 6", in: src(cdc.OpUpdate), want: []string{upd}},
		{name: "sink json.Number compares as int", yaml: "type: filter\nwhen: record.after.qty > 6 && record.key.id == 1", in: sink(cdc.OpUpdate),
			want: []string{upd}},
		{name: "decimal stays a string", yaml: "type: filter\nwhen: record.after.price == \"13.00\"", in: sink(cdc.OpUpdate), want: []string{upd}},
		{name: "op, topic, source, headers, ts_ms", in: src(cdc.OpDelete), want: []string{del},
			yaml: "type: filter\nwhen: >-\n  record.op == 'd' && record.topic.startsWith('shop.') && record.source.table == 'items' &&\n  record.source.pos == 4 && record.headers.trace == 't1' && record.ts_ms == 1700000000123 && !record.tombstone"},
		{name: "null image", yaml: "type: filter\nwhen: record.after == null", in: src(cdc.OpDelete), want: []string{del}},
		{name: "optional syntax", yaml: "type: filter\nwhen: record.?after.?status.orValue('x') == 'x'", in: src(cdc.OpDelete), want: []string{del}},
		{name: "tombstone kept by default", yaml: "type: filter\nwhen: record.after.status == 'x'", in: tomb, want: []string{tombS}},
		{name: "tombstone dropped", yaml: "type: filter\nwhen: 'true'\nnull_handling: drop", in: tomb},
		{name: "tombstone evaluated", yaml: "type: filter\nwhen: record.tombstone\nnull_handling: evaluate", in: tomb, want: []string{tombS}},
		{name: "field of a null image is an error", yaml: "type: filter\nwhen: record.after.status == 'x'", in: src(cdc.OpDelete),
			wantErr: `filter: bad value: evaluating "record.after.status == 'x'": no such key: status`},
		{name: "missing column is an error", yaml: "type: filter\nwhen: record.after.nope == 1", in: src(cdc.OpUpdate), wantErr: "no such key: nope"},
		{name: "dyn result not bool", yaml: "type: filter\nwhen: record.after.name", in: src(cdc.OpUpdate), wantErr: "returned string, not a bool"},
	})
}

func TestContentRoute(t *testing.T) {
	t.Parallel()
	runCases(t, []tcase{
		{name: "computed topic", yaml: "type: content_route\nexpression: \"'items.' + record.after.status\"", in: src(cdc.OpCreate),
			want: []string{strings.Replace(ins, topic, "items.active", 1)}},
		{name: "null keeps the topic", yaml: "type: content_route\nexpression: \"record.after.qty > 100 ? 'big' : dyn(null)\"", in: src(cdc.OpCreate), want: []string{ins}},
		{name: "empty topic", yaml: "type: content_route\nexpression: \"''\"", in: src(cdc.OpCreate), wantErr: "empty topic"},
		{name: "not a string", yaml: "type: content_route\nexpression: record.after.qty", in: src(cdc.OpCreate), wantErr: "returned int, not a topic string"},
	})
}

func TestSet(t *testing.T) {
	t.Parallel()
	runCases(t, []tcase{
		{name: "appended to each image", yaml: "type: set\nfield: label\nexpression: row.name + '/' + record.op", in: src(cdc.OpUpdate),
			want: []string{topic + ` u key={"id":1} before={"id":1,"name":"old","qty":5,"price":"12.50","status":"new","label":"old/u"} after={"id":1,"name":"new","qty":7,"price":"13.00","status":"active","label":"new/u"} trace:t1`}},
		{name: "replaced in place", yaml: "type: set\nfield: qty\nexpression: row.qty * 2", in: src(cdc.OpCreate),
			want: []string{topic + ` c key={"id":1} before=null after={"id":1,"name":"new","qty":14,"price":"13.00","status":"active"} trace:t1`}},
		{name: "sink side numbers", yaml: "type: set\nfield: qty\nexpression: row.qty + 1", in: sink(cdc.OpCreate),
			want: []string{topic + ` c key={"id":1} before=null after={"id":1,"name":"new","qty":8,"price":"13.00","status":"active"} trace:t1`}},
		{name: "map result", yaml: "type: set\nfield: meta\nexpression: \"{'b': 2, 'a': [1, 'x']}\"", in: src(cdc.OpCreate),
			want: []string{topic + ` c key={"id":1} before=null after={"id":1,"name":"new","qty":7,"price":"13.00","status":"active","meta":{"a":[1,"x"],"b":2}} trace:t1`}},
		{name: "key target", yaml: "type: set\nfield: tenant\nexpression: \"'eu'\"\ntarget: key", in: tomb,
			want: []string{topic + ` d key={"id":1,"tenant":"eu"} tombstone`}},
		{name: "tombstone value untouched", yaml: "type: set\nfield: x\nexpression: '1'", in: tomb, want: []string{tombS}},
		{name: "evaluation error", yaml: "type: set\nfield: x\nexpression: row.qty / 0", in: src(cdc.OpCreate), wantErr: `set: after image of shop.inventory.items: bad value: evaluating "row.qty / 0": division by zero`},
	})
}

func TestPredicates(t *testing.T) {
	t.Parallel()
	route := "type: route\npattern: 'shop\\.(.*)'\nreplacement: 'x.$1'\n"
	routed := strings.Replace(upd, topic, "x.inventory.items", 1)
	routedTomb := strings.Replace(tombS, topic, "x.inventory.items", 1)
	runCases(t, []tcase{
		{name: "topic_matches holds", yaml: route + "if: {topic_matches: 'shop\\..*'}", in: src(cdc.OpUpdate), want: []string{routed}},
		{name: "topic_matches is anchored", yaml: route + "if: {topic_matches: 'inventory'}", in: src(cdc.OpUpdate), want: []string{upd}},
		{name: "negate", yaml: route + "if: {topic_matches: 'shop\\..*', negate: true}", in: src(cdc.OpUpdate), want: []string{upd}},
		{name: "is_tombstone", yaml: route + "if: {is_tombstone: true}", in: tomb, want: []string{routedTomb}},
		{name: "is_tombstone on a change", yaml: route + "if: {is_tombstone: true}", in: src(cdc.OpUpdate), want: []string{upd}},
		{name: "is_tombstone false", yaml: route + "if: {is_tombstone: false}", in: src(cdc.OpUpdate), want: []string{routed}},
		{name: "has_header", yaml: route + "if: {has_header: trace}", in: src(cdc.OpUpdate), want: []string{routed}},
		{name: "has_header missing", yaml: route + "if: {has_header: other}", in: src(cdc.OpUpdate), want: []string{upd}},
		{name: "expr", yaml: route + "if: {expr: 'record.op == \"u\"'}", in: src(cdc.OpUpdate), want: []string{routed}},
		{name: "expr false", yaml: route + "if: {expr: 'record.op == \"c\"'}", in: src(cdc.OpUpdate), want: []string{upd}},
		{name: "conditions are ANDed", yaml: route + "if: {expr: 'record.op == \"u\"', has_header: other}", in: src(cdc.OpUpdate), want: []string{upd}},
		{name: "predicate on filter", yaml: "type: filter\nwhen: 'false'\nif: {topic_matches: 'other'}", in: src(cdc.OpUpdate), want: []string{upd}},
		{name: "expr error", yaml: route + "if: {expr: 'record.after.nope == 1'}", in: src(cdc.OpUpdate), wantErr: "no such key: nope"},
	})
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []string // each a line of the error
	}{
		{name: "CEL undeclared reference", yaml: "type: filter\nwhen: 'recrd.after.x == 1'",
			want: []string{"p.yaml:6:15: sources[0].transforms[0].when: ERROR: <input>:1:1: undeclared reference to 'recrd'"}},
		{name: "CEL syntax error", yaml: "type: filter\nwhen: 'record.after.x =='",
			want: []string{"p.yaml:6:15: sources[0].transforms[0].when: ERROR: <input>:1:18: Syntax error"}},
		{name: "filter must be bool", yaml: "type: filter\nwhen: \"'x'\"",
			want: []string{"p.yaml:6:15: sources[0].transforms[0].when: expression has type string; want bool"}},
		{name: "filter needs when", yaml: "type: filter", want: []string{"p.yaml:5:9: sources[0].transforms[0].when: when is required"}},
		{name: "unknown key", yaml: "type: filter\nwhen: 'true'\nwhne: x", want: []string{"p.yaml:7:9: ", "whne"}},
		{name: "bad regex", yaml: "type: route\npattern: '(x'\nreplacement: y",
			want: []string{"p.yaml:6:18: sources[0].transforms[0].pattern: invalid regular expression: error parsing regexp: missing closing )"}},
		{name: "if expr", yaml: "type: route\npattern: x\nreplacement: y\nif: {expr: 'recrd == 1'}",
			want: []string{"p.yaml:8:13: sources[0].transforms[0].if: expr: ERROR: <input>:1:1: undeclared reference to 'recrd'"}},
		{name: "if regex", yaml: "type: route\npattern: x\nreplacement: y\nif: {topic_matches: '[x'}",
			want: []string{"p.yaml:8:13: sources[0].transforms[0].if: topic_matches: invalid regular expression"}},
		{name: "empty if", yaml: "type: route\npattern: x\nreplacement: y\nif: {negate: true}",
			want: []string{"p.yaml:8:13: sources[0].transforms[0].if: if: needs a condition"}},
		{name: "every problem reported", yaml: "type: unwrap\ndelete_handling: keep\nadd_fields: ['']\nif: {topic_matches: '('}",
			want: []string{"delete_handling: unknown delete_handling \"keep\"", "add_fields: add_fields[0] is empty", "if: topic_matches"}},
		{name: "cast type", yaml: "type: cast\nspec: {qty: int128}", want: []string{`spec: field qty: unknown type "int128"`}},
		{name: "cast without spec", yaml: "type: cast", want: []string{"spec is required"}},
		{name: "target", yaml: "type: flatten\ntarget: header", want: []string{`p.yaml:6:17: sources[0].transforms[0].target: unknown target "header"`}},
		{name: "timestamp_convert", yaml: "type: timestamp_convert\nfield: x\ntarget_type: epoch\nunix_precision: days",
			want: []string{`unknown target_type "epoch"`, `unknown unix_precision "days"`}},
		{name: "set needs field", yaml: "type: set\nexpression: '1'", want: []string{"field is required"}},
		{name: "set expression", yaml: "type: set\nfield: x\nexpression: 'row.'", want: []string{"sources[0].transforms[0].expression: ERROR: <input>:1:5"}},
		{name: "insert_field needs a field", yaml: "type: insert_field", want: []string{"needs at least one of"}},
		{name: "replace_field needs something", yaml: "type: replace_field", want: []string{"needs include, exclude or rename"}},
		{name: "mask_field needs fields", yaml: "type: mask_field", want: []string{"fields is required"}},
		{name: "timestamp_route format", yaml: "type: timestamp_route\ntopic_format: fixed", want: []string{"uses neither"}},
		{name: "drop_headers", yaml: "type: drop_headers\nheaders: []", want: []string{"headers is required"}},
		{name: "insert_header", yaml: "type: insert_header\nvalue: x", want: []string{"header is required"}},
		{name: "value_to_key", yaml: "type: value_to_key", want: []string{"fields is required"}},
		{name: "filter null_handling", yaml: "type: filter\nwhen: 'true'\nnull_handling: maybe", want: []string{`unknown null_handling "maybe"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr, err := build(t, tt.yaml)
			if err == nil {
				t.Fatalf("built %T; want an error containing %q", tr, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "p.yaml:") {
				t.Errorf("error %q is not positioned", err)
			}
		})
	}
}

func TestCatalogue(t *testing.T) {
	t.Parallel()
	want := []string{"cast", "content_route", "drop_headers", "extract_field", "filter", "flatten", "hoist_field", "insert_field",
		"insert_header", "mask_field", "outbox", "replace_field", "route", "set", "timestamp_convert", "timestamp_route", "unwrap", "value_to_key"}
	fs := Factories()
	if len(fs) != len(want) {
		t.Errorf("Factories has %d types; want %d", len(fs), len(want))
	}
	for _, name := range want {
		if fs[name] == nil {
			t.Errorf("Factories lacks %s", name)
		}
	}
}

// TestCELMaps checks that the lazy record and row maps behave as CEL maps
// for every operation, on both sides.
func TestCELMaps(t *testing.T) {
	t.Parallel()
	exprs := []string{
		`size(record.after) == 5 && size(record) == 9`,
		`'status' in record.after && !('nope' in record.after) && 'after' in record`,
		`record.after.all(k, k != '') && record.after.exists(k, k == 'qty')`,
		`record.key == {'id': 1}`,
		`record.after != record.before`,
		`type(record.after) == map && type(record) == map`,
		`has(record.after.status) && !has(record.after.nope)`,
		`record.source.connector == 'mysql' && record.source.snapshot == 'false' && record.source.sequence == null`,
		`record.after.price.startsWith('13') && record.after.name.upperAscii() == 'NEW'`,
		`[record.key].size() == 1 && {'k': record.key}.k.id == 1`,
		`record.op in ['u', 'c'] && record.ts_ms > 0`,
	}
	for _, side := range []struct {
		name string
		in   func(*testing.T) cdc.Record
	}{{"source", src(cdc.OpUpdate)}, {"sink", sink(cdc.OpUpdate)}} {
		for _, e := range exprs {
			t.Run(side.name+"/"+e, func(t *testing.T) {
				t.Parallel()
				tr := mustBuild(t, "type: filter\nwhen: \""+e+"\"")
				out, err := tr.Apply(side.in(t))
				if err != nil || len(out) != 1 {
					t.Errorf("filter %s = %d records, %v; want the record kept", e, len(out), err)
				}
			})
		}
	}
	// A whole row or map converts back into a field.
	runCases(t, []tcase{
		{name: "row result", yaml: "type: set\nfield: old\nexpression: record.before\ntarget: key", in: src(cdc.OpUpdate),
			want: []string{strings.Replace(upd, `key={"id":1}`, `key={"id":1,"old":`+beforeJS+`}`, 1)}},
		{name: "nested rows in a list", yaml: "type: set\nfield: both\nexpression: '[record.key]'\ntarget: key", in: src(cdc.OpUpdate),
			want: []string{strings.Replace(upd, `key={"id":1}`, `key={"id":1,"both":[{"id":1}]}`, 1)}},
	})
}
