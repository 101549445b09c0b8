package transforms

import (
	"strings"
	"testing"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/sources/generator"
)

// benchChain is issue 8's benchmark chain.
const benchChain = `type: filter
when: 'record.op == "d" || record.after.status != "discontinued"'
---
type: unwrap
delete_handling: tombstone
---
type: replace_field
exclude: [payload]
rename: {name: title}
---
type: route
pattern: 'load\.(.*)'
replacement: 'views.$1'
---
type: set
field: label
expression: 'row.title + ":" + row.status'`

func benchRecords(b *testing.B) []cdc.Record {
	b.Helper()
	var recs []cdc.Record
	generator.Replay(generator.Config{TopicPrefix: "load", Tables: []string{"app.items", "app.orders"}, Keys: 1000, Seed: 1, TxnSize: 1, BatchSize: 1000, PayloadBytes: 120},
		10000, func(r cdc.Record) { recs = append(recs, r) })
	return recs
}

func buildChain(b *testing.B, yml string) []cdc.Transform {
	b.Helper()
	t := &testing.T{}
	var chain []cdc.Transform
	for _, part := range splitDocs(yml) {
		tr, err := build(t, part)
		if err != nil {
			b.Fatal(err)
		}
		chain = append(chain, tr)
	}
	return chain
}

func splitDocs(s string) []string {
	var out []string
	start := 0
	for i := 0; i+5 <= len(s); i++ {
		if s[i:i+5] == "\n---\n" {
			out = append(out, s[start:i])
			start = i + 5
		}
	}
	return append(out, s[start:])
}

// BenchmarkChain measures what the source task does per record: add the
// tombstone after a delete, run the chain, encode key and value. "none" is
// the same without transforms; "Apply" runs the chain through
// cdc.Transform.Apply as the runtime does, "ApplyInPlace" through the
// InPlacer fast path.
func BenchmarkChain(b *testing.B) {
	recs := benchRecords(b)
	chain := buildChain(b, benchChain)
	b.Run("none", func(b *testing.B) { runChain(b, recs, nil, false) })
	b.Run("filter+unwrap+replace_field+route+set/Apply", func(b *testing.B) { runChain(b, recs, chain, false) })
	b.Run("filter+unwrap+replace_field+route+set/ApplyInPlace", func(b *testing.B) { runChain(b, recs, chain, true) })
}

func runChain(b *testing.B, recs []cdc.Record, ts []cdc.Transform, inPlace bool) {
	var buf []byte
	var cur, next []cdc.Record
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := recs[i%len(recs)]
		cur = append(cur[:0], r)
		if r.Op == cdc.OpDelete {
			cur = append(cur, cdc.Record{Topic: r.Topic, Key: r.Key, Tombstone: true, Op: cdc.OpDelete, Source: r.Source})
		}
		for _, t := range ts {
			next = next[:0]
			for j := range cur {
				if inPlace {
					keep, err := t.(InPlacer).ApplyInPlace(&cur[j])
					if err != nil {
						b.Fatal(err)
					}
					if keep {
						next = append(next, cur[j])
					}
					continue
				}
				o, err := t.Apply(cur[j])
				if err != nil {
					b.Fatal(err)
				}
				next = append(next, o...)
			}
			cur, next = next, cur
		}
		for j := range cur {
			var err error
			if buf, err = cdc.AppendKey(buf[:0], &cur[j]); err != nil {
				b.Fatal(err)
			}
			if buf, err = cdc.AppendValue(buf[:0], &cur[j]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// TestChainOnGeneratorRecords runs the benchmark chain over generator
// records and checks the shape of everything it emits.
func TestChainOnGeneratorRecords(t *testing.T) {
	t.Parallel()
	var chain []cdc.Transform
	for _, part := range splitDocs(benchChain) {
		chain = append(chain, mustBuild(t, part))
	}
	var recs []cdc.Record
	generator.Replay(generator.Config{TopicPrefix: "load", Tables: []string{"app.items"}, Keys: 50, Seed: 1, TxnSize: 1, BatchSize: 100, PayloadBytes: 20},
		2000, func(r cdc.Record) { recs = append(recs, r) })
	var deletes, tombstones, kept int
	for _, r := range recs {
		in := []cdc.Record{r}
		if r.Op == cdc.OpDelete {
			deletes++
			in = append(in, cdc.Record{Topic: r.Topic, Key: r.Key, Tombstone: true, Op: cdc.OpDelete})
		}
		for _, tr := range chain {
			var next []cdc.Record
			for _, x := range in {
				out, err := tr.Apply(x)
				if err != nil {
					t.Fatalf("%s: %v", summary(x), err)
				}
				next = append(next, out...)
			}
			in = next
		}
		for _, o := range in {
			if o.Topic != "views.app.items" {
				t.Fatalf("topic %s", o.Topic)
			}
			if o.Tombstone {
				tombstones++
				continue
			}
			kept++
			label, _ := o.After.Get("label")
			title, _ := o.After.Get("title")
			if !o.Flat || o.Before != nil || label.Value != title.Value.(string)+":"+o.After.Value("status").(string) {
				t.Fatalf("output %s", summary(o))
			}
			if _, ok := o.After.Get("payload"); ok {
				t.Fatalf("payload not excluded: %s", summary(o))
			}
		}
	}
	if deletes == 0 || tombstones != deletes || kept == 0 {
		t.Errorf("deletes %d, tombstones %d, kept %d; want one tombstone per delete", deletes, tombstones, kept)
	}
}

// TestConcurrentUse runs one chain from several goroutines: transforms are
// safe for concurrent use and give what a single goroutine gets.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	var chain []cdc.Transform
	for _, part := range splitDocs(benchChain) {
		chain = append(chain, mustBuild(t, part))
	}
	var recs []cdc.Record
	generator.Replay(generator.Config{TopicPrefix: "load", Tables: []string{"app.items"}, Keys: 20, Seed: 3, TxnSize: 1, BatchSize: 100, PayloadBytes: 10},
		300, func(r cdc.Record) { recs = append(recs, r) })
	run := func() []string {
		var out []string
		for _, r := range recs {
			in := []cdc.Record{r}
			for _, tr := range chain {
				var next []cdc.Record
				for _, x := range in {
					o, err := tr.Apply(x)
					if err != nil {
						t.Error(err)
						return nil
					}
					next = append(next, o...)
				}
				in = next
			}
			out = append(out, summaries(in)...)
		}
		return out
	}
	want := strings.Join(run(), "\n")
	done := make(chan string)
	for range 4 {
		go func() { done <- strings.Join(run(), "\n") }()
	}
	for range 4 {
		if got := <-done; got != want {
			t.Errorf("concurrent run differs from the sequential one")
		}
	}
}
