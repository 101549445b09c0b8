package runtime_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/internal/kafkatest"
	"github.com/connectd/connectd/offsets"
	"github.com/connectd/connectd/runtime"
	"github.com/connectd/connectd/sources/generator"
	"github.com/connectd/connectd/transforms"
)

// TestRealTransformChainOnBothSides runs the transforms package's chain on
// the source side (filter, unwrap, route, set) and on the sink side
// (replace_field), and checks the file sink against the generator model.
func TestRealTransformChainOnBothSides(t *testing.T) {
	t.Parallel()
	b := kafkatest.Start(t, "")
	reg := registry(func(r *runtime.Registry) {
		for name, f := range transforms.Factories() {
			r.Transform(name, f)
		}
	})
	p := pipeline(t, `
worker: {data_dir: $DIR/data, http: "off"}
sources:
  - name: gen
    type: generator
    config: {topic_prefix: tx, keys: 25, total: 800}
    transforms:
      - {type: filter, when: 'record.op == "d" || record.tombstone || record.after.qty != 13'}
      - {type: unwrap, delete_handling: tombstone}
      - {type: route, pattern: 'tx\.inventory\.(.*)', replacement: 'views.$1'}
      - {type: set, field: qty2, expression: 'row.qty * 2'}
sinks:
  - name: out
    type: file
    topics: [views.items]
    config: {path: $DIR/out.jsonl}
    transforms:
      - {type: replace_field, exclude: [payload]}
`)
	store, _ := offsets.OpenFile(filepath.Join(t.TempDir(), "o.json"))
	start(t, p, reg, b.Addr(), store)
	final := map[string]map[string]any{}
	generator.Replay(generator.Config{TopicPrefix: "tx", Keys: 25, Total: 800}, 800, func(r cdc.Record) {
		id := string(mustJSON(r.Key.Value("id")))
		if r.After == nil {
			delete(final, id)
			return
		}
		if r.After.Value("qty").(int64) == 13 {
			return // filtered out: the view keeps the previous image
		}
		final[id] = map[string]any{"name": r.After.Value("name"), "qty": r.After.Value("qty"), "version": r.After.Value("version")}
	})
	out := filepath.Join(filepath.Dir(p.File), "out.jsonl")
	got := map[string]map[string]any{}
	waitFor(t, "the view to match the model", 20*time.Second, func() bool {
		got = map[string]map[string]any{}
		for _, l := range readLines(t, out) {
			if l.Topic != "views.items" {
				t.Fatalf("line on topic %s, want views.items", l.Topic)
			}
			var k struct{ ID json.Number }
			_ = json.Unmarshal(l.Key, &k)
			if string(l.Value) == "null" {
				delete(got, string(k.ID))
				continue
			}
			var v map[string]any
			dec := json.NewDecoder(bytesReader(l.Value))
			dec.UseNumber()
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			if _, ok := v["payload"]; ok {
				t.Fatalf("sink-side replace_field did not drop payload: %s", l.Value)
			}
			if _, ok := v["before"]; ok {
				t.Fatalf("value is not unwrapped: %s", l.Value)
			}
			q, _ := v["qty"].(json.Number).Int64()
			q2, _ := v["qty2"].(json.Number).Int64()
			if q2 != 2*q {
				t.Fatalf("set: qty2 = %d for qty %d", q2, q)
			}
			got[string(k.ID)] = v
		}
		if len(got) != len(final) {
			return false
		}
		for id, want := range final {
			g := got[id]
			if g == nil || g["name"] != want["name"] || string(g["qty"].(json.Number)) != string(mustJSON(want["qty"])) || string(g["version"].(json.Number)) != string(mustJSON(want["version"])) {
				return false
			}
		}
		return true
	})
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
