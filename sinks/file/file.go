package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/connectd/connectd/cdc"
)

// Config is the file sink's `config:` block.
type Config struct {
	// Path is the file to append to; "-" writes to standard output.
	Path string `yaml:"path"`
	// Sync fsyncs the file after every batch, so written events survive a
	// machine crash and not only a process crash.
	Sync bool `yaml:"sync"`
}

// Sink appends change events to a file.
type Sink struct {
	cfg    Config
	stdout io.Writer
	f      *os.File
	w      io.Writer
	buf    []byte
}

// New builds a file sink from its config block. stdout receives the events
// when path is "-".
func New(dec cdc.ConfigDecoder, stdout io.Writer) (*Sink, error) {
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		return nil, err
	}
	if cfg.Path == "" {
		return nil, dec.Errorf("path", "path is required: the file to append events to (\"-\" for standard output)")
	}
	return &Sink{cfg: cfg, stdout: stdout}, nil
}

// Open opens the file for appending, creating it and its directory.
func (s *Sink) Open(context.Context) error {
	if s.cfg.Path == "-" {
		s.w = s.stdout
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(s.cfg.Path), 0o755); err != nil {
		return cdc.Terminal(fmt.Errorf("creating directory of %s: %w", s.cfg.Path, err))
	}
	f, err := os.OpenFile(s.cfg.Path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return cdc.Terminal(fmt.Errorf("opening %s: %w", s.cfg.Path, err))
	}
	if err := dropTornLine(f); err != nil {
		f.Close()
		return fmt.Errorf("repairing %s: %w", s.cfg.Path, err)
	}
	s.f, s.w = f, f
	return nil
}

// dropTornLine truncates a regular file after its last newline. A process
// killed in the middle of a write leaves a partial last line; its events
// were not committed, so they are delivered again and appended whole.
func dropTornLine(f *os.File) error {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() == 0 {
		return err
	}
	buf := make([]byte, 64<<10)
	end := st.Size()
	for end > 0 {
		n := min(int64(len(buf)), end)
		if _, err := f.ReadAt(buf[:n], end-n); err != nil {
			return err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			end = end - n + int64(i) + 1
			break
		}
		end -= n
	}
	if end == st.Size() {
		return nil
	}
	return f.Truncate(end)
}

// Write appends batch with one write call (and one fsync when configured).
// It reports all or nothing written.
func (s *Sink) Write(_ context.Context, batch []cdc.Message) (int, error) {
	b := s.buf[:0]
	for i := range batch {
		b = AppendLine(b, &batch[i])
	}
	s.buf = b
	if _, err := s.w.Write(b); err != nil {
		return 0, fmt.Errorf("appending to %s: %w", s.cfg.Path, err)
	}
	if s.cfg.Sync && s.f != nil {
		if err := s.f.Sync(); err != nil {
			return 0, fmt.Errorf("syncing %s: %w", s.cfg.Path, err)
		}
	}
	return len(batch), nil
}

// Close closes the file.
func (s *Sink) Close(context.Context) error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	if err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("closing %s: %w", s.cfg.Path, err)
	}
	return nil
}

// Line is one line of the file, as tests and tools read it back.
type Line struct {
	Topic     string          `json:"topic"`
	Partition int             `json:"partition"`
	Offset    int64           `json:"offset"`
	Key       json.RawMessage `json:"key"`
	Value     json.RawMessage `json:"value"`
}

// AppendLine appends m's line, newline included, to dst.
func AppendLine(dst []byte, m *cdc.Message) []byte {
	dst = append(dst, `{"topic":`...)
	dst = strconv.AppendQuote(dst, m.Topic)
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendInt(dst, int64(m.Partition), 10)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, m.Offset, 10)
	dst = append(dst, `,"key":`...)
	dst = appendRaw(dst, m.Key)
	dst = append(dst, `,"value":`...)
	dst = appendRaw(dst, m.Value)
	return append(dst, "}\n"...)
}

// appendRaw embeds b as JSON: as it is when it looks like a JSON object
// (what connectd and Debezium write: the first byte is '{' and the last
// '}'), null when nil, otherwise as a JSON string. Full validation of every
// value would cost more than the rest of the sink; a producer that writes
// brace-delimited non-JSON gets a line that JSON readers reject.
func appendRaw(dst []byte, b []byte) []byte {
	if b == nil {
		return append(dst, "null"...)
	}
	if len(b) >= 2 && b[0] == '{' && b[len(b)-1] == '}' {
		return append(dst, b...)
	}
	s, _ := json.Marshal(string(b))
	return append(dst, s...)
}
