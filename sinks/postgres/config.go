package postgres

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/sinks/view"
)

// Config is the sink's `config:` block.
type Config struct {
	// DSN is the target database (postgres://user:pass@host:port/db).
	DSN string `yaml:"dsn"`
	// Table names the target table: a template over {topic}, {db},
	// {schema} and {table} of each record (default "{table}").
	Table string `yaml:"table"`
	// Schema is the target schema (default public).
	Schema string `yaml:"schema"`
	// Select is the lean projection: fields, exclude_fields, rename.
	view.Select `yaml:",inline"`
	// PrimaryKey lists the view's key columns (after renaming); default:
	// the record key's fields.
	PrimaryKey []string `yaml:"primary_key"`
	// AutoCreate creates missing tables (default true).
	AutoCreate *bool `yaml:"auto_create"`
	// AutoEvolve adds missing columns and widens compatible types (default
	// true).
	AutoEvolve *bool `yaml:"auto_evolve"`
	// DeleteMode is "delete" (remove the row) or "soft" (set __deleted).
	DeleteMode string `yaml:"delete_mode"`
	// BatchSize caps rows per statement (default 2000).
	BatchSize int `yaml:"batch_size"`
}

type settings struct {
	Config
	proj       *view.Projection
	table      []tablePart
	autoCreate bool
	autoEvolve bool
	soft       bool
}

// tablePart is a piece of the table template: literal text or a variable.
type tablePart struct {
	lit string
	v   string // topic, db, schema, table
}

func parseConfig(dec cdc.ConfigDecoder) (*settings, error) {
	cfg := Config{Table: "{table}", Schema: "public", DeleteMode: "delete", BatchSize: 2000}
	if err := dec.Decode(&cfg); err != nil {
		return nil, err
	}
	s := &settings{Config: cfg, autoCreate: true, autoEvolve: true}
	if cfg.AutoCreate != nil {
		s.autoCreate = *cfg.AutoCreate
	}
	if cfg.AutoEvolve != nil {
		s.autoEvolve = *cfg.AutoEvolve
	}
	var errs []error
	if cfg.DSN == "" {
		errs = append(errs, dec.Errorf("dsn", "dsn is required, e.g. postgres://app:${PG_PASSWORD}@127.0.0.1:5432/views"))
	} else if _, err := pgx.ParseConfig(cfg.DSN); err != nil {
		errs = append(errs, dec.Errorf("dsn", "dsn cannot be parsed: %s", redactErr(err, cfg.DSN)))
	}
	switch cfg.DeleteMode {
	case "delete":
	case "soft":
		s.soft = true
	default:
		errs = append(errs, dec.Errorf("delete_mode", "delete_mode must be delete or soft, not %q", cfg.DeleteMode))
	}
	if cfg.BatchSize <= 0 {
		errs = append(errs, dec.Errorf("batch_size", "batch_size must be > 0"))
	}
	if cfg.Schema == "" {
		errs = append(errs, dec.Errorf("schema", "schema must not be empty"))
	}
	parts, err := parseTableTemplate(cfg.Table)
	if err != nil {
		errs = append(errs, dec.Errorf("table", "%v", err))
	}
	s.table = parts
	proj, err := cfg.Select.Compile(dec.Errorf)
	if err != nil {
		errs = append(errs, err)
	}
	s.proj = proj
	for i, k := range cfg.PrimaryKey {
		if k == "" {
			errs = append(errs, dec.Errorf("primary_key", "primary_key[%d] is empty", i))
		}
	}
	return s, errors.Join(errs...)
}

func parseTableTemplate(t string) ([]tablePart, error) {
	if t == "" {
		return nil, errors.New("table must not be empty; use a name or a template such as {table}")
	}
	var parts []tablePart
	for t != "" {
		i := strings.IndexByte(t, '{')
		if i < 0 {
			parts = append(parts, tablePart{lit: t})
			break
		}
		if i > 0 {
			parts = append(parts, tablePart{lit: t[:i]})
		}
		j := strings.IndexByte(t[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("table template %q: unclosed {", t)
		}
		v := t[i+1 : i+j]
		switch v {
		case "topic", "db", "schema", "table":
		default:
			return nil, fmt.Errorf("table template: unknown variable {%s}; use {topic}, {db}, {schema} or {table}", v)
		}
		parts = append(parts, tablePart{v: v})
		t = t[i+j+1:]
	}
	return parts, nil
}

// tableName renders the table template for a record.
func (s *settings) tableName(rec *cdc.Record) (string, error) {
	var b strings.Builder
	for _, p := range s.table {
		var v string
		switch p.v {
		case "":
			b.WriteString(p.lit)
			continue
		case "topic":
			v = rec.Topic
		case "db":
			v = rec.Source.DB
		case "schema":
			v = rec.Source.Schema
		case "table":
			v = rec.Source.Table
		}
		if v == "" {
			return "", fmt.Errorf("table template {%s} is empty for a record of topic %s", p.v, rec.Topic)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// redactErr renders err with the DSN's password removed.
func redactErr(err error, dsn string) string {
	msg := err.Error()
	if cfg, perr := pgx.ParseConfig(dsn); perr == nil && cfg.Password != "" {
		msg = strings.ReplaceAll(msg, cfg.Password, "xxxxx")
	}
	return msg
}
