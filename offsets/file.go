package offsets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/connectd/connectd/cdc"
)

// FileStore keeps positions in one JSON file, rewritten atomically (write to
// a temporary file, fsync, rename) on every Put. It suits a standalone
// worker; several processes must not share one file.
type FileStore struct {
	path string
	mu   sync.Mutex
	m    map[Key]cdc.Position
}

type fileEntry struct {
	Key      Key             `json:"key"`
	Position json.RawMessage `json:"position"`
}

// OpenFile loads the store at path, or starts an empty one when the file
// does not exist yet.
func OpenFile(path string) (*FileStore, error) {
	s := &FileStore{path: path, m: map[Key]cdc.Position{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading offsets file: %w", err)
	}
	var entries []fileEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, fmt.Errorf("reading offsets file %s: %w (move it away to start over)", path, err)
	}
	for _, e := range entries {
		s.m[e.Key] = cdc.Position(e.Position)
	}
	return s, nil
}

// Get returns the stored position for k, or nil when none is stored.
func (s *FileStore) Get(_ context.Context, k Key) (cdc.Position, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k], nil
}

// Put stores pos for k durably; a nil pos deletes k.
func (s *FileStore) Put(_ context.Context, k Key, pos cdc.Position) error {
	if err := validPosition(pos); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.m[k]
	if pos == nil {
		delete(s.m, k)
	} else {
		s.m[k] = slices.Clone(pos)
	}
	if err := s.saveLocked(); err != nil {
		if had {
			s.m[k] = old
		} else {
			delete(s.m, k)
		}
		return err
	}
	return nil
}

// List returns every stored entry, ordered by key.
func (s *FileStore) List(context.Context) ([]Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedEntries(s.m), nil
}

// Close releases nothing; it exists so FileStore satisfies the same
// interface as the Kafka store.
func (s *FileStore) Close() error { return nil }

func (s *FileStore) saveLocked() error {
	// One entry per line, positions kept byte for byte.
	b := []byte("[")
	for i, e := range sortedEntries(s.m) {
		line, err := json.Marshal(fileEntry{Key: e.Key, Position: json.RawMessage(e.Position)})
		if err != nil {
			return fmt.Errorf("encoding offsets: %w", err)
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(append(b, "\n  "...), line...)
	}
	b = append(b, "\n]"...)
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return fmt.Errorf("creating offsets directory: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), filepath.Base(s.path)+".tmp*")
	if err != nil {
		return fmt.Errorf("writing offsets file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("writing offsets file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("syncing offsets file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing offsets file: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("replacing offsets file: %w", err)
	}
	return nil
}

func sortedEntries(m map[Key]cdc.Position) []Entry {
	out := make([]Entry, 0, len(m))
	for k, p := range m {
		out = append(out, Entry{Key: k, Position: p})
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if a.Key.Connector != b.Key.Connector {
			if a.Key.Connector < b.Key.Connector {
				return -1
			}
			return 1
		}
		switch {
		case a.Key.Server < b.Key.Server:
			return -1
		case a.Key.Server > b.Key.Server:
			return 1
		}
		return 0
	})
	return out
}
