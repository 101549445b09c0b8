package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/connectd/connectd/cdc"
)

// streamState belongs to the worker goroutine.
type streamState struct {
	started    bool
	rels       map[uint32]*table
	inTxn      bool
	xid        uint32
	commitTime time.Time
	txRecords  int
	lastCommit pglogrepl.LSN // end of the last transaction seen (Debezium's "last committed")
	received   pglogrepl.LSN // highest WAL position received

	// Flush accounting. lastPos is the LSN of the last position handed to
	// the buffer; idle is an LSN past lastPos up to which nothing needs
	// acknowledging (empty or filtered transactions, keepalives), valid
	// once everything up to idleBase is acknowledged.
	startFlush pglogrepl.LSN
	lastPos    pglogrepl.LSN
	idle       pglogrepl.LSN
	idleBase   pglogrepl.LSN
}

// Types of the source block's extra fields.
var (
	txIDType = &cdc.Type{Kind: cdc.KindInt64, Optional: true}
	lsnType  = &cdc.Type{Kind: cdc.KindInt64, Optional: true}
	xminType = &cdc.Type{Kind: cdc.KindInt64, Optional: true}
)

// flushLSN is the LSN that may be confirmed to the server: what Kafka
// acknowledged, or further when nothing between needs acknowledging.
func (s *Source) flushLSN() pglogrepl.LSN {
	st := &s.stream
	acked := max(pglogrepl.LSN(s.acked.Load()), st.startFlush)
	f := acked
	if acked >= st.idleBase && st.idle > f {
		f = st.idle
	}
	return f
}

func (s *Source) sendStatus() error {
	st := &s.stream
	f := s.flushLSN()
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), s.repl, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: max(st.received, f), WALFlushPosition: f, WALApplyPosition: f,
	})
	if err != nil {
		return fmt.Errorf("sending standby status update: %w", err)
	}
	return nil
}

// idleProgress notes that nothing up to lsn needs acknowledging beyond
// what is already buffered.
func (s *Source) idleProgress(lsn pglogrepl.LSN) {
	st := &s.stream
	if lsn > st.idle && lsn > st.lastPos {
		st.idle = lsn
		st.idleBase = st.lastPos
	}
}

func (s *Source) startReplication(ctx context.Context) error {
	args := []string{"proto_version '1'", "publication_names " + quoteLiteral(s.cfg.Publication)}
	if s.serverVersion >= 140000 {
		args = append(args, "messages 'true'")
	}
	err := pglogrepl.StartReplication(ctx, s.repl, s.cfg.Slot, s.plan.startLSN, pglogrepl.StartReplicationOptions{Mode: pglogrepl.LogicalReplication, PluginArgs: args})
	if err != nil {
		switch pgCode(err) {
		case "55006":
			return fmt.Errorf("%w: %w (another connector or a previous run still streams from slot %s; retrying)", ErrSlotInUse, err, s.cfg.Slot)
		case "42704":
			return cdc.Terminal(fmt.Errorf("%w: starting replication from slot %s: %w", ErrSlotMissing, s.cfg.Slot, err))
		case "55000":
			return cdc.Terminal(fmt.Errorf("%w: starting replication from slot %s: %w", ErrSlotInvalidated, s.cfg.Slot, err))
		case "42501":
			return cdc.Terminal(fmt.Errorf("%w: starting replication: %w", ErrPrivilege, err))
		}
		return fmt.Errorf("starting replication from slot %s at %s: %w", s.cfg.Slot, s.plan.startLSN, err)
	}
	return nil
}

// streamChanges runs the replication stream until ctx ends or it fails.
func (s *Source) streamChanges(ctx context.Context) error {
	st := &s.stream
	st.rels = map[uint32]*table{}
	st.startFlush = max(s.plan.startLSN, s.plan.slotFlushLSN)
	st.lastPos = s.plan.startLSN
	st.lastCommit = s.plan.startLSN
	if err := s.startReplication(ctx); err != nil {
		return err
	}
	st.started = true
	s.log.Info("streaming changes", "slot", s.cfg.Slot, "publication", s.cfg.Publication, "from", s.plan.startLSN.String())
	netConn := s.repl.Conn()
	now := time.Now()
	nextStatus := now
	nextHeartbeat := now.Add(s.heartbeat)
	var deadline time.Time
	replyNow := false
	for {
		if ctx.Err() != nil {
			return nil
		}
		now = time.Now()
		if replyNow || !now.Before(nextStatus) {
			if err := s.sendStatus(); err != nil {
				return err
			}
			nextStatus = now.Add(statusInterval)
			replyNow = false
		}
		if s.heartbeat > 0 && !now.Before(nextHeartbeat) {
			if _, err := s.conn.Exec(ctx, "SELECT pg_logical_emit_message(true, $1, $2)", heartbeatKind, now.UTC().Format(time.RFC3339Nano)); err != nil {
				switch {
				case ctx.Err() != nil:
					return nil
				case s.conn.IsClosed():
					return fmt.Errorf("writing heartbeat: %w", err)
				}
				// A heartbeat that cannot be written (no privilege, a
				// read-only server) must not stop the stream.
				s.log.Warn("could not write heartbeat; an idle database will not advance the slot", "err", err)
			}
			nextHeartbeat = now.Add(s.heartbeat)
		}
		if s.full() {
			s.waitSpace(ctx, time.Until(nextStatus))
			continue
		}
		want := nextStatus
		if s.heartbeat > 0 && nextHeartbeat.Before(want) {
			want = nextHeartbeat
		}
		if !want.Equal(deadline) {
			deadline = want
			_ = netConn.SetReadDeadline(deadline)
		}
		msg, err := s.repl.ReceiveMessage(context.Background())
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if pgconn.Timeout(err) || errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("receiving from replication slot %s: %w", s.cfg.Slot, err)
		}
		switch msg := msg.(type) {
		case *pgproto3.CopyData:
			if len(msg.Data) == 0 {
				continue
			}
			switch msg.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				pkm, err := pglogrepl.ParsePrimaryKeepaliveMessage(msg.Data[1:])
				if err != nil {
					return fmt.Errorf("parsing keepalive: %w", err)
				}
				if pkm.ServerWALEnd > st.received {
					st.received = pkm.ServerWALEnd
				}
				if !st.inTxn {
					s.idleProgress(pkm.ServerWALEnd)
				}
				if pkm.ReplyRequested {
					replyNow = true
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(msg.Data[1:])
				if err != nil {
					return fmt.Errorf("parsing XLogData: %w", err)
				}
				if err := s.handle(ctx, xld); err != nil {
					return err
				}
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("replication stream from slot %s: %w", s.cfg.Slot, pgconn.ErrorResponseToPgError(msg))
		case *pgproto3.CopyDone:
			return fmt.Errorf("server ended the replication stream of slot %s", s.cfg.Slot)
		}
	}
}

// handle decodes one pgoutput message.
func (s *Source) handle(ctx context.Context, xld pglogrepl.XLogData) error {
	st := &s.stream
	if xld.WALStart > st.received {
		st.received = xld.WALStart
	}
	msg, err := pglogrepl.Parse(xld.WALData)
	if err != nil {
		return fmt.Errorf("parsing pgoutput message at %s: %w", xld.WALStart, err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		return s.onRelation(ctx, m)
	case *pglogrepl.BeginMessage:
		st.inTxn, st.xid, st.commitTime, st.txRecords = true, m.Xid, m.CommitTime, 0
	case *pglogrepl.CommitMessage:
		end := m.TransactionEndLSN
		if st.txRecords > 0 {
			pos := streamPosition(end, st.xid)
			s.setLast(func(r *cdc.Record) { r.Position = pos })
			st.lastPos = end
			s.release(false)
		} else {
			s.idleProgress(end)
		}
		st.inTxn, st.txRecords = false, 0
		st.lastCommit = end
	case *pglogrepl.InsertMessage:
		t, err := s.relation(m.RelationID)
		if t == nil || err != nil {
			return err
		}
		after, err := s.tupleRow(t, m.Tuple, nil)
		if err != nil {
			return err
		}
		s.emit(t, cdc.OpCreate, nil, after, xld.WALStart)
	case *pglogrepl.UpdateMessage:
		t, err := s.relation(m.RelationID)
		if t == nil || err != nil {
			return err
		}
		var old cdc.Row
		if m.OldTuple != nil {
			if old, err = s.tupleRow(t, m.OldTuple, nil); err != nil {
				return err
			}
		}
		var fill cdc.Row
		if m.OldTupleType == pglogrepl.UpdateMessageTupleTypeOld {
			fill = old
		}
		after, err := s.tupleRow(t, m.NewTuple, fill)
		if err != nil {
			return err
		}
		if old != nil && len(t.key) > 0 && !sameKey(t, old, after) {
			// A key change is a delete of the old key and a create of the
			// new one, so per-key views forget the old key.
			s.emit(t, cdc.OpDelete, old, nil, xld.WALStart)
			s.emit(t, cdc.OpCreate, nil, after, xld.WALStart)
			return nil
		}
		var before cdc.Row
		if m.OldTupleType == pglogrepl.UpdateMessageTupleTypeOld {
			before = old
		}
		s.emit(t, cdc.OpUpdate, before, after, xld.WALStart)
	case *pglogrepl.DeleteMessage:
		t, err := s.relation(m.RelationID)
		if t == nil || err != nil {
			return err
		}
		var before cdc.Row
		if m.OldTuple != nil {
			if before, err = s.tupleRow(t, m.OldTuple, nil); err != nil {
				return err
			}
		}
		s.emit(t, cdc.OpDelete, before, nil, xld.WALStart)
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			t, err := s.relation(id)
			if err != nil {
				return err
			}
			if t != nil {
				s.emit(t, cdc.OpTruncate, nil, nil, xld.WALStart)
			}
		}
	}
	return nil
}

// relation returns the included table relid, nil for an excluded one.
func (s *Source) relation(relid uint32) (*table, error) {
	t := s.stream.rels[relid]
	if t == nil {
		return nil, fmt.Errorf("change for relation %d before its Relation message", relid)
	}
	if !t.included {
		return nil, nil
	}
	return t, nil
}

func (s *Source) topic(schema, name string) string {
	return s.cfg.TopicPrefix + "." + schema + "." + name
}

// onRelation (re)builds a table's schema from a Relation message, taking
// nullability and the key from the catalog.
func (s *Source) onRelation(ctx context.Context, m *pglogrepl.RelationMessage) error {
	t := &table{relid: m.RelationID, schema: m.Namespace, name: m.RelationName, identity: m.ReplicaIdentity}
	t.topic = s.topic(t.schema, t.name)
	t.included = s.included(t.qualified())
	s.stream.rels[m.RelationID] = t
	if !t.included {
		return nil
	}
	catCols, _, err := catalogTable(ctx, s.conn, m.RelationID)
	if err != nil {
		return err
	}
	byName := map[string]catalogColumn{}
	for _, c := range catCols {
		byName[c.name] = c
	}
	orders := keyOrders(catCols)
	if len(orders) == 0 && len(catCols) == 0 {
		// Table gone from the catalog: trust the message's key flags.
		// (Under REPLICA IDENTITY FULL every column is flagged: no key.)
		if m.ReplicaIdentity != 'f' {
			n := 0
			for _, c := range m.Columns {
				if c.Flags&1 != 0 {
					n++
					orders[c.Name] = n
				}
			}
		}
	}
	t.cols = make([]column, len(m.Columns))
	for i, mc := range m.Columns {
		c := column{name: mc.Name, oid: mc.DataType, typmod: mc.TypeModifier, notNull: byName[mc.Name].notNull, keyOrder: orders[mc.Name]}
		if err := s.types.mapColumn(&c); err != nil {
			return fmt.Errorf("table %s: %w", t.qualified(), err)
		}
		t.cols[i] = c
	}
	t.buildKey()
	return nil
}

// tupleRow converts a pgoutput tuple. Unchanged TOAST values ('u') are
// taken from fill (the full old row) when it has them, else marked
// Unchanged.
func (s *Source) tupleRow(t *table, td *pglogrepl.TupleData, fill cdc.Row) (cdc.Row, error) {
	if len(td.Columns) != len(t.cols) {
		return nil, fmt.Errorf("table %s: tuple has %d columns, the relation %d", t.qualified(), len(td.Columns), len(t.cols))
	}
	row := make(cdc.Row, len(t.cols))
	for i, c := range td.Columns {
		col := &t.cols[i]
		f := cdc.Field{Name: col.name, Type: col.typ}
		switch c.DataType {
		case pglogrepl.TupleDataTypeNull:
		case pglogrepl.TupleDataTypeToast:
			if fill != nil && !fill[i].Unchanged {
				f.Value = fill[i].Value
			} else {
				f.Unchanged = true
				if ph := s.cfg.UnavailableValuePlaceholder; ph != "" {
					f.Value = ph
				}
			}
		case pglogrepl.TupleDataTypeText:
			v, err := col.conv(c.Data)
			if err != nil {
				return nil, fmt.Errorf("converting %s.%s (%s) value %q: %w", t.qualified(), col.name, col.typ.SourceType, truncate(c.Data), err)
			}
			f.Value = v
		default:
			return nil, fmt.Errorf("table %s column %s: unexpected tuple data type %q", t.qualified(), col.name, c.DataType)
		}
		row[i] = f
	}
	return row, nil
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return append(bytes.Clone(b[:64]), "…"...)
	}
	return b
}

func keyOf(t *table, row cdc.Row) cdc.Row {
	if len(t.key) == 0 || row == nil {
		return nil
	}
	k := make(cdc.Row, len(t.key))
	for i, idx := range t.key {
		k[i] = row[idx]
	}
	return k
}

func sameKey(t *table, a, b cdc.Row) bool {
	for _, idx := range t.key {
		if a[idx].Unchanged || b[idx].Unchanged {
			continue
		}
		x, _ := cdc.AppendKey(nil, &cdc.Record{Key: cdc.Row{a[idx]}})
		y, _ := cdc.AppendKey(nil, &cdc.Record{Key: cdc.Row{b[idx]}})
		if !bytes.Equal(x, y) {
			return false
		}
	}
	return true
}

// emit buffers one change of the current transaction. All but the last
// record become readable; the last waits for its commit position.
func (s *Source) emit(t *table, op cdc.Op, before, after cdc.Row, lsn pglogrepl.LSN) {
	st := &s.stream
	keyRow := after
	if op == cdc.OpDelete {
		keyRow = before
	}
	rec := cdc.Record{
		Topic: t.topic, Op: op, Before: before, After: after,
		Source: cdc.SourceInfo{
			Version: "connectd", Connector: "postgresql", Name: s.cfg.TopicPrefix,
			TsMs: st.commitTime.UnixMilli(), Snapshot: "false", DB: s.db,
			Sequence: `["` + strconv.FormatUint(uint64(st.lastCommit), 10) + `","` + strconv.FormatUint(uint64(lsn), 10) + `"]`,
			Schema:   t.schema, Table: t.name,
			Extra: cdc.Row{
				{Name: "txId", Type: txIDType, Value: int64(st.xid)},
				{Name: "lsn", Type: lsnType, Value: int64(lsn)},
				{Name: "xmin", Type: xminType},
			},
		},
	}
	if op != cdc.OpTruncate {
		rec.Key = keyOf(t, keyRow)
	}
	s.add(rec)
	st.txRecords++
	if st.txRecords%releaseEvery == 0 {
		s.release(true) // a large transaction flows before its commit
	}
}

// releaseEvery is how many records of one transaction accumulate before
// they are made readable ahead of its commit.
const releaseEvery = 512
