package postgres

import (
	"errors"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/connectd/connectd/cdc"
)

// SnapshotMode says when the source reads existing rows.
type SnapshotMode string

// The snapshot modes.
const (
	// SnapshotInitial snapshots when the connector has no stored position.
	SnapshotInitial SnapshotMode = "initial"
	// SnapshotNever only streams changes made after the slot was created.
	SnapshotNever SnapshotMode = "never"
	// SnapshotWhenNeeded snapshots when there is no stored position, and
	// again whenever the stored position can no longer be streamed from
	// (slot missing or invalidated).
	SnapshotWhenNeeded SnapshotMode = "when_needed"
)

// Config is the postgres source's `config:` block. Its keys are a contract.
type Config struct {
	// DSN is a libpq connection string or postgres:// URL of a role with
	// REPLICATION (or superuser) and SELECT on the captured tables.
	DSN string `yaml:"dsn"`
	// Slot is the logical replication slot; created when missing, dropped
	// only when DropSlotOnStop is set.
	Slot string `yaml:"slot"`
	// Publication is the pgoutput publication; created when missing.
	Publication string `yaml:"publication"`
	// TopicPrefix starts every topic: <topic_prefix>.<schema>.<table>.
	TopicPrefix string `yaml:"topic_prefix"`
	// IncludeTables and ExcludeTables are regular expressions matched
	// against the whole "schema.table".
	IncludeTables []string `yaml:"include_tables"`
	ExcludeTables []string `yaml:"exclude_tables"`
	// SnapshotMode is initial (default), never or when_needed.
	SnapshotMode SnapshotMode `yaml:"snapshot_mode"`
	// SnapshotChunkRows is how many rows one keyset query reads (default
	// 10000).
	SnapshotChunkRows int `yaml:"snapshot_chunk_rows"`
	// HeartbeatInterval is how often a heartbeat message is written to the
	// WAL so an idle or filtered database still advances the slot (default
	// 30s; 0s disables).
	HeartbeatInterval *time.Duration `yaml:"heartbeat_interval"`
	// DecimalHandling is string (default), double or precise.
	DecimalHandling DecimalHandling `yaml:"decimal_handling"`
	// DropSlotOnStop drops the slot when the connector stops (tests and
	// throw-away pipelines only: changes made while stopped are lost).
	DropSlotOnStop bool `yaml:"drop_slot_on_stop"`
	// UnavailableValuePlaceholder is written for unchanged TOAST values
	// (Debezium's unavailable.value.placeholder; default
	// "__debezium_unavailable_value", which connectd's sinks recognise).
	UnavailableValuePlaceholder string `yaml:"unavailable_value_placeholder"`
}

// Defaults.
const (
	defaultChunkRows = 10000
	defaultHeartbeat = 30 * time.Second
)

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// New builds a postgres source from its config block. It validates
// everything it can without connecting and reports every problem.
func New(dec cdc.ConfigDecoder, name string, logger *slog.Logger) (*Source, error) {
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		return nil, err
	}
	var errs []error
	if cfg.DSN == "" {
		errs = append(errs, dec.Errorf("dsn", "dsn is required, e.g. dsn: postgres://cdc:${PG_PASSWORD}@127.0.0.1:5432/shop"))
	} else if _, err := pgconn.ParseConfig(cfg.DSN); err != nil {
		errs = append(errs, dec.Errorf("dsn", "dsn %s cannot be parsed: %s", RedactDSN(cfg.DSN), redactErr(err, cfg.DSN)))
	}
	if cfg.TopicPrefix == "" {
		errs = append(errs, dec.Errorf("topic_prefix", "topic_prefix is required; it starts every topic name, e.g. topic_prefix: shop"))
	}
	if cfg.Slot == "" {
		cfg.Slot = defaultIdent(cfg.TopicPrefix, name)
	}
	if !identRE.MatchString(cfg.Slot) {
		errs = append(errs, dec.Errorf("slot", "slot %q must be lower-case letters, digits and _ (at most 63), starting with a letter or _", cfg.Slot))
	}
	if cfg.Publication == "" {
		cfg.Publication = defaultIdent(cfg.TopicPrefix, name)
	}
	if !identRE.MatchString(cfg.Publication) {
		errs = append(errs, dec.Errorf("publication", "publication %q must be lower-case letters, digits and _ (at most 63), starting with a letter or _", cfg.Publication))
	}
	include, err := compileAll(dec, "include_tables", cfg.IncludeTables)
	errs = append(errs, err)
	exclude, err := compileAll(dec, "exclude_tables", cfg.ExcludeTables)
	errs = append(errs, err)
	switch cfg.SnapshotMode {
	case "":
		cfg.SnapshotMode = SnapshotInitial
	case SnapshotInitial, SnapshotNever, SnapshotWhenNeeded:
	default:
		errs = append(errs, dec.Errorf("snapshot_mode", "snapshot_mode %q: use initial, never or when_needed", cfg.SnapshotMode))
	}
	switch {
	case cfg.SnapshotChunkRows == 0:
		cfg.SnapshotChunkRows = defaultChunkRows
	case cfg.SnapshotChunkRows < 0:
		errs = append(errs, dec.Errorf("snapshot_chunk_rows", "snapshot_chunk_rows must be > 0"))
	}
	heartbeat := defaultHeartbeat
	if cfg.HeartbeatInterval != nil {
		heartbeat = *cfg.HeartbeatInterval
		if heartbeat < 0 {
			errs = append(errs, dec.Errorf("heartbeat_interval", "heartbeat_interval must be >= 0 (0s disables heartbeats)"))
		} else if heartbeat > 0 && heartbeat < 100*time.Millisecond {
			errs = append(errs, dec.Errorf("heartbeat_interval", "heartbeat_interval %s is too short; use at least 100ms", heartbeat))
		}
	}
	switch cfg.DecimalHandling {
	case "":
		cfg.DecimalHandling = DecimalString
	case DecimalString, DecimalDouble, DecimalPrecise:
	default:
		errs = append(errs, dec.Errorf("decimal_handling", "decimal_handling %q: use string, double or precise", cfg.DecimalHandling))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return newSource(cfg, name, heartbeat, include, exclude, logger), nil
}

// defaultIdent derives a slot or publication name from the topic prefix.
func defaultIdent(prefix, name string) string {
	base := prefix
	if base == "" {
		base = name
	}
	var b strings.Builder
	b.WriteString("connectd_")
	for _, r := range strings.ToLower(base) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if len(s) > 63 {
		s = s[:63]
	}
	return s
}

func compileAll(dec cdc.ConfigDecoder, key string, exprs []string) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	var errs []error
	for i, e := range exprs {
		re, err := regexp.Compile("^(?:" + e + ")$")
		if err != nil {
			errs = append(errs, dec.Errorf(key, "%s[%d] %q is not a regular expression: %v", key, i, e, err))
			continue
		}
		out = append(out, re)
	}
	return out, errors.Join(errs...)
}

var urlPasswordRE = regexp.MustCompile(`(://[^:/@\s]*:)[^@\s]*(@)`)

var kvPasswordRE = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// RedactDSN returns dsn with its password replaced by "xxxxx", for logs
// and error messages.
func RedactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	dsn = urlPasswordRE.ReplaceAllString(dsn, "${1}xxxxx${2}")
	return kvPasswordRE.ReplaceAllString(dsn, "${1}xxxxx")
}

// redactErr is err's message with any password of dsn removed.
func redactErr(err error, dsn string) string {
	msg := err.Error()
	if pw := dsnPassword(dsn); pw != "" {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
	}
	return msg
}

func dsnPassword(dsn string) string {
	if cfg, err := pgconn.ParseConfig(dsn); err == nil {
		return cfg.Password
	}
	if u, err := url.Parse(dsn); err == nil {
		if pw, ok := u.User.Password(); ok {
			return pw
		}
	}
	return ""
}
