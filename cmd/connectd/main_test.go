package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEveryExampleValidates(t *testing.T) {
	examples, _ := filepath.Glob("../../configs/examples/*.yaml")
	if len(examples) == 0 {
		t.Fatal("no examples found under configs/examples")
	}
	for _, ex := range examples {
		t.Run(filepath.Base(ex), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run([]string{"validate", "-c", ex}, &out, &errOut); code != 0 {
				t.Fatalf("exit %d:\n%s", code, errOut.String())
			}
			if !strings.Contains(out.String(), ": ok (") {
				t.Fatalf("stdout = %q", out.String())
			}
		})
	}
}

func TestValidatePrintsEveryProblemAndExits2(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	bad := `kafka:
  topic_partitions: three
sources:
  - name: gen
    type: generatr
sinks:
  - name: gen
    type: file
    topics: [x]
    config: {paht: /tmp/x}
`
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := run([]string{"validate", "-c", path}, &out, &errOut)
	if code != 2 {
		t.Fatalf("exit %d, want 2; stderr:\n%s", code, errOut.String())
	}
	got := errOut.String()
	for _, want := range []string{
		path + `:2:21: kafka.topic_partitions: cannot use "three" as an integer`,
		path + `:5:11: sources[0].type: unknown source type "generatr"`,
		path + `:7:11: sinks[0].name: duplicate name "gen": sources[0] at line 4 already uses it`,
		path + `:10:14: sinks[0].config.paht: unknown key "paht"; did you mean "path"?`,
		"4 problem(s) found",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("stderr lacks %q:\n%s", want, got)
		}
	}
}

func TestValidateReportsConnectorProblemsWithPositions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	bad := `sources:
  - name: gen
    type: generatr
sinks:
  - name: out
    type: file
    topics: [x]
    config: {paht: /tmp/x}
`
	_ = os.WriteFile(path, []byte(bad), 0o644)
	var out, errOut bytes.Buffer
	if code := run([]string{"validate", "-c", path}, &out, &errOut); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	for _, want := range []string{
		path + `:3:11: sources[0].type: unknown source type "generatr"; known source types: generator`,
		path + `:8:14: sinks[0].config.paht: unknown key "paht"; did you mean "path"?`,
		"2 problem(s) found",
	} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
		}
	}
}

func TestUsageErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"frobnicate"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `unknown command "frobnicate"`) {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"validate"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "no config given") {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
}

func TestOffsetsGetFileStore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	cfg := `worker: {data_dir: ` + dir + `, offsets: {store: file}}
sources:
  - {name: gen, type: generator, config: {topic_prefix: demo}}
`
	_ = os.WriteFile(path, []byte(cfg), 0o644)
	var out, errOut bytes.Buffer
	if code := run([]string{"offsets", "get", "gen", "-c", path}, &out, &errOut); code != 0 || strings.TrimSpace(out.String()) != `{"offsets":[]}` {
		t.Fatalf("exit %d, out %q, err %q", code, out.String(), errOut.String())
	}
	_ = os.WriteFile(filepath.Join(dir, "offsets.json"), []byte(`[{"key":["gen",{"server":"demo"}],"position":{"seq":42}}]`), 0o644)
	out.Reset()
	if code := run([]string{"offsets", "get", "gen", "-c", path}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if got := strings.TrimSpace(out.String()); got != `{"offsets":[{"partition":{"server":"demo"},"offset":{"seq":42}}]}` {
		t.Fatalf("offsets get = %s", got)
	}
	errOut.Reset()
	if code := run([]string{"offsets", "get", "nope", "-c", path}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `no source named "nope"`) {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
}

func TestRunFailsClearlyWhenKafkaIsUnreachable(t *testing.T) {
	if testing.Short() {
		t.Skip("waits through the bounded retries (~15s)")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	cfg := `kafka: {brokers: ["127.0.0.1:1"]}
worker: {data_dir: ` + dir + `, http: "off"}
sources:
  - {name: gen, type: generator, config: {topic_prefix: demo}}
`
	_ = os.WriteFile(path, []byte(cfg), 0o644)
	var out, errOut bytes.Buffer
	code := run([]string{"run", "-c", path}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "no Kafka broker reachable at 127.0.0.1:1") {
		t.Fatalf("exit %d:\n%s", code, errOut.String())
	}
}
