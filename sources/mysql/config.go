package mysql

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/connectd/connectd/cdc"
)

// Config is the mysql source's `config:` block. The keys are a contract.
type Config struct {
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	// ServerID is the replica id this connector registers with; unique
	// among the server's replicas.
	ServerID uint32 `yaml:"server_id"`
	// TopicPrefix starts every topic: <topic_prefix>.<db>.<table>.
	TopicPrefix string `yaml:"topic_prefix"`
	// IncludeTables and ExcludeTables are regular expressions matched
	// against the whole "db.table" name.
	IncludeTables []string `yaml:"include_tables"`
	ExcludeTables []string `yaml:"exclude_tables"`
	// SnapshotMode is initial (default), never or when_needed.
	SnapshotMode string `yaml:"snapshot_mode"`
	// SnapshotChunkRows is the keyset chunk size (default 10000).
	SnapshotChunkRows int `yaml:"snapshot_chunk_rows"`
	// HeartbeatInterval is how often an idle stream stores its position
	// (default 10s; 0 disables heartbeats).
	HeartbeatInterval *time.Duration `yaml:"heartbeat_interval"`
	// DecimalHandling is string (default), double or precise.
	DecimalHandling string `yaml:"decimal_handling"`
}

// Snapshot modes.
const (
	SnapshotInitial    = "initial"
	SnapshotNever      = "never"
	SnapshotWhenNeeded = "when_needed"
)

// Decimal handling modes.
const (
	DecimalString  = "string"
	DecimalDouble  = "double"
	DecimalPrecise = "precise"
)

// systemDBs are never captured.
var systemDBs = map[string]bool{"mysql": true, "information_schema": true, "performance_schema": true, "sys": true}

// filter decides which tables are captured.
type filter struct {
	include, exclude []*regexp.Regexp
}

func (f *filter) match(db, table string) bool {
	if systemDBs[strings.ToLower(db)] {
		return false
	}
	name := db + "." + table
	if len(f.include) > 0 {
		ok := false
		for _, re := range f.include {
			if re.MatchString(name) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, re := range f.exclude {
		if re.MatchString(name) {
			return false
		}
	}
	return true
}

// New builds a mysql source from its config block without connecting.
func New(dec cdc.ConfigDecoder, name string, logger *slog.Logger) (*Source, error) {
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		return nil, err
	}
	var errs []error
	if cfg.Host == "" {
		errs = append(errs, dec.Errorf("host", "host is required, e.g. host: 127.0.0.1"))
	}
	if cfg.Port == 0 {
		cfg.Port = 3306
	} else if cfg.Port < 0 || cfg.Port > 65535 {
		errs = append(errs, dec.Errorf("port", "port %d is not a TCP port (1-65535)", cfg.Port))
	}
	if cfg.User == "" {
		errs = append(errs, dec.Errorf("user", "user is required: a user with REPLICATION SLAVE, REPLICATION CLIENT and SELECT"))
	}
	if cfg.ServerID == 0 {
		errs = append(errs, dec.Errorf("server_id", "server_id is required and must be > 0: a replica id unique among the server's replicas, e.g. server_id: 5401"))
	}
	if cfg.TopicPrefix == "" {
		errs = append(errs, dec.Errorf("topic_prefix", "topic_prefix is required; topics are <topic_prefix>.<db>.<table>"))
	} else if strings.ContainsAny(cfg.TopicPrefix, " /\\,") {
		errs = append(errs, dec.Errorf("topic_prefix", "topic_prefix %q may not contain spaces, slashes or commas", cfg.TopicPrefix))
	}
	var f filter
	for i, s := range cfg.IncludeTables {
		re, err := regexp.Compile("^(?:" + s + ")$")
		if err != nil {
			errs = append(errs, dec.Errorf("include_tables", "include_tables[%d] %q: %v", i, s, err))
			continue
		}
		f.include = append(f.include, re)
	}
	for i, s := range cfg.ExcludeTables {
		re, err := regexp.Compile("^(?:" + s + ")$")
		if err != nil {
			errs = append(errs, dec.Errorf("exclude_tables", "exclude_tables[%d] %q: %v", i, s, err))
			continue
		}
		f.exclude = append(f.exclude, re)
	}
	switch cfg.SnapshotMode {
	case "":
		cfg.SnapshotMode = SnapshotInitial
	case SnapshotInitial, SnapshotNever, SnapshotWhenNeeded:
	default:
		errs = append(errs, dec.Errorf("snapshot_mode", "snapshot_mode %q: want initial, never or when_needed", cfg.SnapshotMode))
	}
	switch {
	case cfg.SnapshotChunkRows == 0:
		cfg.SnapshotChunkRows = 10000
	case cfg.SnapshotChunkRows < 0:
		errs = append(errs, dec.Errorf("snapshot_chunk_rows", "snapshot_chunk_rows must be > 0"))
	}
	heartbeat := 10 * time.Second
	if cfg.HeartbeatInterval != nil {
		heartbeat = *cfg.HeartbeatInterval
		if heartbeat < 0 {
			errs = append(errs, dec.Errorf("heartbeat_interval", "heartbeat_interval must be >= 0 (0 disables heartbeats)"))
		} else if heartbeat > 0 && heartbeat < 100*time.Millisecond {
			errs = append(errs, dec.Errorf("heartbeat_interval", "heartbeat_interval %s is too short (minimum 100ms)", heartbeat))
		}
	}
	switch cfg.DecimalHandling {
	case "":
		cfg.DecimalHandling = DecimalString
	case DecimalString, DecimalDouble, DecimalPrecise:
	default:
		errs = append(errs, dec.Errorf("decimal_handling", "decimal_handling %q: want string, double or precise", cfg.DecimalHandling))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Source{
		cfg:       cfg,
		name:      name,
		filter:    f,
		heartbeat: heartbeat,
		log:       logger,
		now:       time.Now,
		acked:     make(chan struct{}),
	}, nil
}

// addr is host:port.
func (c *Config) addr() string { return fmt.Sprintf("%s:%d", c.Host, c.Port) }
