package transforms

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/connectd/connectd/cdc"
)

// OutboxConfig configures outbox, Debezium's outbox event router
// (EventRouter): rows inserted into an outbox table become events on
// business topics.
//
//	transforms:
//	  - type: outbox
//	    id_column: id                       # → header "id"
//	    key_column: aggregateid             # → the key {"aggregateid": …}
//	    route_by_column: aggregatetype      # → the topic
//	    type_column: type                   # → header "type"
//	    payload_column: payload             # → the value
//	    topic_replacement: "outbox.event.{routedByValue}"
//
// Every column name above is the default. For each insert (op c, or r
// from a snapshot) the event goes to topic_replacement with
// {routedByValue} replaced by the route_by_column value (Debezium's
// ${routedByValue} works too, written $${routedByValue} in a config file
// since ${…} there is environment interpolation), keyed by the
// key_column value, with headers id and type (as text). The value is the
// payload expanded to a flat JSON object: a JSON text (string or bytes,
// e.g. a json/jsonb column) must hold an object, a struct or map is taken
// as it is; a null payload gives a tombstone for the key; anything else is
// an error naming the column. Deletes (applications usually delete outbox
// rows right after inserting them), their tombstones, updates and
// truncates carry no event and are dropped, as Debezium does. Missing
// columns are errors.
//
// Keys and values are JSON objects in connectd, so the key is
// {"aggregateid":"…"} (named after key_column) rather than Debezium's bare
// string, and the payload is expanded (Debezium's expand.json.payload)
// rather than sent as an escaped JSON string.
type OutboxConfig struct {
	Common           `yaml:",inline"`
	IDColumn         string `yaml:"id_column"`
	KeyColumn        string `yaml:"key_column"`
	RouteByColumn    string `yaml:"route_by_column"`
	TypeColumn       string `yaml:"type_column"`
	PayloadColumn    string `yaml:"payload_column"`
	TopicReplacement string `yaml:"topic_replacement"`
}

type outbox struct{ c OutboxConfig }

func newOutbox(dec cdc.ConfigDecoder) (InPlacer, error) {
	var c OutboxConfig
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.IDColumn, "id")
	def(&c.KeyColumn, "aggregateid")
	def(&c.RouteByColumn, "aggregatetype")
	def(&c.TypeColumn, "type")
	def(&c.PayloadColumn, "payload")
	def(&c.TopicReplacement, "outbox.event.{routedByValue}")
	return &outbox{c: c}, nil
}

func (o *outbox) ApplyInPlace(rec *cdc.Record) (bool, error) {
	if rec.Tombstone || rec.Flat || (rec.Op != cdc.OpCreate && rec.Op != cdc.OpRead) || rec.After == nil {
		return false, nil
	}
	row := rec.After
	col := func(name string) (cdc.Field, error) {
		f, ok := row.Get(name)
		if !ok {
			return f, errorf("%s: outbox row has no column %s", rec.Topic, name)
		}
		return f, nil
	}
	var errs []error
	id, err := col(o.c.IDColumn)
	errs = append(errs, err)
	key, err := col(o.c.KeyColumn)
	errs = append(errs, err)
	routeBy, err := col(o.c.RouteByColumn)
	errs = append(errs, err)
	typ, err := col(o.c.TypeColumn)
	errs = append(errs, err)
	payload, err := col(o.c.PayloadColumn)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return false, err
	}
	if routeBy.Value == nil || text(routeBy.Value) == "" {
		return false, errorf("%s: outbox column %s is empty: no topic to route to", rec.Topic, o.c.RouteByColumn)
	}
	out := cdc.Record{
		Topic:       expand(o.c.TopicReplacement, "routedByValue", text(routeBy.Value)),
		Op:          rec.Op,
		Key:         cdc.Row{{Name: o.c.KeyColumn, Type: key.Type, Value: key.Value}},
		Source:      rec.Source,
		Time:        rec.Time,
		Transaction: rec.Transaction,
		Position:    rec.Position,
		Kafka:       rec.Kafka,
		Flat:        true,
	}
	out.Headers = make([]cdc.Header, len(rec.Headers), len(rec.Headers)+2)
	copy(out.Headers, rec.Headers)
	out.Headers = append(out.Headers, cdc.Header{Key: "id", Value: []byte(text(id.Value))}, cdc.Header{Key: "type", Value: []byte(text(typ.Value))})
	switch v := payload.Value.(type) {
	case nil:
		out.Tombstone = true
	case cdc.Row:
		out.After = v
	case map[string]any:
		out.After = rowOfMap(v)
	case string:
		out.After, err = parseObject([]byte(v))
	case []byte:
		out.After, err = parseObject(v)
	case json.RawMessage:
		out.After, err = parseObject(v)
	default:
		err = fmt.Errorf("a %s", kindOf(payload))
	}
	if err != nil {
		return false, errorf("%s: outbox column %s is not a JSON object: %v", rec.Topic, o.c.PayloadColumn, err)
	}
	*rec = out
	return true, nil
}

// parseObject decodes a JSON object into a row, keeping member order.
// Values are as a sink decodes them: json.Number, string, bool, nil, []any
// and map[string]any.
func parseObject(b []byte) (cdc.Row, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("found %v", tok)
	}
	row := cdc.Row{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("member %s: %w", name, err)
		}
		row = append(row, cdc.Field{Name: name, Value: v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("trailing data after the object")
	}
	return row, nil
}
