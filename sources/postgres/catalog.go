package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// table is a captured table: its columns as the stream (Relation message)
// or the catalog (snapshot) describes them, and its key.
type table struct {
	relid        uint32
	schema, name string
	topic        string
	included     bool
	identity     byte // d default, f full, i index, n nothing
	cols         []column
	key          []int // indexes into cols, in key order
}

func (t *table) qualified() string { return t.schema + "." + t.name }

// catalogColumn is what pg_attribute and pg_index say about a column.
type catalogColumn struct {
	name    string
	oid     uint32
	typmod  int32
	notNull bool
	pkPos   *int32 // position in the primary key
	riPos   *int32 // position in the replica identity index
}

// catalogTable reads a table's columns (those pgoutput publishes: no
// dropped or generated ones), key and replica identity.
func catalogTable(ctx context.Context, conn *pgx.Conn, relid uint32) ([]catalogColumn, byte, error) {
	rows, err := conn.Query(ctx, `
SELECT a.attname::text, a.atttypid, a.atttypmod, a.attnotnull,
  (SELECT array_position(i.indkey::int2[], a.attnum)::int4 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
  (SELECT array_position(i.indkey::int2[], a.attnum)::int4 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident),
  c.relreplident::text
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
WHERE c.oid = $1 ORDER BY a.attnum`, relid)
	if err != nil {
		return nil, 0, fmt.Errorf("reading columns of table %d: %w", relid, err)
	}
	var out []catalogColumn
	var ident string
	for rows.Next() {
		var c catalogColumn
		if err := rows.Scan(&c.name, &c.oid, &c.typmod, &c.notNull, &c.pkPos, &c.riPos, &ident); err != nil {
			rows.Close()
			return nil, 0, fmt.Errorf("reading columns of table %d: %w", relid, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("reading columns of table %d: %w", relid, err)
	}
	var id byte = 'd'
	if ident != "" {
		id = ident[0]
	}
	return out, id, nil
}

// keyOrders assigns each column its 1-based key position: the primary
// key, else the replica identity index; none for a table with neither.
func keyOrders(cols []catalogColumn) map[string]int {
	out := map[string]int{}
	hasPK := slices.ContainsFunc(cols, func(c catalogColumn) bool { return c.pkPos != nil })
	for _, c := range cols {
		p := c.riPos
		if hasPK {
			p = c.pkPos
		}
		if p != nil {
			out[c.name] = int(*p) + 1
		}
	}
	return out
}

// buildKey fills t.key from the columns' key orders.
func (t *table) buildKey() {
	t.key = t.key[:0]
	for i := range t.cols {
		if t.cols[i].keyOrder > 0 {
			t.key = append(t.key, i)
		}
	}
	slices.SortFunc(t.key, func(a, b int) int { return t.cols[a].keyOrder - t.cols[b].keyOrder })
}

// lookupType reads what the catalog knows about a type.
func lookupType(ctx context.Context, conn *pgx.Conn, oid uint32) (*typeInfo, error) {
	var info typeInfo
	var typtype, category string
	err := conn.QueryRow(ctx, `
SELECT t.typname::text, t.typtype::text, t.typcategory::text, t.typbasetype, t.typtypmod, t.typelem,
  ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
FROM pg_type t WHERE t.oid = $1`, oid).Scan(&info.name, &typtype, &category, &info.base, &info.baseMod, &info.elem, &info.labels)
	if err == pgx.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	info.oid = oid
	if typtype != "" {
		info.typtype = typtype[0]
	}
	if category != "" {
		info.category = category[0]
	}
	return &info, nil
}

// quoteIdent quotes a name for SQL.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func quoteLiteral(s string) string {
	return `'` + strings.ReplaceAll(s, `'`, `''`) + `'`
}

// listedTable is a user table found by listTables.
type listedTable struct {
	relid        uint32
	schema, name string
	identity     byte
	hasPK        bool
}

func (t listedTable) qualified() string { return t.schema + "." + t.name }

// listTables returns the ordinary and partitioned user tables, sorted.
func listTables(ctx context.Context, conn *pgx.Conn) ([]listedTable, error) {
	rows, err := conn.Query(ctx, `
SELECT c.oid, n.nspname::text, c.relname::text, c.relreplident::text,
  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
ORDER BY 2, 3`)
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	defer rows.Close()
	var out []listedTable
	for rows.Next() {
		var t listedTable
		var ident string
		if err := rows.Scan(&t.relid, &t.schema, &t.name, &ident, &t.hasPK); err != nil {
			return nil, fmt.Errorf("listing tables: %w", err)
		}
		if ident != "" {
			t.identity = ident[0]
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
