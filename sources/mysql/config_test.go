package mysql

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type collectDecoder struct{ cfg Config }

func (f collectDecoder) Decode(out any) error { *out.(*Config) = f.cfg; return nil }
func (f collectDecoder) Errorf(key, format string, args ...any) error {
	return errors.New(key + ": " + sprintf(format, args...))
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	neg := -time.Second
	valid := Config{Host: "h", User: "u", ServerID: 1, TopicPrefix: "p"}
	tests := []struct {
		name string
		edit func(*Config)
		want []string // keys named in the error; none for a valid config
	}{
		{name: "valid", edit: func(*Config) {}},
		{name: "missing required", edit: func(c *Config) { *c = Config{} }, want: []string{"host:", "user:", "server_id:", "topic_prefix:"}},
		{name: "bad regexes", edit: func(c *Config) { c.IncludeTables = []string{"a(("}; c.ExcludeTables = []string{"[z"} }, want: []string{"include_tables:", "exclude_tables:"}},
		{name: "bad enums", edit: func(c *Config) { c.SnapshotMode = "always"; c.DecimalHandling = "float" }, want: []string{"snapshot_mode:", "decimal_handling:"}},
		{name: "bad numbers", edit: func(c *Config) { c.Port = 70000; c.SnapshotChunkRows = -1; c.HeartbeatInterval = &neg }, want: []string{"port:", "snapshot_chunk_rows:", "heartbeat_interval:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid
			cfg.Password = "s3cret"
			tt.edit(&cfg)
			s, err := New(collectDecoder{cfg}, "x", nil)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if s.cfg.Port != 3306 || s.cfg.SnapshotMode != SnapshotInitial || s.cfg.DecimalHandling != DecimalString || s.cfg.SnapshotChunkRows != 10000 || s.heartbeat != 10*time.Second {
					t.Errorf("defaults not applied: %+v", s.cfg)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error leaks the password")
			}
		})
	}
}

func TestFilter(t *testing.T) {
	t.Parallel()
	s, err := New(collectDecoder{Config{Host: "h", User: "u", ServerID: 1, TopicPrefix: "p",
		IncludeTables: []string{`shop\..*`, `crm\.customers`}, ExcludeTables: []string{`shop\.tmp_.*`}}}, "x", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		db, table string
		want      bool
	}{
		{"shop", "orders", true}, {"shop", "tmp_x", false}, {"crm", "customers", true},
		{"crm", "customers2", false}, {"xshop", "orders", false}, {"mysql", "user", false},
	} {
		if got := s.filter.match(tt.db, tt.table); got != tt.want {
			t.Errorf("match(%s.%s) = %v, want %v", tt.db, tt.table, got, tt.want)
		}
	}
}

func TestMissingPrivileges(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ grants, want string }{
		{"GRANT ALL PRIVILEGES ON *.* TO `ROOT`@`%`", ""},
		{"GRANT SELECT, RELOAD, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `CDC`@`%`", ""},
		{"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `CDC`@`%`", ""},
		{"GRANT SELECT ON *.* TO `CDC`@`%`", "REPLICATION SLAVE, REPLICATION CLIENT"},
		{"GRANT USAGE ON *.* TO `CDC`@`%`\nGRANT REPLICATION SLAVE ON *.* TO `CDC`@`%`", "REPLICATION CLIENT"},
	} {
		if got := strings.Join(missingPrivileges(tt.grants), ", "); got != tt.want {
			t.Errorf("%q: missing %q, want %q", tt.grants, got, tt.want)
		}
	}
}

func TestServerProblems(t *testing.T) {
	t.Parallel()
	ok := map[string]string{"log_bin": "ON", "binlog_format": "ROW", "binlog_row_image": "FULL", "binlog_row_metadata": "FULL"}
	if p := serverProblems(ok); len(p) != 0 {
		t.Fatalf("good settings reported: %v", p)
	}
	for _, tt := range []struct{ key, value, want string }{
		{"log_bin", "OFF", "log_bin"},
		{"binlog_format", "STATEMENT", "set binlog_format=ROW"},
		{"binlog_format", "MIXED", "binlog_format is MIXED"},
		{"binlog_row_image", "MINIMAL", "set binlog_row_image=FULL"},
		{"binlog_row_metadata", "MINIMAL", "set binlog_row_metadata=FULL"},
	} {
		vars := map[string]string{}
		for k, v := range ok {
			vars[k] = v
		}
		vars[tt.key] = tt.value
		p := strings.Join(serverProblems(vars), "; ")
		if !strings.Contains(p, tt.want) {
			t.Errorf("%s=%s: problems %q lack %q", tt.key, tt.value, p, tt.want)
		}
	}
}
