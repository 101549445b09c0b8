package mysql

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/connectd/connectd/cdc"
)

// table is a captured table's shape: columns in ordinal order and the
// primary key's column indexes (empty for a keyless table).
type table struct {
	db, name, topic string
	cols            []column
	pk              []int
	// tm is the table map event this shape was built from (stream only).
	tm *replication.TableMapEvent
}

func (t *table) String() string { return t.db + "." + t.name }

// key builds the record key from converted row values.
func (t *table) key(row cdc.Row) cdc.Row {
	if len(t.pk) == 0 {
		return nil
	}
	k := make(cdc.Row, len(t.pk))
	for i, c := range t.pk {
		k[i] = row[c]
	}
	return k
}

// sameMap reports whether tm describes the same columns as the map t was
// built from, so t can be reused for a new table map event.
func (t *table) sameMap(tm *replication.TableMapEvent) bool {
	o := t.tm
	if o == nil || o.ColumnCount != tm.ColumnCount || !bytes.Equal(o.ColumnType, tm.ColumnType) ||
		len(o.ColumnName) != len(tm.ColumnName) || !bytes.Equal(o.NullBitmap, tm.NullBitmap) ||
		!bytes.Equal(o.SignednessBitmap, tm.SignednessBitmap) || !bytes.Equal(o.Schema, tm.Schema) || !bytes.Equal(o.Table, tm.Table) {
		return false
	}
	for i := range o.ColumnMeta {
		if o.ColumnMeta[i] != tm.ColumnMeta[i] {
			return false
		}
	}
	for i := range o.ColumnName {
		if !bytes.Equal(o.ColumnName[i], tm.ColumnName[i]) {
			return false
		}
	}
	return sameValues(o.EnumStrValue, tm.EnumStrValue) && sameValues(o.SetStrValue, tm.SetStrValue) &&
		sameUints(o.DefaultCharset, tm.DefaultCharset) && sameUints(o.ColumnCharset, tm.ColumnCharset) &&
		sameUints(o.PrimaryKey, tm.PrimaryKey)
}

func sameValues(a, b [][][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			if !bytes.Equal(a[i][j], b[i][j]) {
				return false
			}
		}
	}
	return true
}

func sameUints(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// tableFromMap builds a table's shape from a table map event with full row
// metadata (binlog_row_metadata=FULL).
func tableFromMap(tm *replication.TableMapEvent, prefix, decimalMode string) (*table, error) {
	t := &table{db: string(tm.Schema), name: string(tm.Table), tm: tm}
	t.topic = prefix + "." + t.db + "." + t.name
	if len(tm.ColumnName) != int(tm.ColumnCount) {
		return nil, cdc.Terminal(fmt.Errorf("%w: table map of %s has no column names (source: binlog table map): the server logs minimal row metadata; set binlog_row_metadata=FULL (schema tracking from DDL is not implemented)", ErrSchema, t))
	}
	unsigned := tm.UnsignedMap()
	collations := tm.CollationMap()
	enums := tm.EnumStrValueMap()
	sets := tm.SetStrValueMap()
	names := tm.ColumnNameString()
	t.cols = make([]column, tm.ColumnCount)
	for i := range t.cols {
		c := &t.cols[i]
		c.name = names[i]
		_, c.nullable = tm.Nullable(i)
		c.unsigned = unsigned[i]
		typ, meta := tm.ColumnType[i], tm.ColumnMeta[i]
		length := 0
		if typ == gomysql.MYSQL_TYPE_STRING {
			if meta >= 256 {
				b0, b1 := uint8(meta>>8), uint8(meta&0xFF)
				if b0&0x30 != 0x30 {
					length = int(uint16(b1) | uint16((b0&0x30)^0x30)<<4)
					typ = b0 | 0x30
				} else {
					length = int(meta & 0xFF)
					typ = b0
				}
			} else {
				length = int(meta)
			}
		}
		coll, hasColl := collations[i]
		binaryCS := hasColl && coll == binaryCollation
		c.latin1 = hasColl && latin1Collations[coll]
		switch typ {
		case gomysql.MYSQL_TYPE_TINY:
			c.cls, c.bits, c.sourceType = clsInt, 8, "TINYINT"
		case gomysql.MYSQL_TYPE_SHORT:
			c.cls, c.bits, c.sourceType = clsInt, 16, "SMALLINT"
		case gomysql.MYSQL_TYPE_INT24:
			c.cls, c.bits, c.sourceType = clsInt, 24, "MEDIUMINT"
		case gomysql.MYSQL_TYPE_LONG:
			c.cls, c.bits, c.sourceType = clsInt, 32, "INT"
		case gomysql.MYSQL_TYPE_LONGLONG:
			c.cls, c.bits, c.sourceType = clsInt, 64, "BIGINT"
		case gomysql.MYSQL_TYPE_NEWDECIMAL:
			c.cls, c.precision, c.scale = clsDecimal, int(meta>>8), int(meta&0xFF)
			c.sourceType = fmt.Sprintf("DECIMAL(%d,%d)", c.precision, c.scale)
		case gomysql.MYSQL_TYPE_FLOAT:
			c.cls, c.sourceType = clsFloat32, "FLOAT"
		case gomysql.MYSQL_TYPE_DOUBLE:
			c.cls, c.sourceType = clsFloat64, "DOUBLE"
		case gomysql.MYSQL_TYPE_BIT:
			c.bits = int(meta>>8)*8 + int(meta&0xFF)
			c.cls, c.sourceType = clsBits, fmt.Sprintf("BIT(%d)", c.bits)
			if c.bits == 1 {
				c.cls = clsBool
			}
		case gomysql.MYSQL_TYPE_TIMESTAMP, gomysql.MYSQL_TYPE_TIMESTAMP2:
			c.cls, c.sourceType = clsTimestamp, "TIMESTAMP"
			if typ == gomysql.MYSQL_TYPE_TIMESTAMP2 {
				c.fsp = int(meta)
			}
		case gomysql.MYSQL_TYPE_DATETIME, gomysql.MYSQL_TYPE_DATETIME2:
			c.cls, c.sourceType = clsDatetime, "DATETIME"
			if typ == gomysql.MYSQL_TYPE_DATETIME2 {
				c.fsp = int(meta)
			}
		case gomysql.MYSQL_TYPE_TIME, gomysql.MYSQL_TYPE_TIME2:
			c.cls, c.sourceType = clsTime, "TIME"
			if typ == gomysql.MYSQL_TYPE_TIME2 {
				c.fsp = int(meta)
			}
		case gomysql.MYSQL_TYPE_DATE, gomysql.MYSQL_TYPE_NEWDATE:
			c.cls, c.sourceType = clsDate, "DATE"
		case gomysql.MYSQL_TYPE_YEAR:
			c.cls, c.sourceType = clsYear, "YEAR"
		case gomysql.MYSQL_TYPE_ENUM:
			c.cls, c.values, c.sourceType = clsEnum, enums[i], "ENUM"
		case gomysql.MYSQL_TYPE_SET:
			c.cls, c.values, c.sourceType = clsSet, sets[i], "SET"
		case gomysql.MYSQL_TYPE_BLOB:
			c.cls, c.sourceType = clsText, "TEXT"
			if binaryCS {
				c.cls, c.sourceType = clsBytes, "BLOB"
			}
		case gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING:
			c.cls, c.sourceType = clsText, "VARCHAR"
			if binaryCS {
				c.cls, c.sourceType = clsBytes, "VARBINARY"
			}
		case gomysql.MYSQL_TYPE_STRING:
			c.cls, c.sourceType = clsText, "CHAR"
			if binaryCS {
				c.cls, c.padTo, c.sourceType = clsBytes, length, fmt.Sprintf("BINARY(%d)", length)
			}
		case gomysql.MYSQL_TYPE_JSON:
			c.cls, c.sourceType = clsJSON, "JSON"
		case gomysql.MYSQL_TYPE_GEOMETRY:
			c.cls, c.sourceType = clsGeometry, "GEOMETRY"
		default:
			return nil, cdc.Terminal(fmt.Errorf("%w: %s.%s has binlog column type %d, which connectd does not support (source: binlog table map)", ErrSchema, t, c.name, typ))
		}
		if c.unsigned {
			c.sourceType += " UNSIGNED"
		}
		c.buildType(decimalMode)
	}
	for _, k := range tm.PrimaryKey {
		t.pk = append(t.pk, int(k))
	}
	return t, nil
}

// loadTable reads a table's shape from information_schema (snapshot).
func loadTable(conn *client.Conn, db, name, prefix, decimalMode string) (*table, error) {
	r, err := conn.Execute(`SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE,
		COALESCE(NUMERIC_PRECISION,0), COALESCE(NUMERIC_SCALE,0), COALESCE(DATETIME_PRECISION,0),
		COALESCE(CHARACTER_OCTET_LENGTH,0)
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, db, name)
	if err != nil {
		return nil, fmt.Errorf("reading columns of %s.%s: %w", db, name, err)
	}
	t := &table{db: db, name: name, topic: prefix + "." + db + "." + name}
	byName := map[string]int{}
	for i := range r.Values {
		str := func(j int) string { s, _ := r.GetString(i, j); return s }
		num := func(j int) int { n, _ := r.GetInt(i, j); return int(n) }
		c := column{name: str(0), nullable: str(3) == "YES"}
		dataType, colType := strings.ToLower(str(1)), strings.ToLower(str(2))
		c.unsigned = strings.Contains(colType, "unsigned")
		c.sourceType = strings.ToUpper(colType)
		switch dataType {
		case "tinyint":
			c.cls, c.bits = clsInt, 8
		case "smallint":
			c.cls, c.bits = clsInt, 16
		case "mediumint":
			c.cls, c.bits = clsInt, 24
		case "int", "integer":
			c.cls, c.bits = clsInt, 32
		case "bigint":
			c.cls, c.bits = clsInt, 64
		case "decimal", "numeric":
			c.cls, c.precision, c.scale = clsDecimal, num(4), num(5)
		case "float":
			c.cls = clsFloat32
		case "double", "real", "double precision":
			c.cls = clsFloat64
		case "bit":
			c.cls, c.bits = clsBits, num(4)
			if c.bits == 1 {
				c.cls = clsBool
			}
		case "date":
			c.cls = clsDate
		case "time":
			c.cls, c.fsp = clsTime, num(6)
		case "datetime":
			c.cls, c.fsp = clsDatetime, num(6)
		case "timestamp":
			c.cls, c.fsp = clsTimestamp, num(6)
		case "year":
			c.cls = clsYear
		case "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
			c.cls = clsText
		case "binary":
			c.cls, c.padTo = clsBytes, num(7)
		case "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
			c.cls = clsBytes
		case "enum":
			c.cls, c.values = clsEnum, parseMembers(str(2))
		case "set":
			c.cls, c.values = clsSet, parseMembers(str(2))
		case "json":
			c.cls = clsJSON
		case "uuid":
			c.cls = clsUUID
		case "inet6":
			c.cls = clsInet6
		case "inet4":
			c.cls = clsInet4
		case "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection":
			c.cls = clsGeometry
		default:
			return nil, cdc.Terminal(fmt.Errorf("%w: %s.%s.%s has type %s, which connectd does not support (source: information_schema)", ErrSchema, db, name, c.name, colType))
		}
		c.buildType(decimalMode)
		byName[c.name] = len(t.cols)
		t.cols = append(t.cols, c)
	}
	if len(t.cols) == 0 {
		return nil, fmt.Errorf("reading columns of %s.%s: table not found or no SELECT privilege on it", db, name)
	}
	r, err = conn.Execute(`SELECT COLUMN_NAME FROM information_schema.STATISTICS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`, db, name)
	if err != nil {
		return nil, fmt.Errorf("reading primary key of %s.%s: %w", db, name, err)
	}
	for i := range r.Values {
		s, _ := r.GetString(i, 0)
		t.pk = append(t.pk, byName[s])
	}
	return t, nil
}

// parseMembers reads the members of "enum('a','b”c')" or "set(...)".
func parseMembers(colType string) []string {
	open := strings.IndexByte(colType, '(')
	if open < 0 {
		return nil
	}
	s := colType[open+1:]
	var out []string
	for {
		i := strings.IndexByte(s, '\'')
		if i < 0 {
			return out
		}
		s = s[i+1:]
		var sb strings.Builder
		for len(s) > 0 {
			if s[0] == '\'' {
				if len(s) > 1 && s[1] == '\'' {
					sb.WriteByte('\'')
					s = s[2:]
					continue
				}
				s = s[1:]
				break
			}
			if s[0] == '\\' && len(s) > 1 {
				sb.WriteByte(s[1])
				s = s[2:]
				continue
			}
			sb.WriteByte(s[0])
			s = s[1:]
		}
		out = append(out, sb.String())
	}
}

// quoteIdent quotes a MySQL identifier.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

var _ = strconv.Itoa

// refineFixedBinary asks information_schema which BINARY(16) / BINARY(4)
// columns of a streamed MariaDB table are really UUID, INET6 or INET4: the
// table map cannot tell them apart. It reads the current schema, so it is
// right unless such a column was retyped after the row was written.
func refineFixedBinary(conn *client.Conn, t *table, decimalMode string) error {
	need := false
	for i := range t.cols {
		if c := &t.cols[i]; c.cls == clsBytes && (c.padTo == 16 || c.padTo == 4) {
			need = true
		}
	}
	if !need {
		return nil
	}
	r, err := conn.Execute(`SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND DATA_TYPE IN ('uuid','inet6','inet4')`, t.db, t.name)
	if err != nil {
		return fmt.Errorf("reading UUID/INET column types of %s: %w", t, err)
	}
	for i := range r.Values {
		name, _ := r.GetString(i, 0)
		typ, _ := r.GetString(i, 1)
		for j := range t.cols {
			c := &t.cols[j]
			if c.name != name || c.cls != clsBytes {
				continue
			}
			switch {
			case typ == "uuid" && c.padTo == 16:
				c.cls = clsUUID
			case typ == "inet6" && c.padTo == 16:
				c.cls = clsInet6
			case typ == "inet4" && c.padTo == 4:
				c.cls = clsInet4
			default:
				continue
			}
			c.padTo = 0
			c.sourceType = strings.ToUpper(typ)
			c.buildType(decimalMode)
		}
	}
	return nil
}
