package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/cdc"
)

// snapshot reads the planned tables in primary-key order, in chunks of
// snapshot_chunk_rows, inside one REPEATABLE READ transaction that imports
// the slot's exported snapshot (when there is one), so the rows read are
// exactly those committed before the slot's consistent point.
func (s *Source) snapshot(ctx context.Context, sp *snapshotPlan) error {
	sp.start = time.Now()
	tx, err := s.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("starting snapshot transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if sp.name != "" {
		if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(sp.name)); err != nil {
			return fmt.Errorf("importing exported snapshot %s: %w", sp.name, err)
		}
	}
	s.log.Info("snapshot started", "tables", len(sp.tables), "consistent_point", sp.lsn.String(), "exported", sp.name != "")
	first := true
	rows := 0
	for ti := sp.table; ti < len(sp.tables); ti++ {
		after := sp.after
		if ti != sp.table {
			after = nil
		}
		n, err := s.snapshotTable(ctx, sp, ti, after, &first)
		if err != nil {
			return err
		}
		rows += n
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("ending snapshot transaction: %w", err)
	}
	// The last snapshot record says "last" and carries the streaming
	// position: the consistent point.
	final := cdc.Position(`{"lsn":"` + sp.lsn.String() + `"}`)
	s.setLast(func(r *cdc.Record) {
		r.Source.Snapshot = "last"
		r.Position = final
	})
	s.release(false)
	s.log.Info("snapshot done", "rows", rows, "seconds", time.Since(sp.start).Seconds())
	return nil
}

// snapshotTable reads one table from after (its last key read) on.
func (s *Source) snapshotTable(ctx context.Context, sp *snapshotPlan, ti int, after []string, first *bool) (int, error) {
	schema, name, _ := strings.Cut(sp.tables[ti], ".")
	var relid uint32
	err := s.conn.QueryRow(ctx, `SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`, schema, name).Scan(&relid)
	if errors.Is(err, pgx.ErrNoRows) {
		s.log.Warn("table vanished before its snapshot; skipping", "table", sp.tables[ti])
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("finding table %s: %w", sp.tables[ti], err)
	}
	catCols, ident, err := catalogTable(ctx, s.conn, relid)
	if err != nil {
		return 0, err
	}
	t := &table{relid: relid, schema: schema, name: name, topic: s.topic(schema, name), included: true, identity: ident}
	orders := keyOrders(catCols)
	names := make([]string, len(catCols))
	for i, cc := range catCols {
		c := column{name: cc.name, oid: cc.oid, typmod: cc.typmod, notNull: cc.notNull, keyOrder: orders[cc.name]}
		if err := s.types.mapColumn(&c); err != nil {
			return 0, fmt.Errorf("table %s: %w", t.qualified(), err)
		}
		t.cols = append(t.cols, c)
		names[i] = quoteIdent(cc.name)
	}
	t.buildKey()
	from := quoteIdent(schema) + "." + quoteIdent(name)
	var keyCols []string
	for _, k := range t.key {
		keyCols = append(keyCols, quoteIdent(t.cols[k].name))
	}
	chunk := s.cfg.SnapshotChunkRows
	total := 0
	for {
		var sql string
		var params [][]byte
		keyed := len(keyCols) > 0
		if keyed {
			var where string
			if after != nil {
				ph := make([]string, len(after))
				for i, v := range after {
					ph[i] = "$" + strconv.Itoa(i+1)
					params = append(params, []byte(v))
				}
				where = " WHERE (" + strings.Join(keyCols, ", ") + ") > (" + strings.Join(ph, ", ") + ")"
			}
			sql = "SELECT " + strings.Join(names, ", ") + " FROM " + from + where + " ORDER BY " + strings.Join(keyCols, ", ") + " LIMIT " + strconv.Itoa(chunk)
		} else {
			// No key to page by: one pass over the table.
			sql = "SELECT " + strings.Join(names, ", ") + " FROM " + from
		}
		n, last, err := s.snapshotQuery(ctx, sp, t, sql, params, first)
		if err != nil {
			if pgCode(err) == "42501" {
				return total, cdc.Terminal(fmt.Errorf("%w: reading table %s for the snapshot: %w (GRANT SELECT ON %s TO the connector's role)", ErrPrivilege, t.qualified(), err, from))
			}
			return total, fmt.Errorf("reading table %s for the snapshot: %w", t.qualified(), err)
		}
		total += n
		done := !keyed || n < chunk
		if n > 0 {
			prog := snapshotProgress{Tables: sp.tables, Table: ti, After: last}
			if done {
				prog = snapshotProgress{Tables: sp.tables, Table: ti + 1}
			}
			b, _ := json.Marshal(position{LSN: sp.lsn.String(), Snapshot: &prog})
			pos := cdc.Position(b)
			s.setLast(func(r *cdc.Record) { r.Position = pos })
			s.release(true)
		}
		if done {
			return total, nil
		}
		after = last
	}
}

// snapshotQuery runs one chunk query with text results and buffers its
// rows as "r" records. It returns the row count and the last row's key.
func (s *Source) snapshotQuery(ctx context.Context, sp *snapshotPlan, t *table, sql string, params [][]byte, first *bool) (int, []string, error) {
	rr := s.conn.PgConn().ExecParams(ctx, sql, params, nil, nil, nil)
	n := 0
	var last []string
	var convErr error
	for rr.NextRow() {
		vals := rr.Values()
		row := make(cdc.Row, len(t.cols))
		for i := range t.cols {
			col := &t.cols[i]
			row[i] = cdc.Field{Name: col.name, Type: col.typ}
			if vals[i] == nil {
				continue
			}
			v, err := col.conv(vals[i])
			if err != nil && convErr == nil {
				convErr = fmt.Errorf("converting %s.%s (%s) value %q: %w", t.qualified(), col.name, col.typ.SourceType, truncate(vals[i]), err)
			}
			row[i].Value = v
		}
		if len(t.key) > 0 {
			if last == nil {
				last = make([]string, len(t.key))
			}
			for i, k := range t.key {
				last[i] = string(vals[k])
			}
		}
		marker := "true"
		if *first {
			marker, *first = "first", false
		}
		s.add(cdc.Record{
			Topic: t.topic, Op: cdc.OpRead, Key: keyOf(t, row), After: row,
			Source: cdc.SourceInfo{
				Version: "connectd", Connector: "postgresql", Name: s.cfg.TopicPrefix,
				TsMs: sp.start.UnixMilli(), Snapshot: marker, DB: s.db,
				Sequence: `[null,"` + strconv.FormatUint(uint64(sp.lsn), 10) + `"]`,
				Schema:   t.schema, Table: t.name,
				Extra: cdc.Row{
					{Name: "txId", Type: txIDType},
					{Name: "lsn", Type: lsnType, Value: int64(sp.lsn)},
					{Name: "xmin", Type: xminType},
				},
			},
		})
		n++
		if n%1024 == 0 {
			s.release(true)
			for s.full() && ctx.Err() == nil {
				s.waitSpace(ctx, time.Second)
			}
		}
	}
	if _, err := rr.Close(); err != nil {
		return n, last, err
	}
	return n, last, convErr
}
