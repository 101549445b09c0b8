package broker

import (
	"errors"
	"strings"
	"testing"
)

func TestDataDirIsExclusive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, err := Start(Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Start(Options{DataDir: dir})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "worker.data_dir") {
		t.Fatalf("second broker on %s: err = %v, want ErrLocked naming the directory and the fix", dir, err)
	}
	a.Close()
	b, err := Start(Options{DataDir: dir})
	if err != nil {
		t.Fatalf("after the first broker closed: %v", err)
	}
	b.Close()
}

func TestBadListenAddress(t *testing.T) {
	t.Parallel()
	if _, err := Start(Options{Listen: "nonsense"}); err == nil || !strings.Contains(err.Error(), `"nonsense"`) {
		t.Fatalf("err = %v", err)
	}
}
