package mysql

import (
	"encoding/json"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// TestMySQLFlavorEvents feeds MySQL 8 shaped events (GTID uuid:N, a
// TRANSACTION_PAYLOAD holding the transaction, a JSON column rendered as
// MySQL text by the decoder) through the stream decoder: the GTID set
// grows to uuid:1-6, only the transaction's last row carries the position
// after the payload event, and values convert like the MariaDB path.
func TestMySQLFlavorEvents(t *testing.T) {
	t.Parallel()
	s := newSource(t, Config{Host: "h", User: "u", ServerID: 9, TopicPrefix: "p"})
	s.flavor = gomysql.MySQLFlavor
	s.start = position{File: "binlog.000007", Pos: 4, GTIDs: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"}
	if err := s.initStream(); err != nil {
		t.Fatal(err)
	}
	sid := []byte{0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42, 0x95, 0x62}
	tm := &replication.TableMapEvent{
		TableID: 42, Schema: []byte("shop"), Table: []byte("orders"), ColumnCount: 4,
		ColumnType:       []byte{gomysql.MYSQL_TYPE_LONGLONG, gomysql.MYSQL_TYPE_JSON, gomysql.MYSQL_TYPE_NEWDECIMAL, gomysql.MYSQL_TYPE_VARCHAR},
		ColumnMeta:       []uint16{0, 4, 10<<8 | 2, 400},
		NullBitmap:       []byte{0b1110},
		SignednessBitmap: []byte{0b10000000}, // column 0 unsigned (numeric columns, MSB first)
		DefaultCharset:   []uint64{255},
		ColumnName:       [][]byte{[]byte("id"), []byte("doc"), []byte("total"), []byte("note")},
		PrimaryKey:       []uint64{0},
	}
	h := func(typ replication.EventType, logPos, size uint32) *replication.EventHeader {
		return &replication.EventHeader{EventType: typ, LogPos: logPos, EventSize: size, ServerID: 3, Timestamp: 1700000000}
	}
	inner := []*replication.BinlogEvent{
		{Header: h(replication.QUERY_EVENT, 1000, 0), Event: &replication.QueryEvent{Query: []byte("BEGIN")}},
		{Header: h(replication.TABLE_MAP_EVENT, 1000, 0), Event: tm},
		{Header: h(replication.WRITE_ROWS_EVENTv2, 1000, 0), Event: &replication.RowsEvent{TableID: 42, Table: tm, Rows: [][]any{
			{uint64(18446744073709551615), `{"a": [1, 2.5]}`, "12.30", "x"},
			{uint64(7), nil, "-0.01", nil},
		}}},
		{Header: h(replication.UPDATE_ROWS_EVENTv2, 1000, 0), Event: &replication.RowsEvent{TableID: 42, Table: tm, Rows: [][]any{
			{uint64(7), nil, "-0.01", nil}, {uint64(7), `{}`, "0.00", "y"},
		}}},
		{Header: h(replication.XID_EVENT, 2000, 0), Event: &replication.XIDEvent{XID: 1}},
	}
	events := []*replication.BinlogEvent{
		{Header: h(replication.ROTATE_EVENT, 0, 0), Event: &replication.RotateEvent{Position: 4, NextLogName: []byte("binlog.000008")}},
		{Header: h(replication.GTID_EVENT, 900, 79), Event: &replication.GTIDEvent{SID: sid, GNO: 6}},
		{Header: h(replication.TRANSACTION_PAYLOAD_EVENT, 2000, 1000), Event: &replication.TransactionPayloadEvent{Events: inner}},
	}
	for _, ev := range events {
		if err := s.process(ev); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.out) != 3 {
		t.Fatalf("%d records, want 3", len(s.out))
	}
	want := []string{
		`{"id":18446744073709551615,"doc":"{\"a\": [1, 2.5]}","total":"12.30","note":"x"}`,
		`{"id":7,"doc":null,"total":"-0.01","note":null}`,
		`{"id":7,"doc":"{}","total":"0.00","note":"y"}`,
	}
	for i, r := range s.out {
		if got := valueJSON(t, r.After); got != want[i] {
			t.Errorf("record %d: %s, want %s", i, got, want[i])
		}
		if (r.Position != nil) != (i == 2) {
			t.Errorf("record %d: position %s", i, r.Position)
		}
		if r.Source.Extra.Value("gtid") != "3e11fa47-71ca-11e1-9e33-c80aa9429562:6" {
			t.Errorf("record %d gtid %v", i, r.Source.Extra.Value("gtid"))
		}
	}
	var p position
	if err := json.Unmarshal(s.out[2].Position, &p); err != nil {
		t.Fatal(err)
	}
	if p.File != "binlog.000008" || p.Pos != 2000 || p.GTIDs != "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-6" {
		t.Errorf("position %+v", p)
	}
	if k := keyJSON(t, &s.out[0]); k != `{"id":18446744073709551615}` {
		t.Errorf("key %s", k)
	}
	if s.out[2].Before == nil || s.out[2].Op != 'u' {
		t.Errorf("update without before image")
	}
}
