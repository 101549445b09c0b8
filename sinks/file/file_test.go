package file

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connectd/connectd/cdc"
)

type fakeDecoder struct{ cfg Config }

func (f fakeDecoder) Decode(out any) error { *out.(*Config) = f.cfg; return nil }
func (f fakeDecoder) Errorf(key, format string, args ...any) error {
	return fmt.Errorf(key+": "+format, args...)
}

func TestWritesOneLinePerEventWithTombstones(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "out.jsonl")
	s, err := New(fakeDecoder{Config{Path: path, Sync: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	batch := []cdc.Message{
		{Topic: "demo.inv.items", Partition: 1, Offset: 7, Key: []byte(`{"id":1}`), Value: []byte(`{"op":"d"}`)},
		{Topic: "demo.inv.items", Partition: 1, Offset: 8, Key: []byte(`{"id":1}`)},
		{Topic: "demo.inv.items", Partition: 0, Offset: 3, Key: []byte("not json"), Value: []byte("raw \"text\"")},
	}
	if n, err := s.Write(ctx, batch); n != 3 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Reopening appends.
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(ctx, batch[:1]); err != nil {
		t.Fatal(err)
	}
	_ = s.Close(ctx)

	f, _ := os.Open(path)
	defer f.Close()
	var lines []Line
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want 4", len(lines))
	}
	if string(lines[1].Value) != "null" || string(lines[1].Key) != `{"id":1}` || lines[1].Offset != 8 {
		t.Fatalf("tombstone line = %+v", lines[1])
	}
	if string(lines[2].Key) != `"not json"` || string(lines[2].Value) != `"raw \"text\""` {
		t.Fatalf("non-JSON key/value not quoted: %+v", lines[2])
	}
}

func TestStdout(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	s, _ := New(fakeDecoder{Config{Path: "-"}}, &out)
	_ = s.Open(context.Background())
	_, _ = s.Write(context.Background(), []cdc.Message{{Topic: "t", Key: []byte(`{"id":2}`), Value: []byte(`{}`)}})
	if got := out.String(); got != `{"topic":"t","partition":0,"offset":0,"key":{"id":2},"value":{}}`+"\n" {
		t.Fatalf("stdout = %q", got)
	}
}

func TestConfigAndOpenErrors(t *testing.T) {
	t.Parallel()
	if _, err := New(fakeDecoder{Config{}}, nil); err == nil || !strings.Contains(err.Error(), "path is required") {
		t.Fatalf("err = %v", err)
	}
	dir := t.TempDir()
	s, _ := New(fakeDecoder{Config{Path: dir}}, nil) // a directory cannot be opened for appending
	err := s.Open(context.Background())
	if err == nil || !cdc.IsTerminal(err) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("err = %v, want a terminal error naming %s", err, dir)
	}
}

func TestOpenDropsATornLastLine(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "out.jsonl")
	whole := `{"topic":"t","partition":0,"offset":1,"key":{"id":1},"value":null}` + "\n"
	if err := os.WriteFile(path, []byte(whole+`{"topic":"t","partition":0,"offset":2,"key":{"id":2},"value":`), 0o644); err != nil {
		t.Fatal(err)
	}
	s, _ := New(fakeDecoder{Config{Path: path}}, nil)
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(context.Background(), []cdc.Message{{Topic: "t", Offset: 2, Key: []byte(`{"id":2}`), Value: []byte(`{"op":"c"}`)}}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close(context.Background())
	b, _ := os.ReadFile(path)
	want := whole + `{"topic":"t","partition":0,"offset":2,"key":{"id":2},"value":{"op":"c"}}` + "\n"
	if string(b) != want {
		t.Fatalf("file after a torn line and a re-delivery:\n%s\nwant:\n%s", b, want)
	}
}
