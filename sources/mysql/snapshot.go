package mysql

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/connectd/connectd/cdc"
)

// snapshot is a running initial snapshot: one REPEATABLE READ transaction
// with a consistent snapshot, read table by table in primary-key chunks.
type snapshot struct {
	conn    *client.Conn
	state   snapshotState
	tsMs    int64
	tbl     *table
	first   *client.Stmt // first chunk of tbl
	next    *client.Stmt // chunks after a key
	started bool         // a record was emitted by this run
	resumed bool
	extra   cdc.Row // the source block's MySQL fields, shared by all records
	// marker: a fresh snapshot first emits its start position alone and
	// waits until it is acknowledged (stored) before emitting rows. Else
	// a crash before the first commit would start another snapshot at a
	// later binlog position, and rows the lost run already put in Kafka
	// but deleted in between would never get their delete.
	marker, waitAck bool
}

func (sn *snapshot) closeTable() {
	if sn.first != nil {
		sn.first.Close()
	}
	if sn.next != nil {
		sn.next.Close()
	}
	sn.tbl, sn.first, sn.next = nil, nil, nil
}

func (sn *snapshot) close() {
	sn.closeTable()
	if sn.conn != nil {
		_, _ = sn.conn.Execute("COMMIT")
		sn.conn.Close()
		sn.conn = nil
	}
}

// beginSnapshot opens the snapshot transaction on conn and reads the binlog
// position it corresponds to. resume, when set, continues a stored snapshot
// (streaming then starts from its stored binlog position).
func (s *Source) beginSnapshot(ctx context.Context, conn *client.Conn, resume *position) (err error) {
	defer func() {
		if err != nil {
			conn.Close()
		}
	}()
	if _, err := conn.Execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return fmt.Errorf("setting isolation level: %w", err)
	}
	var tables []string
	if resume != nil {
		tables = resume.Snapshot.Tables
	} else if tables, err = s.listTables(conn); err != nil {
		return err
	}
	var at position
	if s.flavor == gomysql.MariaDBFlavor {
		// MariaDB reports the binlog position of a consistent snapshot
		// without any lock.
		if _, err := conn.Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT"); err != nil {
			return fmt.Errorf("starting snapshot transaction: %w", err)
		}
		r, err := conn.Execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
		if err != nil {
			return fmt.Errorf("reading snapshot binlog position: %w", err)
		}
		for i := range r.Values {
			k, _ := r.GetString(i, 0)
			v, _ := r.GetString(i, 1)
			switch k {
			case "binlog_snapshot_file", "Binlog_snapshot_file":
				at.File = v
			case "binlog_snapshot_position", "Binlog_snapshot_position":
				n, _ := strconv.ParseUint(v, 10, 32)
				at.Pos = uint32(n)
			}
		}
		if at.File == "" {
			return cdc.Terminal(fmt.Errorf("%w: no binlog_snapshot_file: binary logging is off", ErrServerConfig))
		}
		g, err := conn.Execute("SELECT BINLOG_GTID_POS(?, ?)", at.File, at.Pos)
		if err != nil {
			return fmt.Errorf("reading GTID position of the snapshot: %w", err)
		}
		at.GTIDs, _ = g.GetString(0, 0)
	} else {
		// MySQL: a global read lock while the snapshot starts and the
		// position is read; per-table locks where FLUSH is not permitted.
		if _, err := conn.Execute("FLUSH TABLES WITH READ LOCK"); err != nil {
			s.log.Warn("global read lock not permitted; locking the captured tables instead", "err", err)
			if len(tables) > 0 {
				quoted := make([]string, len(tables))
				for i, t := range tables {
					db, tb, _ := strings.Cut(t, ".")
					quoted[i] = quoteIdent(db) + "." + quoteIdent(tb) + " READ"
				}
				if _, err := conn.Execute("LOCK TABLES " + strings.Join(quoted, ", ")); err != nil {
					return cdc.Terminal(fmt.Errorf("%w: neither FLUSH TABLES WITH READ LOCK (RELOAD) nor LOCK TABLES is permitted: %v", ErrPrivileges, err))
				}
			}
			if at, err = currentPosition(conn, s.flavor); err != nil {
				return err
			}
			if _, err := conn.Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT"); err != nil { // also unlocks
				return fmt.Errorf("starting snapshot transaction: %w", err)
			}
		} else {
			if _, err := conn.Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT"); err != nil {
				return fmt.Errorf("starting snapshot transaction: %w", err)
			}
			if at, err = currentPosition(conn, s.flavor); err != nil {
				return err
			}
			if _, err := conn.Execute("UNLOCK TABLES"); err != nil {
				return fmt.Errorf("releasing global read lock: %w", err)
			}
		}
	}
	sn := &snapshot{conn: conn, tsMs: s.now().UnixMilli()}
	if resume != nil {
		s.start = *resume
		sn.state = *resume.Snapshot
		sn.resumed = true
		s.log.Info("resuming snapshot", "table", sn.state.Table, "of", len(sn.state.Tables), "binlog_file", s.start.File, "binlog_pos", s.start.Pos)
	} else {
		s.start = at
		sn.state = snapshotState{Tables: tables}
		sn.marker = true
		s.log.Info("starting snapshot", "tables", len(tables), "binlog_file", at.File, "binlog_pos", at.Pos, "gtids", at.GTIDs)
		if len(tables) == 0 {
			s.log.Warn("no table matches include_tables/exclude_tables (information_schema hides tables the user has no privilege on: check SELECT grants)", "user", s.cfg.User)
		}
	}
	s.start.Snapshot = nil
	s.snap = sn
	return nil
}

// listTables returns the captured base tables as "db.table".
func (s *Source) listTables(conn *client.Conn) ([]string, error) {
	r, err := conn.Execute("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_SCHEMA, TABLE_NAME")
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	var out []string
	for i := range r.Values {
		db, _ := r.GetString(i, 0)
		tb, _ := r.GetString(i, 1)
		if s.filter.match(db, tb) {
			out = append(out, db+"."+tb)
		}
	}
	return out, nil
}

// readSnapshot returns the next chunk of snapshot records; none once the
// snapshot is complete (s.snap is then nil).
func (s *Source) readSnapshot(ctx context.Context) ([]cdc.Record, error) {
	sn := s.snap
	if sn.marker {
		sn.marker, sn.waitAck = false, true
		st := sn.state
		p := s.start
		p.Snapshot = &st
		return []cdc.Record{s.heartbeatAt(p.encode())}, nil
	}
	if sn.waitAck {
		select {
		case <-s.acked:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		sn.waitAck = false
	}
	for sn.state.Table < len(sn.state.Tables) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if sn.tbl == nil {
			if err := s.openTable(sn); err != nil {
				return nil, err
			}
			if sn.tbl == nil { // dropped since listed
				sn.state.Table++
				sn.state.After = nil
				continue
			}
		}
		recs, more, last, err := s.readChunk(sn)
		if err != nil {
			return nil, err
		}
		st := snapshotState{Tables: sn.state.Tables, Table: sn.state.Table, After: last}
		if !more {
			st.Table++
			st.After = nil
			sn.closeTable()
		}
		sn.state = st
		if len(recs) == 0 {
			continue
		}
		p := s.start
		if st.Table < len(st.Tables) {
			p.Snapshot = &st
		} else {
			recs[len(recs)-1].Source.Snapshot = "last"
		}
		if !sn.started && !sn.resumed {
			recs[0].Source.Snapshot = "first"
		}
		sn.started = true
		recs[len(recs)-1].Position = p.encode()
		return recs, nil
	}
	sn.close()
	s.snap = nil
	s.dirty = true // carried by the next commit or heartbeat
	s.log.Info("snapshot complete")
	return nil, nil
}

// openTable loads the current table's shape and prepares its chunk queries.
func (s *Source) openTable(sn *snapshot) error {
	db, name, _ := strings.Cut(sn.state.Tables[sn.state.Table], ".")
	t, err := loadTable(sn.conn, db, name, s.cfg.TopicPrefix, s.cfg.DecimalHandling)
	if err != nil {
		if cdc.IsTerminal(err) {
			return err
		}
		s.log.Warn("skipping table in snapshot", "table", db+"."+name, "err", err)
		return nil
	}
	cols := make([]string, len(t.cols))
	for i := range t.cols {
		cols[i] = quoteIdent(t.cols[i].name)
	}
	from := " FROM " + quoteIdent(db) + "." + quoteIdent(name)
	sel := "SELECT " + strings.Join(cols, ", ") + from
	if len(t.pk) == 0 {
		s.log.Warn("table has no primary key: snapshot reads it in one pass (no resume inside it) and its records get a null Kafka key", "table", t.String())
		if sn.first, err = sn.conn.Prepare(sel); err != nil {
			return s.selectError(t, err)
		}
		sn.tbl = t
		return nil
	}
	order := make([]string, len(t.pk))
	for i, k := range t.pk {
		order[i] = quoteIdent(t.cols[k].name)
	}
	limit := " ORDER BY " + strings.Join(order, ", ") + " LIMIT " + strconv.Itoa(s.cfg.SnapshotChunkRows+1)
	// Keyset: (a > ?) OR (a = ? AND b > ?) OR ...
	var ors []string
	for j := range order {
		var ands []string
		for m := 0; m < j; m++ {
			ands = append(ands, order[m]+" = ?")
		}
		ands = append(ands, order[j]+" > ?")
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	if sn.first, err = sn.conn.Prepare(sel + limit); err != nil {
		return s.selectError(t, err)
	}
	if sn.next, err = sn.conn.Prepare(sel + " WHERE " + strings.Join(ors, " OR ") + limit); err != nil {
		return s.selectError(t, err)
	}
	sn.tbl = t
	return nil
}

func (s *Source) selectError(t *table, err error) error {
	if me, ok := err.(*gomysql.MyError); ok && (me.Code == gomysql.ER_TABLEACCESS_DENIED_ERROR || me.Code == gomysql.ER_COLUMNACCESS_DENIED_ERROR) {
		return cdc.Terminal(fmt.Errorf("%w: user %q lacks SELECT on %s: %s", ErrPrivileges, s.cfg.User, t, me.Message))
	}
	return fmt.Errorf("preparing snapshot query of %s: %w", t, err)
}

// readChunk reads the next chunk of the current table. more tells whether
// rows remain after it; last is the key of its last row.
func (s *Source) readChunk(sn *snapshot) (recs []cdc.Record, more bool, last []string, err error) {
	t := sn.tbl
	stmt, args := sn.first, []any(nil)
	if sn.state.After != nil && sn.next != nil {
		stmt = sn.next
		key := make([]any, len(t.pk))
		for i, k := range t.pk {
			v := sn.state.After[i]
			if t.cols[k].cls == clsBytes {
				b, err := base64.StdEncoding.DecodeString(v)
				if err != nil {
					return nil, false, nil, cdc.Terminal(fmt.Errorf("reading stored snapshot key of %s: %w", t, err))
				}
				key[i] = b
			} else {
				key[i] = v
			}
		}
		for j := range t.pk {
			args = append(args, key[:j]...)
			args = append(args, key[j])
		}
	}
	limit := s.cfg.SnapshotChunkRows
	if len(t.pk) == 0 {
		limit = int(^uint(0) >> 1)
	}
	if sn.extra == nil {
		// The same for every snapshot record; rows are immutable once
		// emitted, so one copy is shared.
		sn.extra = cdc.Row{
			{Name: "server_id", Type: extraInt, Value: int64(0)},
			{Name: "gtid", Type: extraString, Value: nil},
			{Name: "file", Type: extraString, Value: s.start.File},
			{Name: "pos", Type: extraInt, Value: int64(s.start.Pos)},
			{Name: "row", Type: extraInt32, Value: int64(0)},
			{Name: "thread", Type: extraInt, Value: nil},
			{Name: "query", Type: extraString, Value: nil},
		}
	}
	recs = make([]cdc.Record, 0, min(limit, s.cfg.SnapshotChunkRows, 16384))
	if len(t.pk) > 0 {
		last = make([]string, len(t.pk))
	}
	n := 0
	var result gomysql.Result
	err = stmt.ExecuteSelectStreaming(&result, func(row []gomysql.FieldValue) error {
		n++
		if n > limit {
			more = true
			return nil
		}
		after := make(cdc.Row, len(t.cols))
		for j := range t.cols {
			c := &t.cols[j]
			v, err := c.convert(row[j].Value(), s.cfg.DecimalHandling)
			if err != nil {
				return cdc.Terminal(fmt.Errorf("converting %s.%s.%s (source: information_schema): %w", t.db, t.name, c.name, err))
			}
			after[j] = cdc.Field{Name: c.name, Type: c.typ, Value: v}
		}
		if len(t.pk) > 0 {
			for i, k := range t.pk {
				last[i] = keyText(&row[k], t.cols[k].cls)
			}
		}
		recs = append(recs, cdc.Record{
			Topic: t.topic,
			Op:    cdc.OpRead,
			Key:   t.key(after),
			After: after,
			Source: cdc.SourceInfo{
				Version: version, Connector: "mysql", Name: s.cfg.TopicPrefix, TsMs: sn.tsMs,
				Snapshot: "true", DB: t.db, Table: t.name,
				Extra: sn.extra,
			},
		})
		return nil
	}, nil, args...)
	if err != nil {
		if cdc.IsTerminal(err) {
			return nil, false, nil, err
		}
		return nil, false, nil, s.selectError(t, err)
	}
	return recs, more, last, nil
}

// keyText is the stored form of a key value: its text, base64 for binary.
func keyText(v *gomysql.FieldValue, cls class) string {
	switch v.Type {
	case gomysql.FieldValueTypeUnsigned:
		return strconv.FormatUint(v.AsUint64(), 10)
	case gomysql.FieldValueTypeSigned:
		return strconv.FormatInt(v.AsInt64(), 10)
	case gomysql.FieldValueTypeFloat:
		return strconv.FormatFloat(v.AsFloat64(), 'g', -1, 64)
	}
	if cls == clsBytes {
		return base64.StdEncoding.EncodeToString(v.AsString())
	}
	return string(v.AsString())
}

var _ = json.Marshal
