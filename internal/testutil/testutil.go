// Package testutil holds helpers shared by connectd's tests: waiting for a
// condition, reading a file sink's output, and checking delivered events
// against the generator's model.
package testutil

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/sinks/file"
)

// WaitFor polls ok every 20 ms until it returns true, failing the test
// after d.
func WaitFor(t testing.TB, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ReadLines reads a file sink's output. A last line cut short (kill -9
// during a write) ends the read; every line before it must be whole.
func ReadLines(t testing.TB, path string) []file.Line {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []file.Line
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var l file.Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			break
		}
		out = append(out, l)
	}
	return out
}

// CheckAgainstModel verifies a file sink's lines against the events a
// source was expected to produce (want, in source order, each carrying a
// "seq" field in its source block, as the generator's do): every event
// present; per key, after dropping repeats, exactly the expected order; a
// repeat only ever goes back to an event already delivered (a replay after
// a crash); a tombstone right after every delete; the final state per key
// equal to the expected one. With dups false any repeat fails the test. It
// returns the number of repeated events.
func CheckAgainstModel(t testing.TB, lines []file.Line, want []cdc.Record, dups bool) int {
	t.Helper()
	wantByKey := map[string][]int64{}
	final := map[string]string{}
	for _, r := range want {
		k, _ := cdc.AppendKey(nil, &r)
		key := r.Topic + string(k)
		seq, _ := r.Source.Extra.Value("seq").(int64)
		wantByKey[key] = append(wantByKey[key], seq)
		final[key] = afterJSON(r.After)
	}
	gotByKey := map[string][]int64{}
	gotFinal := map[string]string{}
	lastOp := map[string]string{}
	for i, l := range lines {
		key := l.Topic + string(l.Key)
		if string(l.Value) == "null" {
			if lastOp[key] != "d" {
				t.Fatalf("line %d: tombstone for %s does not follow its delete", i, key)
			}
			continue
		}
		m := cdc.Message{Topic: l.Topic, Key: l.Key, Value: l.Value}
		rec, err := m.Decode()
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		seq, _ := rec.Source.Extra.Value("seq").(json.Number).Int64()
		gotByKey[key] = append(gotByKey[key], seq)
		lastOp[key] = rec.Op.String()
		gotFinal[key] = afterJSON(rec.After)
	}
	repeats := 0
	for key, seqs := range wantByKey {
		var firsts []int64
		seen := map[int64]bool{}
		last := int64(-1)
		for _, s := range gotByKey[key] {
			if seen[s] {
				if !dups {
					t.Fatalf("key %s: event %d delivered twice", key, s)
				}
				repeats++
				last = s
				continue
			}
			if s < last {
				t.Fatalf("key %s: new event %d after %d: order broken", key, s, last)
			}
			seen[s] = true
			firsts = append(firsts, s)
			last = s
		}
		if fmt.Sprint(firsts) != fmt.Sprint(seqs) {
			t.Fatalf("key %s: delivered events %v, want %v", key, firsts, seqs)
		}
		if gotFinal[key] != final[key] {
			t.Fatalf("key %s: final state %s, want %s", key, gotFinal[key], final[key])
		}
	}
	return repeats
}

// afterJSON renders a row image for comparison ("" for none).
func afterJSON(r cdc.Row) string {
	if r == nil {
		return ""
	}
	b, _ := cdc.AppendValue(nil, &cdc.Record{Op: cdc.OpRead, After: r})
	return string(b)
}
