package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/connectd/connectd/cdc"
)

// Sink writes change events to PostgreSQL tables.
type Sink struct {
	cfg    *settings
	name   string
	log    *slog.Logger
	conn   *pgx.Conn
	tables map[string]*tableInfo // by table name, what the database has
}

// tableInfo is what the sink knows of a target table.
type tableInfo struct {
	exists  bool
	columns map[string]string // column → base type (bigint, numeric, text, …)
	pk      []string
}

// New builds a sink from its config block without connecting.
func New(dec cdc.ConfigDecoder, name string, log *slog.Logger) (*Sink, error) {
	cfg, err := parseConfig(dec)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sink{cfg: cfg, name: name, log: log}, nil
}

// Open connects and creates the offsets table when missing.
func (s *Sink) Open(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.cfg.DSN)
	if err != nil {
		return classify(fmt.Errorf("connecting to PostgreSQL: %s", redactErr(err, s.cfg.DSN)), err)
	}
	s.conn = conn
	s.tables = map[string]*tableInfo{}
	_, err = conn.Exec(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
		sink text NOT NULL, topic text NOT NULL, partition integer NOT NULL,
		next_offset bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (sink, topic, partition))`, s.ident("connectd_offsets")))
	if err != nil {
		return classify(fmt.Errorf("creating %s.connectd_offsets: %w", s.cfg.Schema, err), err)
	}
	return nil
}

// Close closes the connection.
func (s *Sink) Close(ctx context.Context) error {
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close(ctx)
	s.conn = nil
	return err
}

// StoredOffsets returns the last applied offset per topic partition, as
// stored in connectd_offsets by the same transactions that wrote the rows.
func (s *Sink) StoredOffsets(ctx context.Context) (map[cdc.TopicPartition]int64, error) {
	rows, err := s.conn.Query(ctx, fmt.Sprintf(`SELECT topic, partition, next_offset FROM %s WHERE sink = $1`, s.ident("connectd_offsets")), s.name)
	if err != nil {
		return nil, fmt.Errorf("reading connectd_offsets: %w", err)
	}
	defer rows.Close()
	out := map[cdc.TopicPartition]int64{}
	for rows.Next() {
		var tp cdc.TopicPartition
		var next int64
		if err := rows.Scan(&tp.Topic, &tp.Partition, &next); err != nil {
			return nil, fmt.Errorf("reading connectd_offsets: %w", err)
		}
		out[tp] = next - 1
	}
	return out, rows.Err()
}

// ident quotes a name in the sink's schema.
func (s *Sink) ident(name string) string {
	return pgx.Identifier{s.cfg.Schema, name}.Sanitize()
}

// change is the net effect of a batch on one key of one table.
type change struct {
	key   string  // encoded key values, for collapsing
	pk    cdc.Row // key columns (view names)
	row   cdc.Row // projected row for upserts; nil for deletes
	del   bool    //
	index int     // index in the batch of the message that made it
}

// plan is the net effect of a batch on one table.
type plan struct {
	table    string
	truncate bool
	order    []string // keys in first-seen order
	changes  map[string]*change
}

// Write applies batch in one transaction together with its offsets.
func (s *Sink) Write(ctx context.Context, batch []cdc.Message) (int, error) {
	plans, idx, err := s.plan(batch)
	if err != nil {
		return idx, err
	}
	if err := s.apply(ctx, plans, batch); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23")) && len(batch) > 1 {
			return s.isolate(ctx, batch)
		}
		if errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23")) {
			return 0, cdc.BadRecord(fmt.Errorf("writing %s[%d]@%d: %w", batch[0].Topic, batch[0].Partition, batch[0].Offset, err))
		}
		return 0, err
	}
	return len(batch), nil
}

// isolate applies the batch one message at a time to find the message the
// database rejects; everything before it is committed.
func (s *Sink) isolate(ctx context.Context, batch []cdc.Message) (int, error) {
	for i := range batch {
		if n, err := s.Write(ctx, batch[i:i+1]); err != nil || n != 1 {
			return i, err
		}
	}
	return len(batch), nil
}

// plan decodes the batch and collapses it to the net change per key.
func (s *Sink) plan(batch []cdc.Message) ([]*plan, int, error) {
	byTable := map[string]*plan{}
	var plans []*plan
	for i := range batch {
		m := &batch[i]
		rec, err := m.Decode()
		if err != nil {
			return nil, i, cdc.BadRecord(err)
		}
		table, err := s.cfg.tableName(&rec)
		if err != nil {
			if !rec.Tombstone {
				return nil, i, cdc.BadRecord(err)
			}
			// A tombstone has no source block: use the topic's last part.
			table = rec.Topic[strings.LastIndexByte(rec.Topic, '.')+1:]
		}
		p := byTable[table]
		if p == nil {
			p = &plan{table: table, changes: map[string]*change{}}
			byTable[table] = p
			plans = append(plans, p)
		}
		if rec.Op == cdc.OpTruncate {
			p.truncate, p.order, p.changes = true, nil, map[string]*change{}
			continue
		}
		c := &change{index: i}
		image := rec.After
		if rec.Tombstone || rec.Op == cdc.OpDelete {
			c.del = true
			image = rec.Before
		}
		c.row = s.cfg.proj.Append(nil, image)
		c.pk, err = s.keyOf(&rec, c.row)
		if err != nil {
			return nil, i, cdc.BadRecord(fmt.Errorf("%s[%d]@%d: %w", m.Topic, m.Partition, m.Offset, err))
		}
		if c.del {
			c.row = nil
		}
		c.key = string(keyText(c.pk))
		if _, seen := p.changes[c.key]; !seen {
			p.order = append(p.order, c.key)
		}
		p.changes[c.key] = c
	}
	return plans, len(batch), nil
}

// keyOf returns the primary-key columns of a record: primary_key's fields
// from the row (or the record key), else the record key's fields renamed
// by the projection.
func (s *Sink) keyOf(rec *cdc.Record, row cdc.Row) (cdc.Row, error) {
	if len(s.cfg.PrimaryKey) > 0 {
		pk := make(cdc.Row, 0, len(s.cfg.PrimaryKey))
		for _, name := range s.cfg.PrimaryKey {
			f, ok := row.Get(name)
			if !ok {
				if f, ok = rec.Key.Get(name); !ok {
					return nil, fmt.Errorf("primary_key field %q is in neither the row nor the key of a record of %s", name, rec.Topic)
				}
			}
			pk = append(pk, cdc.Field{Name: name, Type: f.Type, Value: f.Value})
		}
		return pk, nil
	}
	if len(rec.Key) == 0 {
		return nil, fmt.Errorf("a record of %s has no key; set primary_key to the view's key columns", rec.Topic)
	}
	pk := make(cdc.Row, 0, len(rec.Key))
	for _, f := range rec.Key {
		name, ok := s.cfg.proj.Name(f.Name)
		if !ok {
			name = f.Name // key columns are kept even when not projected
		}
		pk = append(pk, cdc.Field{Name: name, Type: f.Type, Value: f.Value})
	}
	return pk, nil
}

func keyText(pk cdc.Row) []byte {
	var b []byte
	for _, f := range pk {
		t, _, _ := text(&f, "")
		b = append(append(b, t...), 0)
	}
	return b
}

// apply runs the plans and the offsets upsert in one transaction.
func (s *Sink) apply(ctx context.Context, plans []*plan, batch []cdc.Message) (err error) {
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return classify(fmt.Errorf("beginning a transaction: %w", err), err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(ctx)
			s.tables = map[string]*tableInfo{} // DDL may have rolled back
		}
	}()
	for _, p := range plans {
		if err := s.applyPlan(ctx, tx, p); err != nil {
			return err
		}
	}
	if err := s.storeOffsets(ctx, tx, batch); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return classify(fmt.Errorf("committing: %w", err), err)
	}
	return nil
}

func (s *Sink) storeOffsets(ctx context.Context, tx pgx.Tx, batch []cdc.Message) error {
	next := map[cdc.TopicPartition]int64{}
	for _, m := range batch {
		tp := cdc.TopicPartition{Topic: m.Topic, Partition: m.Partition}
		if m.Offset+1 > next[tp] {
			next[tp] = m.Offset + 1
		}
	}
	var topics []string
	var parts []int32
	var offs []int64
	for tp, o := range next {
		topics, parts, offs = append(topics, tp.Topic), append(parts, int32(tp.Partition)), append(offs, o)
	}
	_, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (sink, topic, partition, next_offset)
		SELECT $1, t, p, o FROM unnest($2::text[], $3::int[], $4::bigint[]) AS u(t, p, o)
		ON CONFLICT (sink, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()`,
		s.ident("connectd_offsets")), s.name, topics, parts, offs)
	if err != nil {
		return classify(fmt.Errorf("storing offsets: %w", err), err)
	}
	return nil
}

func (s *Sink) applyPlan(ctx context.Context, tx pgx.Tx, p *plan) error {
	var dels, ups []*change
	for _, k := range p.order {
		c := p.changes[k]
		if c.del {
			dels = append(dels, c)
		} else {
			ups = append(ups, c)
		}
	}
	ti, err := s.ensureTable(ctx, tx, p.table, ups, dels)
	if err != nil {
		return err
	}
	if ti == nil {
		return nil // only deletes for a table that does not exist: nothing to do
	}
	if p.truncate {
		if _, err := tx.Exec(ctx, "TRUNCATE "+s.ident(p.table)); err != nil {
			return classify(fmt.Errorf("truncating %s: %w", p.table, err), err)
		}
	}
	for chunk := range slices.Chunk(dels, s.cfg.BatchSize) {
		if err := s.delete(ctx, tx, p.table, ti, chunk); err != nil {
			return err
		}
	}
	// Rows with the same columns (minus unchanged-TOAST ones) share one
	// statement.
	groups := map[string][]*change{}
	var gorder []string
	for _, c := range ups {
		sig := strings.Join(upsertColumns(c.row, ti), "\x00")
		if _, ok := groups[sig]; !ok {
			gorder = append(gorder, sig)
		}
		groups[sig] = append(groups[sig], c)
	}
	for _, sig := range gorder {
		for chunk := range slices.Chunk(groups[sig], s.cfg.BatchSize) {
			if err := s.upsert(ctx, tx, p.table, ti, strings.Split(sig, "\x00"), chunk); err != nil {
				return err
			}
		}
	}
	return nil
}

// upsertColumns lists the columns an upsert of row writes: the ones it
// has, except unchanged-TOAST values and NULLs of columns the table does
// not have (nothing to store, no type to create them with).
func upsertColumns(row cdc.Row, ti *tableInfo) []string {
	cols := make([]string, 0, len(row))
	for i := range row {
		f := &row[i]
		if f.Unchanged {
			continue
		}
		if _, ok := ti.columns[f.Name]; !ok {
			continue
		}
		cols = append(cols, f.Name)
	}
	return cols
}

func (s *Sink) delete(ctx context.Context, tx pgx.Tx, table string, ti *tableInfo, cs []*change) error {
	args := make([]any, len(ti.pk))
	sel := make([]string, len(ti.pk))
	names := make([]string, len(ti.pk))
	for j, col := range ti.pk {
		vals := make([]*string, len(cs))
		for i, c := range cs {
			f, ok := c.pk.Get(col)
			if !ok {
				return cdc.BadRecord(fmt.Errorf("delete in %s: key column %s missing", table, col))
			}
			t, notNull, err := text(&f, ti.columns[col])
			if err != nil {
				return cdc.BadRecord(err)
			}
			if notNull {
				vals[i] = &t
			}
		}
		args[j] = vals
		sel[j] = fmt.Sprintf("u.c%d::%s", j, ti.columns[col])
		names[j] = pgx.Identifier{col}.Sanitize()
	}
	from := unnestFrom(len(ti.pk))
	var q string
	if s.cfg.soft {
		q = fmt.Sprintf(`UPDATE %s SET "__deleted" = true WHERE (%s) IN (SELECT %s FROM %s)`,
			s.ident(table), strings.Join(names, ", "), strings.Join(sel, ", "), from)
	} else {
		q = fmt.Sprintf(`DELETE FROM %s WHERE (%s) IN (SELECT %s FROM %s)`,
			s.ident(table), strings.Join(names, ", "), strings.Join(sel, ", "), from)
	}
	if _, err := tx.Exec(ctx, q, args...); err != nil {
		return classify(fmt.Errorf("deleting from %s: %w", table, err), err)
	}
	return nil
}

func (s *Sink) upsert(ctx context.Context, tx pgx.Tx, table string, ti *tableInfo, cols []string, cs []*change) error {
	if s.cfg.soft {
		cols = append(slices.Clone(cols), "__deleted")
	}
	args := make([]any, len(cols))
	sel := make([]string, len(cols))
	names := make([]string, len(cols))
	for j, col := range cols {
		vals := make([]*string, len(cs))
		for i, c := range cs {
			if col == "__deleted" {
				f := "false"
				vals[i] = &f
				continue
			}
			f, _ := c.row.Get(col)
			t, notNull, err := text(&f, ti.columns[col])
			if err != nil {
				return cdc.BadRecord(err)
			}
			if notNull {
				vals[i] = &t
			}
		}
		args[j] = vals
		sel[j] = fmt.Sprintf("u.c%d::%s", j, ti.columns[col])
		names[j] = pgx.Identifier{col}.Sanitize()
	}
	var set []string
	for _, col := range cols {
		if !slices.Contains(ti.pk, col) {
			q := pgx.Identifier{col}.Sanitize()
			set = append(set, q+" = EXCLUDED."+q)
		}
	}
	pk := make([]string, len(ti.pk))
	for i, c := range ti.pk {
		pk[i] = pgx.Identifier{c}.Sanitize()
	}
	conflict := "DO NOTHING"
	if len(set) > 0 {
		conflict = "DO UPDATE SET " + strings.Join(set, ", ")
	}
	q := fmt.Sprintf(`INSERT INTO %s (%s) SELECT %s FROM %s ON CONFLICT (%s) %s`,
		s.ident(table), strings.Join(names, ", "), strings.Join(sel, ", "), unnestFrom(len(cols)), strings.Join(pk, ", "), conflict)
	if _, err := tx.Exec(ctx, q, args...); err != nil {
		return classify(fmt.Errorf("upserting into %s: %w", table, err), err)
	}
	return nil
}

// unnestFrom is `unnest($1::text[], …) AS u(c0, …)`.
func unnestFrom(n int) string {
	params := make([]string, n)
	cols := make([]string, n)
	for i := range n {
		params[i] = fmt.Sprintf("$%d::text[]", i+1)
		cols[i] = fmt.Sprintf("c%d", i)
	}
	return fmt.Sprintf("unnest(%s) AS u(%s)", strings.Join(params, ", "), strings.Join(cols, ", "))
}

// classify marks errors retrying cannot fix as terminal: missing
// privileges, bad credentials, a missing database.
func classify(wrapped, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "42501": // insufficient_privilege
			return cdc.Terminal(fmt.Errorf("%w (grant the privilege to the sink's user)", wrapped))
		case pgErr.Code == "28P01" || pgErr.Code == "28000": // bad password, no pg_hba entry
			return cdc.Terminal(wrapped)
		case pgErr.Code == "3D000": // database does not exist
			return cdc.Terminal(wrapped)
		}
	}
	return wrapped
}
