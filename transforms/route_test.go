package transforms

import (
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/cdc"
)

func TestRoute(t *testing.T) {
	t.Parallel()
	runCases(t, []tcase{
		{name: "groups", yaml: "type: route\npattern: 'shop\\.(\\w+)\\.(.*)'\nreplacement: 'views.$${2}_$1'", in: src(cdc.OpUpdate),
			want: []string{strings.Replace(upd, topic, "views.items_inventory", 1)}},
		{name: "whole topic must match", yaml: "type: route\npattern: 'inventory'\nreplacement: x", in: src(cdc.OpUpdate), want: []string{upd}},
		{name: "tombstones follow", yaml: "type: route\npattern: '.*'\nreplacement: all", in: tomb, want: []string{strings.Replace(tombS, topic, "all", 1)}},
		{name: "empty result", yaml: "type: route\npattern: '(.*)'\nreplacement: '$2'", in: tomb, wantErr: "empty topic"},
	})
}

func TestTimestampRoute(t *testing.T) {
	t.Parallel()
	runCases(t, []tcase{
		{name: "source commit time", yaml: "type: timestamp_route", in: src(cdc.OpUpdate), want: []string{strings.Replace(upd, topic, topic+"-20231114", 1)}},
		{name: "sink message time", yaml: "type: timestamp_route\ntopic_format: '{timestamp}.$${topic}'\ntimestamp_format: '2006-01'", in: sink(cdc.OpUpdate),
			want: []string{strings.Replace(upd, topic, "2023-11."+topic, 1)}},
		{name: "no time", yaml: "type: timestamp_route", in: func(*testing.T) cdc.Record { return cdc.Record{Topic: "t", Op: cdc.OpTruncate} }, wantErr: "no timestamp"},
		{name: "envelope time fallback", yaml: "type: timestamp_route", in: func(*testing.T) cdc.Record {
			return cdc.Record{Topic: "t", Op: cdc.OpTruncate, Time: time.Date(2025, 1, 2, 23, 0, 0, 0, time.UTC)}
		}, want: []string{"t-20250102 t key=null before=null after=null"}},
	})
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	runCases(t, []tcase{
		{name: "insert", yaml: "type: insert_header\nheader: origin\nvalue: eu", in: src(cdc.OpUpdate), want: []string{upd + " origin:eu"}},
		{name: "insert on tombstone", yaml: "type: insert_header\nheader: origin\nvalue: eu", in: tomb, want: []string{tombS + " origin:eu"}},
		{name: "drop", yaml: "type: drop_headers\nheaders: [trace, other]", in: src(cdc.OpUpdate), want: []string{strings.TrimSuffix(upd, " trace:t1")}},
		{name: "drop absent", yaml: "type: drop_headers\nheaders: [other]", in: sink(cdc.OpUpdate), want: []string{upd}},
	})
}

func TestOutbox(t *testing.T) {
	t.Parallel()
	outboxRow := func(op cdc.Op, payload any) func(*testing.T) cdc.Record {
		return func(*testing.T) cdc.Record {
			r := cdc.Record{Topic: "shop.public.outbox", Op: op, Key: cdc.Row{{Name: "id", Value: "e-1"}}, Time: time.UnixMilli(1)}
			row := cdc.Row{{Name: "id", Value: "e-1"}, {Name: "aggregatetype", Value: "order"}, {Name: "aggregateid", Value: "42"},
				{Name: "type", Value: "OrderCreated"}, {Name: "payload", Value: payload}}
			if op == cdc.OpDelete {
				r.Before = row
			} else {
				r.After = row
			}
			return r
		}
	}
	runCases(t, []tcase{
		{name: "json text payload", yaml: "type: outbox", in: outboxRow(cdc.OpCreate, `{"id": 42, "lines": [{"sku": "a", "qty": 2}], "total": 39.98}`),
			want: []string{`outbox.event.order c key={"aggregateid":"42"} value={"id":42,"lines":[{"qty":2,"sku":"a"}],"total":39.98} id:e-1 type:OrderCreated`}},
		{name: "snapshot read, struct payload", yaml: "type: outbox", in: outboxRow(cdc.OpRead, cdc.Row{{Name: "z", Value: int64(1)}, {Name: "a", Value: "x"}}),
			want: []string{`outbox.event.order r key={"aggregateid":"42"} value={"z":1,"a":"x"} id:e-1 type:OrderCreated`}},
		{name: "sink map payload", yaml: "type: outbox\ntopic_replacement: 'events.{routedByValue}.v1'", in: outboxRow(cdc.OpCreate, map[string]any{"b": "1", "a": "2"}),
			want: []string{`events.order.v1 c key={"aggregateid":"42"} value={"a":"2","b":"1"} id:e-1 type:OrderCreated`}},
		{name: "null payload is a tombstone", yaml: "type: outbox", in: outboxRow(cdc.OpCreate, nil),
			want: []string{`outbox.event.order c key={"aggregateid":"42"} tombstone id:e-1 type:OrderCreated`}},
		{name: "delete dropped", yaml: "type: outbox", in: outboxRow(cdc.OpDelete, "{}")},
		{name: "update dropped", yaml: "type: outbox", in: outboxRow(cdc.OpUpdate, "{}")},
		{name: "tombstone dropped", yaml: "type: outbox", in: tomb},
		{name: "custom columns missing", yaml: "type: outbox\nkey_column: order_id", in: outboxRow(cdc.OpCreate, "{}"), wantErr: "outbox row has no column order_id"},
		{name: "payload not an object", yaml: "type: outbox", in: outboxRow(cdc.OpCreate, `[1,2]`), wantErr: "outbox column payload is not a JSON object"},
		{name: "payload not JSON", yaml: "type: outbox", in: outboxRow(cdc.OpCreate, `{"a":`), wantErr: "outbox column payload is not a JSON object"},
	})
}
