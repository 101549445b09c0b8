package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/connectd/connectd/cdc"
)

// Types of the source block's connector-specific fields.
var (
	extraInt    = &cdc.Type{Kind: cdc.KindInt64}
	extraInt32  = &cdc.Type{Kind: cdc.KindInt32}
	extraString = &cdc.Type{Kind: cdc.KindString, Optional: true}
)

// eventQueue is how many binlog events the syncer may read ahead of Read.
const eventQueue = 1024

// handler hands events from the syncer's goroutine to Read.
type handler struct {
	ch   chan<- *replication.BinlogEvent
	stop <-chan struct{}
}

func (h handler) HandleEvent(e *replication.BinlogEvent) error {
	select {
	case h.ch <- e:
		return nil
	case <-h.stop:
		return errors.New("source closed")
	}
}

// startStream connects the binlog syncer at s.start.
func (s *Source) startStream(ctx context.Context) error {
	if err := s.initStream(); err != nil {
		return err
	}
	gset := s.gset
	var err error
	s.events = make(chan *replication.BinlogEvent, eventQueue)
	s.stop = make(chan struct{})
	hb := s.heartbeat
	if hb == 0 {
		hb = 30 * time.Second
	}
	s.syncer = replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID:                s.cfg.ServerID,
		Flavor:                  s.flavor,
		Host:                    s.cfg.Host,
		Port:                    uint16(s.cfg.Port),
		User:                    s.cfg.User,
		Password:                s.cfg.Password,
		Charset:                 "utf8mb4",
		TimestampStringLocation: time.UTC,
		RenderJSONAsMySQLText:   true,
		HeartbeatPeriod:         hb,
		ReadTimeout:             3*hb + 10*time.Second,
		DisableRetrySync:        true, // Read fails; the runtime reconnects from the committed position
		Logger:                  s.warnLogger(),
		SynchronousEventHandler: handler{ch: s.events, stop: s.stop},
	})
	var streamer *replication.BinlogStreamer
	if s.start.GTIDs != "" {
		streamer, err = s.syncer.StartSyncGTID(gset)
	} else {
		streamer, err = s.syncer.StartSync(gomysql.Position{Name: s.start.File, Pos: max(s.start.Pos, 4)})
	}
	if err != nil {
		s.stopStream()
		return s.classify(err)
	}
	s.streamErr = make(chan error, 1)
	go func(stop <-chan struct{}) {
		// Events go to the handler; GetEvent only ever returns the
		// stream's error, or nothing once the source is closed.
		sctx, cancel := context.WithCancel(context.Background())
		go func() { <-stop; cancel() }()
		if _, err := streamer.GetEvent(sctx); err != nil && sctx.Err() == nil {
			s.streamErr <- err
		}
	}(s.stop)
	if s.heartbeat > 0 {
		s.ticker = time.NewTicker(s.heartbeat)
	}
	s.lastPosAt = s.now()
	s.log.Info("streaming binlog", "flavor", s.flavor, "file", s.start.File, "pos", s.start.Pos, "gtids", s.start.GTIDs)
	return nil
}

// initStream sets up the decoding state for streaming from s.start.
func (s *Source) initStream() error {
	gset, err := gomysql.ParseGTIDSet(s.flavor, s.start.GTIDs)
	if err != nil {
		return cdc.Terminal(fmt.Errorf("parsing stored GTID set %q (%s flavor): %w", s.start.GTIDs, s.flavor, err))
	}
	s.gset = gset
	s.file = s.start.File
	s.cur = s.start
	s.cur.Snapshot = nil
	s.tables = map[uint64]*tableEntry{}
	return nil
}

func (s *Source) stopStream() {
	if s.syncer == nil {
		return
	}
	close(s.stop)
	s.syncer.Close()
	s.syncer = nil
	if s.ticker != nil {
		s.ticker.Stop()
	}
}

// classify turns a replication error into a clear, possibly terminal, one.
func (s *Source) classify(err error) error {
	var me *gomysql.MyError
	if errors.As(err, &me) {
		msg := strings.ToLower(me.Message)
		switch {
		case me.Code == gomysql.ER_ACCESS_DENIED_ERROR:
			return cdc.Terminal(fmt.Errorf("%w: streaming binlog as %q: %s", ErrAuth, s.cfg.User, me.Message))
		case me.Code == gomysql.ER_SPECIFIC_ACCESS_DENIED_ERROR || me.Code == gomysql.ER_DBACCESS_DENIED_ERROR:
			return cdc.Terminal(fmt.Errorf("%w: streaming binlog as %q: %s (needs REPLICATION SLAVE and REPLICATION CLIENT)", ErrPrivileges, s.cfg.User, me.Message))
		case strings.Contains(msg, "server_id") || strings.Contains(msg, "server_uuid"):
			return cdc.Terminal(fmt.Errorf("%w: %s; give this connector a server_id no other replica uses", ErrServerIDCollision, me.Message))
		case me.Code == gomysql.ER_MASTER_FATAL_ERROR_READING_BINLOG &&
			(strings.Contains(msg, "purged") || strings.Contains(msg, "could not find") || strings.Contains(msg, "not in the master's binlog") || strings.Contains(msg, "no longer")):
			return cdc.Terminal(fmt.Errorf("%w: %s (stored position file %s pos %d gtids %q); to recover, take a new snapshot: reset the connector's offsets or set snapshot_mode: when_needed", ErrBinlogPurged, me.Message, s.start.File, s.start.Pos, s.start.GTIDs))
		}
	}
	return fmt.Errorf("reading binlog from %s: %w", s.cfg.addr(), err)
}

// readStream returns the next batch of changes: everything available, up
// to maxBatch, blocking for the first.
func (s *Source) readStream(ctx context.Context) ([]cdc.Record, error) {
	s.out = make([]cdc.Record, 0, 64)
	var tick <-chan time.Time
	if s.ticker != nil {
		tick = s.ticker.C
	}
	for len(s.out) < maxBatch {
		select {
		case ev := <-s.events:
			if err := s.process(ev); err != nil {
				return nil, err
			}
			continue
		default:
		}
		if len(s.out) > 0 {
			break
		}
		select {
		case ev := <-s.events:
			if err := s.process(ev); err != nil {
				return nil, err
			}
		case err := <-s.streamErr:
			return nil, s.classify(err)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick:
			if s.dirty && !s.inTxn && s.pending == nil && s.now().Sub(s.lastPosAt) >= s.heartbeat {
				s.out = append(s.out, s.heartbeatRecord())
			}
		}
	}
	out := s.out
	s.out = nil
	return out, nil
}

// heartbeatRecord carries the current position on Debezium's heartbeat
// topic, with a null value.
func (s *Source) heartbeatRecord() cdc.Record {
	s.cur.GTIDs = s.gset.String()
	s.dirty = false
	s.lastPosAt = s.now()
	return s.heartbeatAt(appendPosition(nil, s.cur.File, s.cur.Pos, s.cur.GTIDs))
}

// heartbeatAt is a heartbeat record carrying pos.
func (s *Source) heartbeatAt(pos cdc.Position) cdc.Record {
	return cdc.Record{
		Topic:     "__debezium-heartbeat." + s.cfg.TopicPrefix,
		Key:       cdc.Row{{Name: "serverName", Type: extraString, Value: s.cfg.TopicPrefix}},
		Tombstone: true,
		Op:        cdc.OpRead,
		Source:    cdc.SourceInfo{Version: version, Connector: "mysql", Name: s.cfg.TopicPrefix, TsMs: s.now().UnixMilli()},
		Position:  pos,
	}
}

// version is the source block's version field.
const version = "connectd-0.1"

// process applies one binlog event.
func (s *Source) process(ev *replication.BinlogEvent) error {
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		s.file = string(e.NextLogName)
	case *replication.MariadbGTIDEvent:
		s.mariaGTID = e.GTID
		s.txnGTID = e.GTID.String()
		// A standalone event group (DDL) is one query event, which ends
		// it; otherwise the group runs until XID or COMMIT.
		s.inTxn = !e.IsStandalone()
	case *replication.GTIDEvent:
		next, err := e.GTIDNext()
		if err != nil {
			return fmt.Errorf("reading GTID event: %w", err)
		}
		s.txnGTID = next.String()
	case *replication.QueryEvent:
		q := string(e.Query)
		switch {
		case q == "BEGIN":
			s.inTxn = true
		case q == "COMMIT" || q == "ROLLBACK":
			return s.commit(ev.Header)
		case s.inTxn:
			// A statement inside a transaction (SAVEPOINT, ...): not
			// a boundary.
		default:
			s.log.Info("DDL in binlog", "db", string(e.Schema), "query", truncate(q, 200))
			return s.commit(ev.Header)
		}
	case *replication.XIDEvent:
		return s.commit(ev.Header)
	case *replication.TableMapEvent:
		return s.tableMap(e)
	case *replication.RowsEvent:
		return s.rows(ev.Header, e)
	case *replication.TransactionPayloadEvent:
		for _, inner := range e.Events {
			if err := s.process(inner); err != nil {
				return err
			}
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// commit ends a transaction: the held-back last row, if any, carries the
// position after it.
func (s *Source) commit(h *replication.EventHeader) error {
	if s.txnGTID != "" {
		var err error
		if s.flavor == gomysql.MariaDBFlavor {
			err = s.gset.(*gomysql.MariadbGTIDSet).AddSet(&s.mariaGTID)
		} else {
			err = s.gset.Update(s.txnGTID)
		}
		if err != nil {
			return fmt.Errorf("adding GTID %s to %s: %w", s.txnGTID, s.gset, err)
		}
	}
	s.inTxn = false
	s.txnGTID = ""
	if h.LogPos > 0 {
		s.cur.File, s.cur.Pos = s.file, h.LogPos
	}
	s.cur.GTIDs = ""
	s.dirty = true
	if s.pending != nil {
		s.cur.GTIDs = s.gset.String()
		s.pending.Position = appendPosition(nil, s.cur.File, s.cur.Pos, s.cur.GTIDs)
		s.out = append(s.out, *s.pending)
		s.pending = nil
		s.dirty = false
		s.lastPosAt = s.now()
	} else if s.heartbeat > 0 && s.now().Sub(s.lastPosAt) >= s.heartbeat {
		s.out = append(s.out, s.heartbeatRecord())
	}
	return nil
}

func (s *Source) tableMap(tm *replication.TableMapEvent) error {
	if e := s.tables[tm.TableID]; e != nil {
		if e.tm == tm || (e.t != nil && e.t.sameMap(tm)) {
			e.tm = tm
			return nil
		}
		if e.t == nil && string(e.tm.Schema) == string(tm.Schema) && string(e.tm.Table) == string(tm.Table) {
			e.tm = tm
			return nil
		}
	}
	e := &tableEntry{tm: tm}
	if s.filter.match(string(tm.Schema), string(tm.Table)) {
		t, err := tableFromMap(tm, s.cfg.TopicPrefix, s.cfg.DecimalHandling)
		if err != nil {
			return err
		}
		if s.flavor == gomysql.MariaDBFlavor {
			if err := s.refine(t); err != nil {
				return err
			}
		}
		if len(t.pk) == 0 {
			s.log.Warn("table has no primary key: its records get a null Kafka key", "table", t.String())
		}
		e.t = t
	}
	s.tables[tm.TableID] = e
	return nil
}

// refine resolves MariaDB UUID/INET columns over a side connection.
func (s *Source) refine(t *table) error {
	if s.meta == nil {
		ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
		defer cancel()
		conn, err := s.connect(ctx)
		if err != nil {
			return err
		}
		s.meta = conn
	}
	err := refineFixedBinary(s.meta, t, s.cfg.DecimalHandling)
	if err != nil {
		s.meta.Close()
		s.meta = nil
	}
	return err
}

// rows turns a rows event into records, holding back the last one.
func (s *Source) rows(h *replication.EventHeader, e *replication.RowsEvent) error {
	entry := s.tables[e.TableID]
	if entry == nil || entry.t == nil {
		return nil
	}
	t := entry.t
	var op cdc.Op
	switch h.EventType {
	case replication.WRITE_ROWS_EVENTv0, replication.WRITE_ROWS_EVENTv1, replication.WRITE_ROWS_EVENTv2, replication.MARIADB_WRITE_ROWS_COMPRESSED_EVENT_V1:
		op = cdc.OpCreate
	case replication.UPDATE_ROWS_EVENTv0, replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2, replication.MARIADB_UPDATE_ROWS_COMPRESSED_EVENT_V1, replication.PARTIAL_UPDATE_ROWS_EVENT:
		op = cdc.OpUpdate
	case replication.DELETE_ROWS_EVENTv0, replication.DELETE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv2, replication.MARIADB_DELETE_ROWS_COMPRESSED_EVENT_V1:
		op = cdc.OpDelete
	default:
		return nil
	}
	step := 1
	if op == cdc.OpUpdate {
		step = 2
	}
	var gtid any
	if s.txnGTID != "" {
		gtid = s.txnGTID
	}
	startPos := int64(h.LogPos) - int64(h.EventSize)
	for i := 0; i+step <= len(e.Rows); i += step {
		rec := cdc.Record{
			Topic: t.topic,
			Op:    op,
			Source: cdc.SourceInfo{
				Version: version, Connector: "mysql", Name: s.cfg.TopicPrefix,
				TsMs: int64(h.Timestamp) * 1000, DB: t.db, Table: t.name,
				Extra: cdc.Row{
					{Name: "server_id", Type: extraInt, Value: int64(h.ServerID)},
					{Name: "gtid", Type: extraString, Value: gtid},
					{Name: "file", Type: extraString, Value: s.file},
					{Name: "pos", Type: extraInt, Value: startPos},
					{Name: "row", Type: extraInt32, Value: int64(i / step)},
					{Name: "thread", Type: extraInt, Value: nil},
					{Name: "query", Type: extraString, Value: nil},
				},
			},
		}
		var err error
		switch op {
		case cdc.OpCreate:
			rec.After, err = s.row(t, e, i)
			rec.Key = t.key(rec.After)
		case cdc.OpDelete:
			rec.Before, err = s.row(t, e, i)
			rec.Key = t.key(rec.Before)
		case cdc.OpUpdate:
			if rec.Before, err = s.row(t, e, i); err == nil {
				rec.After, err = s.row(t, e, i+1)
			}
			rec.Key = t.key(rec.After)
		}
		if err != nil {
			return err
		}
		if s.pending != nil {
			s.out = append(s.out, *s.pending)
		}
		s.pending = &rec
	}
	return nil
}

// row converts one row image of a rows event.
func (s *Source) row(t *table, e *replication.RowsEvent, i int) (cdc.Row, error) {
	vals := e.Rows[i]
	if len(vals) != len(t.cols) {
		return nil, cdc.Terminal(fmt.Errorf("%w: %s row has %d columns, table map says %d (source: binlog table map)", ErrSchema, t, len(vals), len(t.cols)))
	}
	if len(e.SkippedColumns) > i && len(e.SkippedColumns[i]) > 0 {
		return nil, cdc.Terminal(fmt.Errorf("%w: %s row image lacks columns %v: binlog_row_image must be FULL", ErrServerConfig, t, e.SkippedColumns[i]))
	}
	row := make(cdc.Row, len(t.cols))
	for j := range t.cols {
		c := &t.cols[j]
		v, err := c.convert(vals[j], s.cfg.DecimalHandling)
		if err != nil {
			return nil, cdc.Terminal(fmt.Errorf("converting %s.%s.%s (source: binlog table map): %w", t.db, t.name, c.name, err))
		}
		row[j] = cdc.Field{Name: c.name, Type: c.typ, Value: v}
	}
	return row, nil
}
