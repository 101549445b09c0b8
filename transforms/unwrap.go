package transforms

import (
	"errors"
	"strings"

	"github.com/connectd/connectd/cdc"
)

// UnwrapConfig configures unwrap, Debezium's ExtractNewRecordState (event
// flattening):
//
//	transforms:
//	  - type: unwrap
//	    delete_handling: tombstone   # tombstone (default) | drop | rewrite
//	    drop_tombstones: true        # default true
//	    add_fields: [op, table, source.ts_ms]   # → __op, __table, __source_ts_ms
//	    add_headers: [db]                       # → header __db
//	    add_fields_prefix: "__"
//	    add_headers_prefix: "__"
//
// The record's value becomes the row after the change, a flat object
// instead of the envelope: the output has Flat set, After holds the row,
// Before is cleared, and Op, Source, Key, Headers and Time are kept so that
// later transforms, predicates and expressions can still read them.
//
// Deletes: drop removes them; tombstone turns each into a tombstone (null
// value, same key); rewrite keeps them as the before image with the field
// __deleted set to "true" (and every other record gets __deleted "false").
// Tombstones (the runtime adds one after each delete, before transforms
// run) are dropped unless drop_tombstones is false. So the defaults emit
// exactly one tombstone per delete, and views downstream forget the row.
// (Debezium's default is drop, which leaves deleted rows in every view;
// write delete_handling: drop to get it.)
//
// add_fields appends change-event metadata to the value, add_headers adds
// it as headers (values as text): op and ts_ms are the envelope's, any
// other name is a field of the source block, with or without the "source."
// prefix (table, db, ts_ms, lsn, file, pos, …). The field name is the
// prefix followed by the name with dots turned into underscores. A source
// field the record lacks gives null.
//
// Truncate events, which carry no row, and records already flat pass
// through unchanged.
type UnwrapConfig struct {
	Common           `yaml:",inline"`
	DeleteHandling   string   `yaml:"delete_handling"`
	DropTombstones   *bool    `yaml:"drop_tombstones"`
	AddFields        []string `yaml:"add_fields"`
	AddHeaders       []string `yaml:"add_headers"`
	AddFieldsPrefix  *string  `yaml:"add_fields_prefix"`
	AddHeadersPrefix *string  `yaml:"add_headers_prefix"`
}

type unwrap struct {
	deleteHandling string
	dropTombstones bool
	fields         []meta
	headers        []meta
}

// meta is one add_fields or add_headers entry.
type meta struct {
	name string // output field or header name
	path string // "op", "ts_ms" or "source.<field>"
}

func newUnwrap(dec cdc.ConfigDecoder) (InPlacer, error) {
	var c UnwrapConfig
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	var errs []error
	switch c.DeleteHandling {
	case "":
		c.DeleteHandling = "tombstone"
	case "drop", "tombstone", "rewrite":
	default:
		errs = append(errs, dec.Errorf("delete_handling", "unknown delete_handling %q; want drop, tombstone or rewrite", c.DeleteHandling))
	}
	u := &unwrap{deleteHandling: c.DeleteHandling, dropTombstones: c.DropTombstones == nil || *c.DropTombstones}
	fp, hp := "__", "__"
	if c.AddFieldsPrefix != nil {
		fp = *c.AddFieldsPrefix
	}
	if c.AddHeadersPrefix != nil {
		hp = *c.AddHeadersPrefix
	}
	var err error
	if u.fields, err = metas(dec, "add_fields", c.AddFields, fp); err != nil {
		errs = append(errs, err)
	}
	if u.headers, err = metas(dec, "add_headers", c.AddHeaders, hp); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return u, nil
}

func metas(dec cdc.ConfigDecoder, key string, names []string, prefix string) ([]meta, error) {
	var out []meta
	for i, n := range names {
		n = strings.TrimSpace(n)
		if n == "" || n == "source." {
			return nil, dec.Errorf(key, "%s[%d] is empty; use op, ts_ms or a source field such as table or source.ts_ms", key, i)
		}
		path := n
		if n != "op" && n != "ts_ms" && !strings.HasPrefix(n, "source.") {
			path = "source." + n
		}
		out = append(out, meta{name: prefix + strings.ReplaceAll(n, ".", "_"), path: path})
	}
	return out, nil
}

func (m meta) value(rec *cdc.Record) any {
	switch m.path {
	case "op":
		return opString(rec)
	case "ts_ms":
		return millis(rec)
	}
	v, _ := sourceField(&rec.Source, strings.TrimPrefix(m.path, "source."))
	return v
}

var deletedType = &cdc.Type{Kind: cdc.KindString, Optional: true}

func (u *unwrap) ApplyInPlace(rec *cdc.Record) (bool, error) {
	switch {
	case rec.Tombstone:
		if u.dropTombstones {
			return false, nil
		}
		return true, nil
	case rec.Flat || rec.Op == cdc.OpTruncate:
		return true, nil
	}
	row := rec.After
	deleted := "false"
	if rec.Op == cdc.OpDelete || rec.After == nil {
		switch u.deleteHandling {
		case "drop":
			return false, nil
		case "tombstone":
			*rec = cdc.Record{Topic: rec.Topic, Op: cdc.OpDelete, Key: rec.Key, Source: rec.Source, Time: rec.Time,
				Headers: u.withHeaders(rec), Tombstone: true, Position: rec.Position, Kafka: rec.Kafka}
			return true, nil
		}
		row, deleted = rec.Before, "true"
	}
	n := len(u.fields)
	if u.deleteHandling == "rewrite" {
		n++
	}
	if n > 0 {
		out := make(cdc.Row, len(row), len(row)+n)
		copy(out, row)
		for _, m := range u.fields {
			v := m.value(rec)
			out = putField(out, cdc.Field{Name: m.name, Value: v, Type: typeOf(v)})
		}
		if u.deleteHandling == "rewrite" {
			out = putField(out, cdc.Field{Name: "__deleted", Type: deletedType, Value: deleted})
		}
		row = out
	}
	rec.Headers = u.withHeaders(rec)
	rec.Flat, rec.Before, rec.After = true, nil, row
	if rec.After == nil {
		rec.After = cdc.Row{}
	}
	return true, nil
}

// withHeaders returns rec's headers plus the add_headers ones, in a new
// slice when there are any.
func (u *unwrap) withHeaders(rec *cdc.Record) []cdc.Header {
	if len(u.headers) == 0 {
		return rec.Headers
	}
	h := make([]cdc.Header, len(rec.Headers), len(rec.Headers)+len(u.headers))
	copy(h, rec.Headers)
	for _, m := range u.headers {
		h = append(h, cdc.Header{Key: m.name, Value: []byte(text(m.value(rec)))})
	}
	return h
}
