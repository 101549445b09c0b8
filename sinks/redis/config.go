package redis

import (
	"errors"
	"net"
	"time"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/sinks/view"
)

// Formats of the view.
const (
	FormatHash   = "hash"
	FormatJSON   = "json"
	FormatString = "string"
	FormatStream = "stream"
)

// DefaultBatchSize is the most messages written in one MULTI/EXEC (or one
// pipeline in cluster mode) when batch_size is not set.
const DefaultBatchSize = 1000

// Config is the redis sink's `config:` block. Its keys are a contract.
type Config struct {
	// Addr is host:port of a standalone Redis (or a primary).
	Addr string `yaml:"addr"`
	// ClusterAddrs are seed nodes of a Redis Cluster; use instead of Addr.
	ClusterAddrs []string `yaml:"cluster_addrs"`
	// DB is the database number (standalone only).
	DB int `yaml:"db"`
	// Password authenticates as the default user. It is never logged.
	Password string `yaml:"password"`
	// Key is the key template, e.g. "customer:{id}".
	Key string `yaml:"key"`
	// Format is hash (default), json, string or stream.
	Format string `yaml:"format"`
	// View selects and renames fields: fields | exclude_fields, rename.
	View view.Select `yaml:",inline"`
	// ValueField is the field stored by the string format.
	ValueField string `yaml:"value_field"`
	// TTL, when positive, expires every key it writes that long after the
	// last write.
	TTL time.Duration `yaml:"ttl"`
	// BatchSize is the most messages per MULTI/EXEC or pipeline.
	BatchSize int `yaml:"batch_size"`
	// TestKillAfterExec is for tests only: after that many successful
	// transactions, the sink kills its own process with SIGKILL, between
	// Redis and the Kafka commit. Never set it in production.
	TestKillAfterExec int `yaml:"test_kill_after_exec"`
}

// settings is a checked Config.
type settings struct {
	Config
	tmpl *view.Template
	proj *view.Projection
}

// check validates cfg without connecting, returning every problem, each
// positioned at its key.
func check(cfg Config, dec cdc.ConfigDecoder) (*settings, error) {
	var errs []error
	s := &settings{Config: cfg}
	if s.Format == "" {
		s.Format = FormatHash
	}
	if s.BatchSize == 0 {
		s.BatchSize = DefaultBatchSize
	}
	cluster := len(cfg.ClusterAddrs) > 0
	switch {
	case cfg.Addr == "" && !cluster:
		errs = append(errs, dec.Errorf("addr", "addr (host:port of a standalone Redis) or cluster_addrs (seed nodes of a Redis Cluster) is required"))
	case cfg.Addr != "" && cluster:
		errs = append(errs, dec.Errorf("cluster_addrs", "set either addr (standalone Redis) or cluster_addrs (Redis Cluster), not both"))
	case cfg.Addr != "":
		if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
			errs = append(errs, dec.Errorf("addr", "addr %q: want host:port", cfg.Addr))
		}
	}
	for i, a := range cfg.ClusterAddrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, dec.Errorf("cluster_addrs", "cluster_addrs[%d] %q: want host:port", i, a))
		}
	}
	if cfg.DB < 0 {
		errs = append(errs, dec.Errorf("db", "db must be >= 0"))
	}
	if cluster && cfg.DB != 0 {
		errs = append(errs, dec.Errorf("db", "db must be 0 with cluster_addrs: Redis Cluster has one database"))
	}
	if cfg.Key == "" {
		errs = append(errs, dec.Errorf("key", "key is required: a template over key and row fields, e.g. \"customer:{id}\""))
	} else if t, err := view.ParseTemplate(cfg.Key); err != nil {
		errs = append(errs, dec.Errorf("key", "%v", err))
	} else {
		s.tmpl = t
		if !t.UsesRow() && s.Format != FormatStream {
			errs = append(errs, dec.Errorf("key", "key template %q names no field, so every row would land on one key; name a key field, e.g. \"customer:{id}\"", cfg.Key))
		}
	}
	switch s.Format {
	case FormatHash, FormatJSON:
	case FormatString:
		if cfg.ValueField == "" {
			errs = append(errs, dec.Errorf("value_field", "format string needs value_field: the field whose value the key holds"))
		} else if len(cfg.View.Fields) > 0 && !contains(cfg.View.Fields, cfg.ValueField) {
			errs = append(errs, dec.Errorf("value_field", "value_field %q is not one of fields", cfg.ValueField))
		} else if contains(cfg.View.ExcludeFields, cfg.ValueField) {
			errs = append(errs, dec.Errorf("value_field", "value_field %q is in exclude_fields", cfg.ValueField))
		}
	case FormatStream:
		if cluster {
			errs = append(errs, dec.Errorf("format", "format stream needs a standalone Redis (addr): in a Redis Cluster the offsets cannot share a transaction with the stream entries, so a crash would duplicate entries"))
		}
		if len(cfg.View.Fields) > 0 || len(cfg.View.ExcludeFields) > 0 || len(cfg.View.Rename) > 0 {
			errs = append(errs, dec.Errorf("format", "fields, exclude_fields and rename apply to the hash, json and string formats; stream entries carry the whole change event"))
		}
	default:
		errs = append(errs, dec.Errorf("format", "unknown format %q: want hash, json, string or stream", s.Format))
	}
	if cfg.ValueField != "" && s.Format != FormatString {
		errs = append(errs, dec.Errorf("value_field", "value_field applies to format string only"))
	}
	p, err := cfg.View.Compile(func(key, format string, args ...any) error { return dec.Errorf(key, format, args...) })
	if err != nil {
		errs = append(errs, err)
	}
	s.proj = p
	if cfg.TTL < 0 {
		errs = append(errs, dec.Errorf("ttl", "ttl must be >= 0 (0 keeps keys forever)"))
	} else if cfg.TTL > 0 && cfg.TTL < time.Millisecond {
		errs = append(errs, dec.Errorf("ttl", "ttl must be at least 1ms"))
	}
	if s.BatchSize < 0 {
		errs = append(errs, dec.Errorf("batch_size", "batch_size must be > 0"))
	}
	if cfg.TestKillAfterExec < 0 {
		errs = append(errs, dec.Errorf("test_kill_after_exec", "test_kill_after_exec must be >= 0"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
