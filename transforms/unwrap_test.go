package transforms

import (
	"testing"

	"github.com/connectd/connectd/cdc"
)

func TestUnwrap(t *testing.T) {
	t.Parallel()
	flatU := topic + ` u key={"id":1} value=` + afterJS + ` trace:t1`
	runCases(t, []tcase{
		{name: "update becomes the after row", yaml: "type: unwrap", in: src(cdc.OpUpdate), want: []string{flatU}},
		{name: "sink side", yaml: "type: unwrap", in: sink(cdc.OpUpdate), want: []string{flatU}},
		{name: "delete is a tombstone by default", yaml: "type: unwrap", in: src(cdc.OpDelete), want: []string{topic + ` d key={"id":1} tombstone trace:t1`}},
		{name: "delete dropped", yaml: "type: unwrap\ndelete_handling: drop", in: src(cdc.OpDelete)},
		{name: "tombstone dropped by default", yaml: "type: unwrap", in: tomb},
		{name: "tombstone kept", yaml: "type: unwrap\ndrop_tombstones: false", in: tomb, want: []string{tombS}},
		{name: "delete as tombstone", yaml: "type: unwrap\ndelete_handling: tombstone", in: src(cdc.OpDelete),
			want: []string{topic + ` d key={"id":1} tombstone trace:t1`}},
		{name: "rewrite delete", yaml: "type: unwrap\ndelete_handling: rewrite", in: src(cdc.OpDelete),
			want: []string{topic + ` d key={"id":1} value={"id":1,"name":"old","qty":5,"price":"12.50","status":"new","__deleted":"true"} trace:t1`}},
		{name: "rewrite update", yaml: "type: unwrap\ndelete_handling: rewrite", in: src(cdc.OpUpdate),
			want: []string{topic + ` u key={"id":1} value={"id":1,"name":"new","qty":7,"price":"13.00","status":"active","__deleted":"false"} trace:t1`}},
		{name: "add fields and headers", yaml: "type: unwrap\nadd_fields: [op, table, source.ts_ms, ts_ms, pos, lsn]\nadd_headers: [db]", in: src(cdc.OpCreate),
			want: []string{topic + ` c key={"id":1} value={"id":1,"name":"new","qty":7,"price":"13.00","status":"active","__op":"c","__table":"items","__source_ts_ms":1700000000000,"__ts_ms":1700000000123,"__pos":4,"__lsn":null} trace:t1 __db:inventory`}},
		{name: "prefix", yaml: "type: unwrap\nadd_fields: [op]\nadd_fields_prefix: meta_", in: sink(cdc.OpRead),
			want: []string{topic + ` r key={"id":1} value={"id":1,"name":"new","qty":7,"price":"13.00","status":"active","meta_op":"r"} trace:t1`}},
		{name: "truncate passes", yaml: "type: unwrap", in: func(*testing.T) cdc.Record { return cdc.Record{Topic: topic, Op: cdc.OpTruncate} },
			want: []string{topic + ` t key=null before=null after=null`}},
		{name: "already flat passes", yaml: "type: unwrap", in: with(src(cdc.OpUpdate), func(r *cdc.Record) { r.Flat = true }),
			want: []string{topic + ` u key={"id":1} value=` + afterJS + ` trace:t1`}},
	})
}

// TestUnwrapEncodes checks the wire form of an unwrapped record: the flat
// row, with a delete's tombstone following it untouched.
func TestUnwrapEncodes(t *testing.T) {
	t.Parallel()
	tr := mustBuild(t, "type: unwrap\ndelete_handling: rewrite\ndrop_tombstones: false")
	var got []string
	for _, in := range []cdc.Record{srcRecord(cdc.OpDelete), srcTombstone()} {
		out, err := tr.Apply(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out {
			v, err := cdc.AppendValue(nil, &r)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(v))
		}
	}
	want := []string{`{"id":1,"name":"old","qty":5,"price":"12.50","status":"new","__deleted":"true"}`, ``}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("values = %q; want %q", got, want)
	}
}
