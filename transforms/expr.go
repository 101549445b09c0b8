package transforms

import (
	"errors"
	"fmt"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"

	"github.com/connectd/connectd/cdc"
)

// FilterConfig configures filter, Debezium's Filter SMT with CEL instead of
// a JSR 223 script:
//
//	transforms:
//	  - type: filter
//	    when: 'record.op != "d" && record.after.status != "deleted"'
//	    null_handling: keep          # tombstones: keep (default) | drop | evaluate
//
// Records for which `when` is true are kept, the others dropped. An
// expression that fails on a record (a missing key, a field of a null
// image) is an error, not a drop. Tombstones, which have no value to test,
// are kept, dropped or evaluated as null_handling says, as Debezium's
// null.handling.mode does.
type FilterConfig struct {
	Common       `yaml:",inline"`
	When         string `yaml:"when"`
	NullHandling string `yaml:"null_handling"`
}

type filter struct {
	when         *program
	nullHandling string
}

func newFilter(dec cdc.ConfigDecoder) (InPlacer, error) {
	var c FilterConfig
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	var errs []error
	switch c.NullHandling {
	case "":
		c.NullHandling = "keep"
	case "keep", "drop", "evaluate":
	default:
		errs = append(errs, dec.Errorf("null_handling", "unknown null_handling %q; want keep, drop or evaluate", c.NullHandling))
	}
	prg, err := compile(dec, "when", c.When, false, cel.BoolType)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &filter{when: prg, nullHandling: c.NullHandling}, nil
}

func (f *filter) ApplyInPlace(rec *cdc.Record) (bool, error) {
	if rec.Tombstone {
		switch f.nullHandling {
		case "keep":
			return true, nil
		case "drop":
			return false, nil
		}
	}
	v, err := f.when.eval(rec, nil)
	if err != nil {
		return false, err
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, errorf("%q returned %s, not a bool", f.when.text, v.Type().TypeName())
	}
	return bool(b), nil
}

// ContentRouteConfig configures content_route, Debezium's content-based
// router with CEL:
//
//	transforms:
//	  - type: content_route
//	    expression: 'record.after.region == "eu" ? "orders-eu" : "orders-other"'
//
// The expression gives the record's new topic. null leaves the topic
// unchanged; an empty string or a non-string result is an error.
type ContentRouteConfig struct {
	Common     `yaml:",inline"`
	Expression string `yaml:"expression"`
}

type contentRoute struct{ expr *program }

func newContentRoute(dec cdc.ConfigDecoder) (InPlacer, error) {
	var c ContentRouteConfig
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	prg, err := compile(dec, "expression", c.Expression, false, nil)
	if err != nil {
		return nil, err
	}
	return &contentRoute{expr: prg}, nil
}

func (r *contentRoute) ApplyInPlace(rec *cdc.Record) (bool, error) {
	v, err := r.expr.eval(rec, nil)
	if err != nil {
		return false, err
	}
	switch v := v.(type) {
	case types.Null:
		return true, nil
	case types.String:
		if v == "" {
			return false, errorf("%q returned an empty topic", r.expr.text)
		}
		rec.Topic = string(v)
		return true, nil
	}
	return false, errorf("%q returned %s, not a topic string", r.expr.text, v.Type().TypeName())
}

// SetConfig configures set, which stores the result of a CEL expression in
// a field:
//
//	transforms:
//	  - type: set
//	    field: full_name
//	    expression: 'row.first_name + " " + row.last_name'
//	    target: value                # value (default) | key
//
// Besides record, the expression sees row: the row image being written.
// With target value the expression runs once for each image (Before and
// After, or the flat value after unwrap), so an update's before image gets
// the value computed from the old row. An existing field is replaced in
// place; a new one is appended. Tombstones pass through. Results convert
// back as int → int64, uint → uint64, double → float64, map → a row (keys
// sorted), list → []any.
type SetConfig struct {
	Common     `yaml:",inline"`
	Field      string `yaml:"field"`
	Expression string `yaml:"expression"`
	Target     Target `yaml:"target"`
}

type set struct {
	field  string
	expr   *program
	target Target
}

func newSet(dec cdc.ConfigDecoder) (InPlacer, error) {
	var c SetConfig
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	errs := []error{required(dec, "field", c.Field, "field: full_name"), checkTarget(dec, &c.Target)}
	prg, err := compile(dec, "expression", c.Expression, true, nil)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &set{field: c.Field, expr: prg, target: c.Target}, nil
}

func (s *set) ApplyInPlace(r *cdc.Record) (bool, error) {
	// Every image is computed from the input record before any changes.
	if s.target == TargetKey {
		if r.Key == nil {
			return true, nil
		}
		k, err := s.compute(r, r.Key)
		if err != nil {
			return false, fmt.Errorf("key of %s: %w", r.Topic, err)
		}
		r.Key = k
		return true, nil
	}
	if r.Tombstone {
		return true, nil
	}
	var before, after cdc.Row
	var err error
	if r.Before != nil {
		if before, err = s.compute(r, r.Before); err != nil {
			return false, fmt.Errorf("before image of %s: %w", r.Topic, err)
		}
	}
	if r.After != nil {
		if after, err = s.compute(r, r.After); err != nil {
			return false, fmt.Errorf("%s of %s: %w", afterName(r), r.Topic, err)
		}
	}
	r.Before, r.After = before, after
	return true, nil
}

func (s *set) compute(rec *cdc.Record, row cdc.Row) (cdc.Row, error) {
	v, err := s.expr.eval(rec, &row)
	if err != nil {
		return nil, err
	}
	x, err := toNative(v)
	if err != nil {
		return nil, errorf("%q: %v", s.expr.text, err)
	}
	return setField(row, cdc.Field{Name: s.field, Type: typeOf(x), Value: x}), nil
}

// typeOf infers the column type of a computed value; nil when unknown.
// The types returned are shared and must not be modified.
func typeOf(v any) *cdc.Type {
	switch v.(type) {
	case string:
		return stringType
	case int64, uint64:
		return int64Type
	case float64:
		return float64Type
	case bool:
		return booleanType
	case []byte:
		return bytesType
	case cdc.Row:
		return structType
	case []any:
		return arrayType
	case map[string]any:
		return mapType
	}
	return nil
}

// Shared column types of computed values. Read-only.
var (
	float64Type = &cdc.Type{Kind: cdc.KindFloat64}
	booleanType = &cdc.Type{Kind: cdc.KindBoolean}
	bytesType   = &cdc.Type{Kind: cdc.KindBytes}
	arrayType   = &cdc.Type{Kind: cdc.KindArray}
	mapType     = &cdc.Type{Kind: cdc.KindMap}
)
