package transforms

import (
	"errors"
	"fmt"

	"github.com/connectd/connectd/cdc"
)

// factory builds a transform from its config mapping, which includes the
// `type` key and the optional `if:` predicate block.
type factory func(cfg cdc.ConfigDecoder) (InPlacer, error)

// InPlacer is implemented by every transform of this package besides
// cdc.Transform: a faster form of Apply for transforms that give at most
// one record per input. ApplyInPlace changes *rec, the caller's own copy
// of the input, into the output, and reports false to drop it. Like Apply
// it never modifies what rec shares with other records (rows are cloned
// before a change, values are never changed), so the caller's input
// records stay intact. After an error *rec may be partly changed: a
// caller that dead-letters the record must keep the original. A runtime
// that finds this method (by type assertion) can run a chain without
// allocating a result slice per transform.
type InPlacer interface {
	ApplyInPlace(rec *cdc.Record) (keep bool, err error)
}

// Factories returns the factory of every transform type, by type name. Each
// call returns a new map.
func Factories() map[string]func(cdc.ConfigDecoder) (cdc.Transform, error) {
	fs := map[string]factory{
		"filter":            newFilter,
		"unwrap":            newUnwrap,
		"insert_field":      newInsertField,
		"replace_field":     newReplaceField,
		"mask_field":        newMaskField,
		"cast":              newCast,
		"timestamp_convert": newTimestampConvert,
		"value_to_key":      newValueToKey,
		"extract_field":     newExtractField,
		"hoist_field":       newHoistField,
		"flatten":           newFlatten,
		"route":             newRoute,
		"timestamp_route":   newTimestampRoute,
		"insert_header":     newInsertHeader,
		"drop_headers":      newDropHeaders,
		"content_route":     newContentRoute,
		"set":               newSet,
		"outbox":            newOutbox,
	}
	out := make(map[string]func(cdc.ConfigDecoder) (cdc.Transform, error), len(fs))
	for name, f := range fs {
		out[name] = withPredicate(name, f)
	}
	return out
}

// Common holds the keys every transform accepts besides its own.
type Common struct {
	// Type is the transform type; the registry has already used it.
	Type string `yaml:"type"`
	// If applies the transform only to records the predicate holds for;
	// the others pass through unchanged.
	If *PredicateConfig `yaml:"if"`
}

// withPredicate wraps f so that the transform it builds runs only when its
// `if:` predicate holds, and so that every error names the transform type.
func withPredicate(name string, f factory) func(cdc.ConfigDecoder) (cdc.Transform, error) {
	return func(dec cdc.ConfigDecoder) (cdc.Transform, error) {
		ip, err := f(dec)
		var c struct {
			Common `yaml:",inline"`
			Rest   map[string]any `yaml:",inline"`
		}
		decErr := dec.Decode(&c)
		var pred *predicate
		if decErr == nil && c.If != nil {
			var perr error
			if pred, perr = newPredicate(dec, c.If); perr != nil {
				err = errors.Join(err, perr)
			}
		}
		if err != nil {
			return nil, err
		}
		var t cdc.Transform = named{name: name, t: ip}
		if pred != nil {
			t = conditional{pred: pred, t: named{name: name, t: ip}}
		}
		return t, nil
	}
}

// named prefixes a transform's errors with its type.
type named struct {
	name string
	t    InPlacer
}

func (n named) Apply(rec cdc.Record) ([]cdc.Record, error) { return apply(n, rec) }

func (n named) ApplyInPlace(rec *cdc.Record) (bool, error) {
	keep, err := n.t.ApplyInPlace(rec)
	if err != nil {
		return false, fmt.Errorf("%s: %w", n.name, err)
	}
	return keep, nil
}

// apply is Apply in terms of ApplyInPlace.
func apply(t InPlacer, rec cdc.Record) ([]cdc.Record, error) {
	out := []cdc.Record{rec}
	keep, err := t.ApplyInPlace(&out[0])
	if err != nil || !keep {
		return nil, err
	}
	return out, nil
}

// conditional applies t when pred holds and passes the record through
// otherwise.
type conditional struct {
	pred *predicate
	t    named
}

func (c conditional) Apply(rec cdc.Record) ([]cdc.Record, error) { return apply(c, rec) }

func (c conditional) ApplyInPlace(rec *cdc.Record) (bool, error) {
	ok, err := c.pred.test(rec)
	if err != nil {
		return false, fmt.Errorf("%s: %w", c.t.name, err)
	}
	if !ok {
		return true, nil
	}
	return c.t.ApplyInPlace(rec)
}

// Target names which part of a record a field transform changes.
type Target string

// The targets of field transforms.
const (
	// TargetValue is the row images: After, and Before when present (so an
	// update or delete stays consistent), or the flat value after unwrap.
	TargetValue Target = "value"
	// TargetKey is the record key.
	TargetKey Target = "key"
)

func checkTarget(dec cdc.ConfigDecoder, t *Target) error {
	switch *t {
	case "":
		*t = TargetValue
	case TargetValue, TargetKey:
	default:
		return dec.Errorf("target", "unknown target %q; want value or key", *t)
	}
	return nil
}

// rowFunc changes one row image; it must not modify its argument in place
// (Clone first) and returns the new row. rec is the record being built:
// only its topic, time, source and Kafka coordinates are meaningful.
type rowFunc func(row cdc.Row, rec *cdc.Record) (cdc.Row, error)

// applyRows applies fn to the rows target designates: the key, or Before
// and After. Tombstones keep their (absent) value; their key is changed
// like any other key so compaction still matches.
func applyRows(r *cdc.Record, target Target, fn rowFunc) error {
	var err error
	if target == TargetKey {
		if r.Key != nil {
			if r.Key, err = fn(r.Key, r); err != nil {
				return fmt.Errorf("key of %s: %w", r.Topic, err)
			}
		}
		return nil
	}
	if r.Tombstone {
		return nil
	}
	if r.Before != nil {
		if r.Before, err = fn(r.Before, r); err != nil {
			return fmt.Errorf("before image of %s: %w", r.Topic, err)
		}
	}
	if r.After != nil {
		if r.After, err = fn(r.After, r); err != nil {
			return fmt.Errorf("%s of %s: %w", afterName(r), r.Topic, err)
		}
	}
	return nil
}

// done is the result of ApplyInPlace for a transform that never drops.
func done(err error) (bool, error) { return err == nil, err }

func afterName(rec *cdc.Record) string {
	if rec.Flat {
		return "value"
	}
	return "after image"
}

// index returns the position of the field named name in row, or -1.
func index(row cdc.Row, name string) int {
	for i := range row {
		if row[i].Name == name {
			return i
		}
	}
	return -1
}

// setField returns row with the field named f.Name replaced by f (in
// place of the old one) or appended. row is cloned first.
func setField(row cdc.Row, f cdc.Field) cdc.Row {
	if i := index(row, f.Name); i >= 0 {
		row = row.Clone()
		row[i] = f
		return row
	}
	out := make(cdc.Row, len(row), len(row)+1)
	copy(out, row)
	return append(out, f)
}

// putField sets f in row, a row the caller owns, replacing the field of
// the same name or appending.
func putField(row cdc.Row, f cdc.Field) cdc.Row {
	if i := index(row, f.Name); i >= 0 {
		row[i] = f
		return row
	}
	return append(row, f)
}

// required reports an empty required key.
func required(dec cdc.ConfigDecoder, key, value, example string) error {
	if value == "" {
		return dec.Errorf(key, "%s is required, e.g. %s", key, example)
	}
	return nil
}

func requiredList(dec cdc.ConfigDecoder, key string, values []string, example string) error {
	if len(values) == 0 {
		return dec.Errorf(key, "%s is required, e.g. %s", key, example)
	}
	for i, v := range values {
		if v == "" {
			return dec.Errorf(key, "%s[%d] is empty", key, i)
		}
	}
	return nil
}
