package transforms

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"

	"github.com/connectd/connectd/cdc"
)

// program is a compiled CEL expression with its source text, safe for
// concurrent use.
type program struct {
	text string
	prg  cel.Program
}

// newEnv returns the CEL environment of every expression: the variable
// record, plus row when withRow is set (the row image a set transform
// writes).
func newEnv(withRow bool) (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.CustomTypeAdapter(adapter{}),
		cel.Variable("record", cel.MapType(cel.StringType, cel.DynType)),
		cel.OptionalTypes(),
		ext.Strings(),
	}
	if withRow {
		opts = append(opts, cel.Variable("row", cel.MapType(cel.StringType, cel.DynType)))
	}
	return cel.NewEnv(opts...)
}

// compile compiles text, checking that its result can be of type want (nil
// accepts any). Problems are config errors at key.
func compile(dec cdc.ConfigDecoder, key, text string, withRow bool, want *cel.Type) (*program, error) {
	if strings.TrimSpace(text) == "" {
		return nil, dec.Errorf(key, "%s is required: a CEL expression over record", key)
	}
	env, err := newEnv(withRow)
	if err != nil {
		return nil, fmt.Errorf("building the CEL environment: %w", err)
	}
	ast, iss := env.Compile(text)
	if iss != nil && iss.Err() != nil {
		return nil, dec.Errorf(key, "%v", iss.Err())
	}
	if want != nil {
		out := ast.OutputType()
		if !out.IsExactType(cel.DynType) && !out.IsAssignableType(want) {
			return nil, dec.Errorf(key, "expression has type %s; want %s", out, want)
		}
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, dec.Errorf(key, "%v", err)
	}
	return &program{text: text, prg: prg}, nil
}

// eval evaluates p on rec (and row, for set). rec should already be on
// the heap (the caller's output slice): the expression holds a pointer to
// it, so a local record would be copied there.
func (p *program) eval(rec *cdc.Record, row *cdc.Row) (ref.Val, error) {
	var act interpreter.Activation = recordVal{rec: rec}
	if row != nil {
		act = &rowActivation{rec: rec, row: *row}
	}
	out, _, err := p.prg.Eval(act)
	if err != nil {
		return nil, fmt.Errorf("%w: evaluating %q: %w", ErrBadValue, p.text, err)
	}
	return out, nil
}

// recordVal is also the activation of most expressions: it binds record.
// Values are converted only when an expression reads them.
func (r recordVal) ResolveName(name string) (any, bool) {
	if name == "record" {
		return r, true
	}
	return nil, false
}

func (r recordVal) Parent() interpreter.Activation { return nil }

// rowActivation binds record and row (set's expressions).
type rowActivation struct {
	rec *cdc.Record
	row cdc.Row
}

func (a *rowActivation) ResolveName(name string) (any, bool) {
	switch name {
	case "record":
		return recordVal{rec: a.rec}, true
	case "row":
		if a.row == nil {
			return types.NullValue, true
		}
		return rowVal{row: &a.row}, true
	}
	return nil, false
}

func (a *rowActivation) Parent() interpreter.Activation { return nil }

// adapter converts connectd values to CEL values: int64 → int, uint64 →
// uint, json.Number → int when it is an int64 and double otherwise, Row and
// map[string]any → map, []any → list. Decimal strings stay strings.
type adapter struct{}

func (adapter) NativeToValue(v any) ref.Val {
	switch v := v.(type) {
	case ref.Val:
		return v
	case nil:
		return types.NullValue
	case string:
		return types.String(v)
	case int64:
		return types.Int(v)
	case uint64:
		return types.Uint(v)
	case float64:
		return types.Double(v)
	case bool:
		return types.Bool(v)
	case []byte:
		return types.Bytes(v)
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return types.Int(i)
		}
		if f, err := strconv.ParseFloat(string(v), 64); err == nil {
			return types.Double(f)
		}
		return types.String(v)
	case cdc.Row:
		return rowVal{row: &v}
	case map[string]any:
		return types.NewStringInterfaceMap(adapter{}, v)
	case []any:
		return types.NewDynamicList(adapter{}, v)
	case int:
		return types.Int(v)
	case int32:
		return types.Int(v)
	case uint32:
		return types.Uint(v)
	case float32:
		return types.Double(v)
	}
	return types.DefaultTypeAdapter.NativeToValue(v)
}

// fieldValue is the CEL view of a field: unchanged (unavailable) values
// read as Debezium's placeholder string, as on the wire.
func fieldValue(f *cdc.Field) ref.Val {
	if f.Unchanged {
		return types.String(cdc.UnavailableValue)
	}
	return adapter{}.NativeToValue(f.Value)
}

// lazyMap is the part of a read-only CEL map implemented once over a
// lookup: keys lists the keys in order, find converts one value.
type lazyMap interface {
	ref.Val
	keys() []string
	find(key string) (ref.Val, bool)
}

func materialize(m lazyMap) traits.Mapper {
	native := make(map[string]any, len(m.keys()))
	for _, k := range m.keys() {
		native[k], _ = m.find(k)
	}
	return types.NewStringInterfaceMap(adapter{}, native)
}

func mapFind(m lazyMap, key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return nil, false
	}
	return m.find(string(k))
}

func mapGet(m lazyMap, key ref.Val) ref.Val {
	if v, ok := mapFind(m, key); ok {
		return v
	}
	return types.NewErr("no such key: %v", key)
}

func mapConvertToType(m lazyMap, t ref.Type) ref.Val {
	switch t {
	case types.MapType:
		return m
	case types.TypeType:
		return types.MapType
	}
	return types.NewErr("type conversion error from map to %s", t.TypeName())
}

// rowVal is a Row seen as a CEL map from column name to value. It holds a
// pointer so that it fits an interface without an allocation.
type rowVal struct{ row *cdc.Row }

func (r rowVal) keys() []string { return r.row.Names() }
func (r rowVal) find(key string) (ref.Val, bool) {
	row := *r.row
	for i := range row {
		if row[i].Name == key {
			return fieldValue(&row[i]), true
		}
	}
	return nil, false
}
func (r rowVal) ConvertToNative(t reflect.Type) (any, error) {
	return materialize(r).ConvertToNative(t)
}
func (r rowVal) ConvertToType(t ref.Type) ref.Val { return mapConvertToType(r, t) }
func (r rowVal) Equal(o ref.Val) ref.Val          { return materialize(r).Equal(o) }
func (r rowVal) Type() ref.Type                   { return types.MapType }
func (r rowVal) Value() any                       { return *r.row }
func (r rowVal) Contains(k ref.Val) ref.Val {
	_, ok := mapFind(r, k)
	return types.Bool(ok)
}
func (r rowVal) Get(k ref.Val) ref.Val          { return mapGet(r, k) }
func (r rowVal) Iterator() traits.Iterator      { return iterate(r) }
func (r rowVal) Size() ref.Val                  { return types.Int(len(*r.row)) }
func (r rowVal) Find(k ref.Val) (ref.Val, bool) { return mapFind(r, k) }

func iterate(m lazyMap) traits.Iterator {
	return types.NewStringList(adapter{}, m.keys()).(traits.Lister).Iterator()
}

// recordKeys are the members of the CEL variable record.
var recordKeys = []string{"topic", "op", "key", "before", "after", "source", "headers", "ts_ms", "tombstone"}

// recordVal is a Record seen as the CEL map record.
type recordVal struct{ rec *cdc.Record }

func (r recordVal) keys() []string { return recordKeys }
func (r recordVal) find(key string) (ref.Val, bool) {
	rec := r.rec
	row := func(x *cdc.Row) ref.Val {
		if *x == nil {
			return types.NullValue
		}
		return rowVal{row: x}
	}
	switch key {
	case "topic":
		return types.String(rec.Topic), true
	case "op":
		return opVal(rec.Op), true
	case "key":
		return row(&rec.Key), true
	case "before":
		if rec.Tombstone {
			return types.NullValue, true
		}
		return row(&rec.Before), true
	case "after":
		if rec.Tombstone {
			return types.NullValue, true
		}
		return row(&rec.After), true
	case "source":
		return types.NewStringInterfaceMap(adapter{}, sourceMap(&rec.Source)), true
	case "headers":
		h := make(map[string]string, len(rec.Headers))
		for _, x := range rec.Headers {
			h[x.Key] = string(x.Value)
		}
		return types.NewStringStringMap(adapter{}, h), true
	case "ts_ms":
		return types.Int(millis(rec)), true
	case "tombstone":
		return types.Bool(rec.Tombstone), true
	}
	return nil, false
}
func (r recordVal) ConvertToNative(t reflect.Type) (any, error) {
	return materialize(r).ConvertToNative(t)
}
func (r recordVal) ConvertToType(t ref.Type) ref.Val { return mapConvertToType(r, t) }
func (r recordVal) Equal(o ref.Val) ref.Val          { return materialize(r).Equal(o) }
func (r recordVal) Type() ref.Type                   { return types.MapType }
func (r recordVal) Value() any                       { return r.rec }
func (r recordVal) Contains(k ref.Val) ref.Val       { _, ok := mapFind(r, k); return types.Bool(ok) }
func (r recordVal) Get(k ref.Val) ref.Val            { return mapGet(r, k) }
func (r recordVal) Iterator() traits.Iterator        { return iterate(r) }
func (r recordVal) Size() ref.Val                    { return types.Int(len(recordKeys)) }
func (r recordVal) Find(k ref.Val) (ref.Val, bool)   { return mapFind(r, k) }

// The CEL values of the ops, made once so that reading record.op does not
// allocate. Read-only.
var (
	opC, opU, opD, opR, opT, opNone ref.Val = types.String("c"), types.String("u"), types.String("d"), types.String("r"), types.String("t"), types.String("")
)

func opVal(op cdc.Op) ref.Val {
	switch op {
	case cdc.OpCreate:
		return opC
	case cdc.OpUpdate:
		return opU
	case cdc.OpDelete:
		return opD
	case cdc.OpRead:
		return opR
	case cdc.OpTruncate:
		return opT
	}
	return opNone
}

// opString is the Debezium letter of rec's op ("" for none).
func opString(rec *cdc.Record) string {
	if rec.Op.Valid() {
		return rec.Op.String()
	}
	return ""
}

// millis is the envelope's ts_ms of rec.
func millis(rec *cdc.Record) int64 {
	if rec.Time.IsZero() {
		return 0
	}
	return rec.Time.UnixMilli()
}

// sourceMap is the source block as it is encoded: common fields, then the
// connector-specific ones.
func sourceMap(s *cdc.SourceInfo) map[string]any {
	snapshot := s.Snapshot
	if snapshot == "" {
		snapshot = "false"
	}
	m := map[string]any{
		"version": s.Version, "connector": s.Connector, "name": s.Name, "ts_ms": s.TsMs,
		"snapshot": snapshot, "db": s.DB, "table": s.Table,
	}
	if s.Sequence != "" {
		m["sequence"] = s.Sequence
	} else {
		m["sequence"] = nil
	}
	if s.Schema != "" {
		m["schema"] = s.Schema
	}
	for i := range s.Extra {
		m[s.Extra[i].Name] = s.Extra[i].Value
	}
	return m
}

// sourceField returns the source block's field name as sourceMap has it.
func sourceField(s *cdc.SourceInfo, name string) (any, bool) {
	switch name {
	case "version":
		return s.Version, true
	case "connector":
		return s.Connector, true
	case "name":
		return s.Name, true
	case "ts_ms":
		return s.TsMs, true
	case "snapshot":
		if s.Snapshot == "" {
			return "false", true
		}
		return s.Snapshot, true
	case "db":
		return s.DB, true
	case "table":
		return s.Table, true
	case "schema":
		return s.Schema, s.Schema != ""
	case "sequence":
		if s.Sequence == "" {
			return nil, true
		}
		return s.Sequence, true
	}
	f, ok := s.Extra.Get(name)
	return f.Value, ok
}

// toNative converts a CEL result to a connectd value: int → int64, uint →
// uint64, double → float64, map → map[string]any, list → []any; a row read
// from the record stays a Row at the top level.
func toNative(v ref.Val) (any, error) { return native(v, false) }

func native(v ref.Val, nested bool) (any, error) {
	switch v := v.(type) {
	case types.Null:
		return nil, nil
	case types.Int:
		return int64(v), nil
	case types.Uint:
		return uint64(v), nil
	case types.Double:
		return float64(v), nil
	case types.String:
		return string(v), nil
	case types.Bool:
		return bool(v), nil
	case types.Bytes:
		return []byte(v), nil
	case rowVal:
		if !nested {
			return *v.row, nil
		}
	case *types.Err:
		return nil, v
	}
	switch v := v.(type) {
	case traits.Mapper:
		m := map[string]any{}
		it := v.Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			ks, ok := k.(types.String)
			if !ok {
				return nil, fmt.Errorf("map key %v is not a string", k)
			}
			x, err := native(v.Get(k), true)
			if err != nil {
				return nil, err
			}
			m[string(ks)] = x
		}
		return m, nil
	case traits.Lister:
		out := []any{}
		it := v.Iterator()
		for it.HasNext() == types.True {
			x, err := native(it.Next(), true)
			if err != nil {
				return nil, err
			}
			out = append(out, x)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported result type %s", v.Type().TypeName())
}
