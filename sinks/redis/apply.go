package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/sinks/view"
)

type opKind uint8

const (
	opDelete opKind = iota + 1
	opUpsert
	opStream
)

// op is one planned change to a Redis key.
type op struct {
	kind   opKind
	key    string
	oldKey string  // a key to delete first: the template rendered another key before the update
	row    cdc.Row // hash, json: the projected row after the change
	merge  bool    // json: row holds unchanged-TOAST fields to take from the stored document
	text   []byte  // string: the value
	msg    *cdc.Message
}

// plan decodes chunk into ops, skipping what Redis already holds. It
// stops at the first message that cannot be applied and returns how many
// messages it planned (or skipped) and that message's error, marked
// cdc.BadRecord (the runtime's error policy dead-letters it or stops
// there) and terminal.
func (s *worker) plan(chunk []cdc.Message) ([]op, int, error) {
	ops := s.ops[:0]
	s.rows = s.rows[:0]
	s.text = s.text[:0]
	s.args = s.args[:0] // the previous batch's commands are done
	defer func() { s.ops = ops[:0] }()
	var keyBuf []byte
	for i := range chunk {
		m := &chunk[i]
		if off, ok := s.applied[cdc.TopicPartition{Topic: m.Topic, Partition: m.Partition}]; ok && m.Offset <= off {
			continue
		}
		// The row before the change is only needed when the key template
		// reads row fields: for the key of a delete, or to find the old key
		// of an update.
		rec, err := view.DecodeLean(m, false)
		if err == nil && (rec.Op == cdc.OpDelete || rec.Op == cdc.OpUpdate) && !rec.Tombstone && !s.cfg.tmpl.InRow(rec.Key) {
			rec, err = view.DecodeLean(m, true)
		}
		if err != nil {
			return ops, i, cdc.Terminal(cdc.BadRecord(fmt.Errorf("redis sink %s: %w", s.name, err)))
		}
		switch {
		case rec.Tombstone:
			if s.cfg.Format == FormatStream {
				continue
			}
			k, err := s.cfg.tmpl.Append(keyBuf[:0], m.Topic, rec.Key)
			keyBuf = k
			if err != nil {
				// The key alone cannot name the Redis key: the delete
				// event before this tombstone removed it already.
				continue
			}
			ops = append(ops, op{kind: opDelete, key: string(k)})
			continue
		case rec.Op == cdc.OpTruncate:
			if !s.truncWarned[m.Topic] {
				s.truncWarned[m.Topic] = true
				s.log.Warn("ignoring truncate events: Redis keys do not belong to tables; rebuild the view to forget the rows", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset)
			}
			continue
		}
		rows := []cdc.Row{rec.Key, rec.After, rec.Before}
		if rec.Op == cdc.OpDelete {
			rows = []cdc.Row{rec.Key, rec.Before}
		} else if rec.After == nil {
			return ops, i, s.badRecord(m, "op %q event has no \"after\" row", rec.Op.String())
		}
		k, err := s.cfg.tmpl.Append(keyBuf[:0], m.Topic, rows...)
		keyBuf = k
		if err != nil {
			return ops, i, cdc.Terminal(cdc.BadRecord(fmt.Errorf("redis sink %s: %s[%d]@%d: rendering the key: %w", s.name, m.Topic, m.Partition, m.Offset, err)))
		}
		o := op{key: string(k), msg: m}
		switch {
		case s.cfg.Format == FormatStream:
			o.kind = opStream
		case rec.Op == cdc.OpDelete:
			o.kind = opDelete
		default:
			o.kind = opUpsert
			if rec.Op == cdc.OpUpdate && rec.Before != nil && !s.cfg.tmpl.InRow(rec.Key) {
				if old, err := s.cfg.tmpl.Append(nil, m.Topic, rec.Key, rec.Before); err == nil && string(old) != o.key {
					o.oldKey = string(old)
				}
			}
			if s.cfg.Format == FormatString {
				f, ok := rec.After.Get(s.cfg.ValueField)
				switch {
				case !ok:
					return ops, i, s.badRecord(m, "value_field %q is absent from the row", s.cfg.ValueField)
				case f.Unchanged:
					if o.oldKey == "" {
						continue // the stored value stands
					}
					o.kind = opDelete // the value moved with TOAST: cannot be carried over
					o.key, o.oldKey = o.oldKey, ""
				default:
					start := len(s.text)
					var isText bool
					if s.text, isText = view.AppendText(s.text, f.Value); !isText {
						o.kind = opDelete // NULL: no value, no key
					}
					o.text = s.text[start:len(s.text):len(s.text)]
				}
				break
			}
			start := len(s.rows)
			s.rows = s.cfg.proj.Append(s.rows, rec.After)
			o.row = s.rows[start:len(s.rows):len(s.rows)]
			if s.cfg.Format == FormatJSON {
				for _, f := range o.row {
					if f.Unchanged {
						o.merge = true
						break
					}
				}
			}
		}
		ops = append(ops, o)
	}
	return ops, len(chunk), nil
}

// badRecord returns the error of a message the view cannot take.
func (s *worker) badRecord(m *cdc.Message, format string, args ...any) error {
	return cdc.Terminal(cdc.BadRecord(fmt.Errorf("redis sink %s: %s[%d]@%d: %s", s.name, m.Topic, m.Partition, m.Offset, fmt.Sprintf(format, args...))))
}

// fetchMergeBases reads the stored documents of json upserts that carry
// unchanged-TOAST fields. The sink is the keys' only writer, so reading
// outside the transaction is safe; earlier writes of the same batch are
// applied on top by emit.
func (s *worker) fetchMergeBases(ctx context.Context, ops []op) (map[string]cdc.Row, error) {
	var keys []string
	for i := range ops {
		if ops[i].merge {
			keys = append(keys, ops[i].key)
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	pipe := s.client.Pipeline()
	cmds := make([]*goredis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Get(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != goredis.Nil {
		return nil, fmt.Errorf("reading stored documents to merge unchanged values from %s: %w", s.where(), err)
	}
	base := make(map[string]cdc.Row, len(keys))
	for i, c := range cmds {
		b, err := c.Bytes()
		if err != nil {
			continue // absent: nothing to merge from
		}
		row, err := view.DecodeObject(b)
		if err != nil {
			return nil, cdc.Terminal(fmt.Errorf("key %s holds no JSON document to merge unchanged values into: %w", keys[i], err))
		}
		base[keys[i]] = row
	}
	return base, nil
}

// emit queues the commands of ops on pipe, in order.
func (s *worker) emit(ctx context.Context, pipe goredis.Pipeliner, ops []op, base map[string]cdc.Row) {
	ttl := s.cfg.TTL
	for i := range ops {
		o := &ops[i]
		if o.oldKey != "" {
			pipe.Del(ctx, o.oldKey)
			if base != nil {
				base[o.oldKey] = nil
			}
		}
		switch o.kind {
		case opDelete:
			pipe.Del(ctx, o.key)
			if base != nil {
				base[o.key] = nil
			}
		case opStream:
			pipe.XAdd(ctx, &goredis.XAddArgs{Stream: o.key, Values: []any{"key", o.msg.Key, "value", o.msg.Value}})
			if ttl > 0 {
				pipe.PExpire(ctx, o.key, ttl)
			}
		case opUpsert:
			switch s.cfg.Format {
			case FormatString:
				pipe.Set(ctx, o.key, o.text, ttl)
			case FormatJSON:
				row := o.row
				if o.merge {
					row = merge(row, base[o.key])
				}
				if base != nil {
					base[o.key] = row
				}
				pipe.Set(ctx, o.key, view.AppendObject(nil, row), ttl)
			default:
				s.emitHash(ctx, pipe, o)
			}
		}
	}
}

// emitHash queues HSET of the non-NULL fields and HDEL of the NULL ones;
// unchanged-TOAST fields are left alone. Arguments are cut from one arena
// per batch, field names boxed once.
func (s *worker) emitHash(ctx context.Context, pipe goredis.Pipeliner, o *op) {
	start := len(s.args)
	s.args = append(s.args, "hset", o.key)
	var nulls []any
	for _, f := range o.row {
		if f.Unchanged {
			continue
		}
		name, ok := s.names[f.Name]
		if !ok {
			name = f.Name
			s.names[f.Name] = name
		}
		from := len(s.text)
		var isText bool
		if s.text, isText = view.AppendText(s.text, f.Value); !isText {
			if nulls == nil {
				nulls = []any{"hdel", o.key}
			}
			nulls = append(nulls, name)
			continue
		}
		s.args = append(s.args, name, s.text[from:len(s.text):len(s.text)])
	}
	hset := len(s.args)-start > 2
	if hset {
		pipe.Do(ctx, s.args[start:len(s.args):len(s.args)]...)
	} else {
		s.args = s.args[:start]
	}
	if nulls != nil {
		pipe.Do(ctx, nulls...)
	}
	if s.cfg.TTL > 0 && (hset || nulls != nil) {
		pipe.PExpire(ctx, o.key, s.cfg.TTL)
	}
}

// merge returns row with its unchanged-TOAST fields replaced by the
// stored document's values (dropped when the document lacks them).
func merge(row, stored cdc.Row) cdc.Row {
	out := make(cdc.Row, 0, len(row))
	for _, f := range row {
		if f.Unchanged {
			g, ok := stored.Get(f.Name)
			if !ok || g.Unchanged {
				continue
			}
			f = g
		}
		out = append(out, f)
	}
	return out
}
