package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

// ErrLocked means another process uses the data directory.
var ErrLocked = errors.New("data directory in use by another process")

// Options configure an embedded broker.
type Options struct {
	// DataDir holds topics, offsets and groups. Empty keeps everything in
	// memory (tests only: memory then grows with every message).
	DataDir string
	// Listen is the host:port to listen on; port 0 picks a free one.
	// Default "127.0.0.1:0".
	Listen string
	// SyncWrites fsyncs every produced batch. Without it, acknowledged data
	// survives a crash of connectd (it is in the page cache) but not of the
	// machine.
	SyncWrites bool
	// Partitions is the default partition count of auto-created topics.
	Partitions int
	// Logger receives the broker's warnings and errors.
	Logger *slog.Logger
}

// Broker is a running embedded broker.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
	lock    *os.File
}

// Start starts a broker. Close it to persist its state cleanly.
func Start(opts Options) (*Broker, error) {
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	host, port, err := net.SplitHostPort(opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded broker listen address %q: %w", opts.Listen, err)
	}
	b := &Broker{}
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.WithLogger(slogAdapter{opts.Logger}),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, port))
		}),
		kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": "30000"}),
	}
	if opts.Partitions > 0 {
		kopts = append(kopts, kfake.DefaultNumPartitions(opts.Partitions))
	}
	if opts.DataDir != "" {
		if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("creating broker data directory: %w", err)
		}
		if b.lock, err = lockDir(opts.DataDir); err != nil {
			return nil, err
		}
		kopts = append(kopts, kfake.DataDir(opts.DataDir))
		if opts.SyncWrites {
			kopts = append(kopts, kfake.SyncWrites())
		}
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		b.unlock()
		return nil, fmt.Errorf("starting embedded broker on %s: %w", opts.Listen, err)
	}
	b.cluster = c
	b.addr = c.ListenAddrs()[0]
	return b, nil
}

// Addr returns the broker's listen address.
func (b *Broker) Addr() string { return b.addr }

// Cluster exposes the underlying kfake cluster, for tests that compact or
// inject faults.
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// Close stops the broker, persists its state and releases the data
// directory.
func (b *Broker) Close() {
	b.cluster.Close()
	b.unlock()
}

func (b *Broker) unlock() {
	if b.lock != nil {
		_ = syscall.Flock(int(b.lock.Fd()), syscall.LOCK_UN)
		b.lock.Close()
		b.lock = nil
	}
}

func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking broker data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		owner := ""
		if b, rerr := os.ReadFile(path); rerr == nil && len(b) > 0 {
			owner = " (pid " + strings.TrimSpace(string(b)) + ")"
		}
		return nil, fmt.Errorf("%w: %s is held by another connectd%s; stop it or use another worker.data_dir", ErrLocked, dir, owner)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Logf(level kfake.LogLevel, msg string, args ...any) {
	var l slog.Level
	switch level {
	case kfake.LogLevelError:
		l = slog.LevelError
	case kfake.LogLevelWarn:
		l = slog.LevelWarn
	default:
		return
	}
	a.l.Log(context.Background(), l, "embedded broker: "+fmt.Sprintf(msg, args...))
}
