package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/internal/kafkatest"
	"github.com/connectd/connectd/internal/testutil"
	"github.com/connectd/connectd/sinks/file"
	"github.com/connectd/connectd/sources/generator"
)

// proc is a running `connectd run`.
type proc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

func runConnectd(t testing.TB, config string) *proc {
	t.Helper()
	cmd := exec.Command(connectdBin, "run", "-c", config)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stderr: &stderr, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// stop sends sig and waits at most d for the exit, returning the exit code.
func (p *proc) stop(t testing.TB, sig syscall.Signal, d time.Duration) int {
	t.Helper()
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("connectd did not exit within %s after %v; output:\n%s", d, sig, p.stderr)
		return -1
	}
}

func readLines(t *testing.T, path string) []file.Line { return testutil.ReadLines(t, path) }

func countSeqs(lines []file.Line) int {
	seen := map[string]bool{}
	for _, l := range lines {
		if string(l.Value) != "null" {
			var v struct {
				Source struct {
					Seq int64 `json:"seq"`
				} `json:"source"`
			}
			_ = json.Unmarshal(l.Value, &v)
			seen[fmt.Sprint(l.Topic, v.Source.Seq)] = true
		}
	}
	return len(seen)
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	testutil.WaitFor(t, what, d, ok)
}

// TestCrashAndRestartLoseNothing runs generator → Kafka → file sink as the
// connectd binary, stops it with SIGTERM mid-stream, restarts it, kills it
// with SIGKILL mid-stream, restarts it, and then checks the file: every
// generated event at least once, per-key order intact, the final state per
// key equal to the generator's.
//
// "external" runs the broker as its own process (it survives connectd's
// kill -9); "embedded" uses the in-process default, so kill -9 takes the
// broker down too and its data directory must recover.
func TestCrashAndRestartLoseNothing(t *testing.T) {
	for _, mode := range []string{"external", "embedded"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			kafka := ""
			if mode == "external" {
				b := kafkatest.StartProcess(t, connectdBin, filepath.Join(dir, "broker"), "127.0.0.1:0")
				kafka = fmt.Sprintf("kafka: {brokers: [%q], topic_partitions: 4}", b.Addr)
			} else {
				kafka = "kafka: {topic_partitions: 4}"
			}
			const total = 60000
			gcfg := generator.Config{TopicPrefix: "crash", Tables: []string{"inv.items", "inv.orders"}, Keys: 500, Total: total, Rate: 8000, TxnSize: 4}
			out := filepath.Join(dir, "out.jsonl")
			config := filepath.Join(dir, "pipeline.yaml")
			yaml := fmt.Sprintf(`%s
worker: {data_dir: %s/data, http: "off", offset_flush_interval: 200ms}
sources:
  - name: gen
    type: generator
    config: {topic_prefix: crash, tables: [inv.items, inv.orders], keys: 500, total: %d, rate: 8000, txn_size: 4}
sinks:
  - name: out
    type: file
    topics: [crash.inv.items, crash.inv.orders]
    config: {path: %s}
`, kafka, dir, total, out)
			if err := os.WriteFile(config, []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}

			// 1. Run, then SIGTERM mid-stream: clean exit 0 within 10 s.
			p := runConnectd(t, config)
			waitFor(t, "first events in the sink", 30*time.Second, func() bool { return countSeqs(readLines(t, out)) > 10000 })
			start := time.Now()
			if code := p.stop(t, syscall.SIGTERM, 10*time.Second); code != 0 {
				t.Fatalf("SIGTERM exit code %d; output:\n%s", code, p.stderr)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("SIGTERM took %s", d)
			}
			afterTerm := countSeqs(readLines(t, out))
			if afterTerm >= total {
				t.Fatalf("generator finished before the stop (%d events): the test would prove nothing", afterTerm)
			}

			// 2. Restart, then kill -9 mid-stream.
			p = runConnectd(t, config)
			waitFor(t, "progress after restart", 30*time.Second, func() bool { return countSeqs(readLines(t, out)) > afterTerm+15000 })
			p.stop(t, syscall.SIGKILL, 5*time.Second)
			afterKill := countSeqs(readLines(t, out))
			if afterKill >= total {
				t.Fatalf("generator finished before the kill: the test would prove nothing")
			}

			// 3. Restart and let it finish.
			p = runConnectd(t, config)
			waitFor(t, "every event in the sink", 60*time.Second, func() bool { return countSeqs(readLines(t, out)) >= total })
			if code := p.stop(t, syscall.SIGTERM, 10*time.Second); code != 0 {
				t.Fatalf("final SIGTERM exit code %d; output:\n%s", code, p.stderr)
			}

			var want []cdc.Record
			generator.Replay(gcfg, total, func(r cdc.Record) { want = append(want, r) })
			lines := readLines(t, out)
			dups := testutil.CheckAgainstModel(t, lines, want, true)
			t.Logf("%s: %d lines for %d events (%d duplicates from replays after the crash)", mode, len(lines), total, dups)
			if !strings.Contains(p.stderr.String(), "connectd stopped cleanly") {
				t.Errorf("no clean-stop line in output:\n%s", p.stderr)
			}
		})
	}
}

// TestSecondSignalExitsAtOnce stalls the shutdown (the broker is frozen
// with SIGSTOP, so the final flush cannot finish) and checks that a second
// SIGTERM ends connectd immediately with exit code 130, while the first one
// alone would have waited.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := kafkatest.StartProcess(t, connectdBin, filepath.Join(dir, "broker"), "127.0.0.1:0")
	out := filepath.Join(dir, "out.jsonl")
	config := filepath.Join(dir, "pipeline.yaml")
	yaml := fmt.Sprintf(`kafka: {brokers: [%q]}
worker: {data_dir: %s/data, http: "off", shutdown_timeout: 30s}
sources:
  - {name: gen, type: generator, config: {topic_prefix: sig, rate: 2000}}
sinks:
  - {name: out, type: file, topics: [sig.inventory.items], config: {path: %s}}
`, b.Addr, dir, out)
	if err := os.WriteFile(config, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p := runConnectd(t, config)
	waitFor(t, "events flowing", 30*time.Second, func() bool { return len(readLines(t, out)) > 100 })
	b.Pause()
	defer b.Continue()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		t.Fatalf("connectd exited although its broker is frozen; output:\n%s", p.stderr)
	case <-time.After(700 * time.Millisecond):
	}
	start := time.Now()
	code := p.stop(t, syscall.SIGTERM, 3*time.Second)
	if code != 130 {
		t.Fatalf("exit code %d after the second signal, want 130; output:\n%s", code, p.stderr)
	}
	t.Logf("second signal: exited in %s", time.Since(start))
	if !strings.Contains(p.stderr.String(), "second signal: exiting now") {
		t.Errorf("no second-signal log line:\n%s", p.stderr)
	}
}

// TestBrokerRestartMidStream kills the external broker process (kill -9)
// while connectd streams, restarts it on the same data directory and
// address, and checks that connectd recovers by itself and that nothing
// was lost.
func TestBrokerRestartMidStream(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := kafkatest.StartProcess(t, connectdBin, filepath.Join(dir, "broker"), "127.0.0.1:0")
	const total = 30000
	gcfg := generator.Config{TopicPrefix: "brk", Keys: 300, Total: total, Rate: 6000}
	out := filepath.Join(dir, "out.jsonl")
	config := filepath.Join(dir, "pipeline.yaml")
	yaml := fmt.Sprintf(`kafka: {brokers: [%q], topic_partitions: 2}
worker: {data_dir: %s/data, http: "off", offset_flush_interval: 100ms}
sources:
  - {name: gen, type: generator, config: {topic_prefix: brk, keys: 300, total: %d, rate: 6000}}
sinks:
  - {name: out, type: file, topics: [brk.inventory.items], config: {path: %s}}
`, b.Addr, dir, total, out)
	if err := os.WriteFile(config, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p := runConnectd(t, config)
	waitFor(t, "events flowing", 30*time.Second, func() bool { return countSeqs(readLines(t, out)) > 5000 })
	b.Kill()
	time.Sleep(1500 * time.Millisecond)
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every event after the broker restart", 90*time.Second, func() bool { return countSeqs(readLines(t, out)) >= total })
	if code := p.stop(t, syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Fatalf("exit code %d; output:\n%s", code, p.stderr)
	}
	var want []cdc.Record
	generator.Replay(gcfg, total, func(r cdc.Record) { want = append(want, r) })
	dups := testutil.CheckAgainstModel(t, readLines(t, out), want, true)
	t.Logf("broker restart: %d repeated events", dups)
}
