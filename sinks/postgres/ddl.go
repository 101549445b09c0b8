package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/cdc"
)

// ensureTable returns what the database has for table after creating it
// or evolving it (auto_create, auto_evolve) to hold the rows of ups. It
// returns nil for a missing table that only deletes touch.
func (s *Sink) ensureTable(ctx context.Context, tx pgx.Tx, table string, ups, dels []*change) (*tableInfo, error) {
	ti, err := s.loadTable(ctx, tx, table)
	if err != nil {
		return nil, err
	}
	// The types the rows need, in first-seen column order.
	var order []string
	need := map[string]string{}
	for _, c := range ups {
		for i := range c.row {
			f := &c.row[i]
			if f.Unchanged {
				continue
			}
			typ, ok := pgType(f)
			if !ok {
				continue
			}
			if _, seen := need[f.Name]; !seen {
				order = append(order, f.Name)
				need[f.Name] = typ
				continue
			}
			if w, ok := widen(need[f.Name], typ); ok {
				need[f.Name] = w
			}
		}
	}
	if !ti.exists {
		if len(ups) == 0 {
			return nil, nil
		}
		if !s.cfg.autoCreate {
			return nil, cdc.Terminal(fmt.Errorf("table %s.%s does not exist and auto_create is false: create it, or set auto_create: true", s.cfg.Schema, table))
		}
		return s.createTable(ctx, tx, table, ups[0].pk, order, need)
	}
	if len(ti.pk) == 0 {
		return nil, cdc.Terminal(fmt.Errorf("table %s.%s has no primary key; the sink upserts by key: add one (primary_key: %v)", s.cfg.Schema, table, pkNames(ups, dels)))
	}
	var ddl []string
	for _, col := range order {
		want := need[col]
		have, ok := ti.columns[col]
		if !ok {
			if !s.cfg.autoEvolve {
				return nil, cdc.Terminal(fmt.Errorf("table %s.%s has no column %s (%s) and auto_evolve is false: add the column, drop the field from the view (exclude_fields), or set auto_evolve: true", s.cfg.Schema, table, col, want))
			}
			ddl = append(ddl, fmt.Sprintf("ADD COLUMN IF NOT EXISTS %s %s", pgx.Identifier{col}.Sanitize(), want))
			ti.columns[col] = want
			continue
		}
		to, compatible := widen(have, want)
		switch {
		case want == "text" || (want == "jsonb" && have == "json") || (compatible && to == have):
			// the server's cast decides, value by value
		case !compatible:
			return nil, cdc.Terminal(fmt.Errorf("table %s.%s column %s is %s but the events now carry %s: an incompatible change; migrate the column or rebuild the view", s.cfg.Schema, table, col, have, want))
		case !s.cfg.autoEvolve:
			return nil, cdc.Terminal(fmt.Errorf("table %s.%s column %s is %s and must widen to %s, but auto_evolve is false", s.cfg.Schema, table, col, have, to))
		default:
			q := pgx.Identifier{col}.Sanitize()
			ddl = append(ddl, fmt.Sprintf("ALTER COLUMN %s TYPE %s USING %s::%s", q, to, q, to))
			ti.columns[col] = to
		}
	}
	if s.cfg.soft {
		if _, ok := ti.columns["__deleted"]; !ok {
			ddl = append(ddl, `ADD COLUMN IF NOT EXISTS "__deleted" boolean NOT NULL DEFAULT false`)
			ti.columns["__deleted"] = "boolean"
		}
	}
	if len(ddl) > 0 {
		q := fmt.Sprintf("ALTER TABLE %s %s", s.ident(table), strings.Join(ddl, ", "))
		if _, err := tx.Exec(ctx, q); err != nil {
			return nil, classify(fmt.Errorf("evolving %s.%s: %w", s.cfg.Schema, table, err), err)
		}
		s.log.Info("evolved view table", "table", s.cfg.Schema+"."+table, "ddl", strings.Join(ddl, ", "))
	}
	return ti, nil
}

func pkNames(cs ...[]*change) []string {
	for _, l := range cs {
		if len(l) > 0 {
			return l[0].pk.Names()
		}
	}
	return nil
}

func (s *Sink) createTable(ctx context.Context, tx pgx.Tx, table string, pk cdc.Row, order []string, need map[string]string) (*tableInfo, error) {
	ti := &tableInfo{exists: true, columns: map[string]string{}}
	var defs []string
	for _, f := range pk {
		if _, ok := need[f.Name]; ok {
			continue
		}
		typ, ok := pgType(&f)
		if !ok {
			typ = "text"
		}
		order = append([]string{f.Name}, order...)
		need[f.Name] = typ
	}
	for _, col := range order {
		defs = append(defs, pgx.Identifier{col}.Sanitize()+" "+need[col])
		ti.columns[col] = need[col]
	}
	if s.cfg.soft {
		defs = append(defs, `"__deleted" boolean NOT NULL DEFAULT false`)
		ti.columns["__deleted"] = "boolean"
	}
	var pkq []string
	for _, f := range pk {
		pkq = append(pkq, pgx.Identifier{f.Name}.Sanitize())
		ti.pk = append(ti.pk, f.Name)
	}
	q := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s, PRIMARY KEY (%s))", s.ident(table), strings.Join(defs, ", "), strings.Join(pkq, ", "))
	if _, err := tx.Exec(ctx, q); err != nil {
		return nil, classify(fmt.Errorf("creating %s.%s: %w", s.cfg.Schema, table, err), err)
	}
	s.log.Info("created view table", "table", s.cfg.Schema+"."+table, "columns", len(defs), "primary_key", strings.Join(ti.pk, ","))
	s.tables[table] = ti
	return ti, nil
}

// loadTable reads a table's columns and primary key (cached).
func (s *Sink) loadTable(ctx context.Context, tx pgx.Tx, table string) (*tableInfo, error) {
	if ti, ok := s.tables[table]; ok {
		return ti, nil
	}
	ti := &tableInfo{columns: map[string]string{}}
	rows, err := tx.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod),
			coalesce(a.attnum = ANY(i.indkey), false)
		FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
		WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attnum`, s.cfg.Schema, table)
	if err != nil {
		return nil, classify(fmt.Errorf("reading the shape of %s.%s: %w", s.cfg.Schema, table, err), err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, typ string
		var isPK bool
		if err := rows.Scan(&name, &typ, &isPK); err != nil {
			return nil, fmt.Errorf("reading the shape of %s.%s: %w", s.cfg.Schema, table, err)
		}
		ti.exists = true
		ti.columns[name] = baseType(typ)
		if isPK {
			ti.pk = append(ti.pk, name)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the shape of %s.%s: %w", s.cfg.Schema, table, err)
	}
	if ti.exists {
		s.tables[table] = ti
	}
	return ti, nil
}

// baseType maps format_type's output to the names the sink compares and
// casts with.
func baseType(t string) string {
	if i := strings.IndexByte(t, '('); i >= 0 && !strings.Contains(t, "time") {
		t = t[:i]
	}
	switch {
	case strings.HasPrefix(t, "timestamp") && strings.HasSuffix(t, "with time zone") && !strings.Contains(t, "without"):
		return "timestamptz"
	case strings.HasPrefix(t, "timestamp"):
		return "timestamp"
	case strings.HasPrefix(t, "time") && strings.Contains(t, "with time zone") && !strings.Contains(t, "without"):
		return "timetz"
	case strings.HasPrefix(t, "time"):
		return "time"
	case t == "character varying":
		return "varchar"
	case t == "character":
		return "bpchar"
	}
	return t
}
