package servers

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// fakeTB records Skip and Fatal instead of ending the test goroutine. Any
// other testing.TB method panics on the nil embedded interface, so a test
// notices when the package starts to call one.
type fakeTB struct {
	testing.TB
	skipped bool
	fataled bool
	msg     string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Skip(args ...any) {
	f.skipped = true
	f.msg = fmt.Sprint(args...)
}

func (f *fakeTB) Fatal(args ...any) {
	f.fataled = true
	f.msg = fmt.Sprint(args...)
}

// mapEnv is a getenv over a map.
func mapEnv(m map[string]string) getenv {
	return func(k string) string { return m[k] }
}

// clearEnv makes every variable the package reads empty, which it treats as
// unset, for the rest of the test.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{
		EnvMySQLAddr, EnvMySQLDSN, EnvMySQLRootDSN, EnvMySQLPort,
		EnvPostgresDSN, EnvPostgresAddr, EnvPostgresPort,
		EnvRedisAddr, EnvRedisPort, EnvRequire,
	} {
		t.Setenv(k, "")
	}
}

// closedAddr returns a loopback address on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// openAddr returns a loopback address on which a listener accepts TCP
// connections (the kernel completes them; nothing reads) until the test ends.
func openAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

type kind struct {
	name      string // in messages
	service   string // scripts/services.sh name
	addrVar   string // variable that names the address
	portVar   string // variable that changes the default port
	unsetNote string // source note when nothing is set
	addrOf    func(testing.TB) string
}

func kinds() []kind {
	return []kind{
		{
			name: "MariaDB", service: "mariadb", addrVar: EnvMySQLAddr, portVar: EnvMySQLPort,
			unsetNote: "(CONNECTD_MYSQL_ADDR unset)",
			addrOf:    func(tb testing.TB) string { return MySQL(tb).Addr },
		},
		{
			name: "PostgreSQL", service: "postgres", addrVar: EnvPostgresAddr, portVar: EnvPostgresPort,
			unsetNote: "(CONNECTD_PG_DSN unset)",
			addrOf:    func(tb testing.TB) string { return Postgres(tb).Addr },
		},
		{
			name: "Redis", service: "redis", addrVar: EnvRedisAddr, portVar: EnvRedisPort,
			unsetNote: "(CONNECTD_REDIS_ADDR unset)",
			addrOf:    func(tb testing.TB) string { return Redis(tb).Addr },
		},
	}
}

func TestMissingServerSkipsOrFails(t *testing.T) {
	for _, k := range kinds() {
		for _, tc := range []struct {
			name    string
			require string
			fatal   bool
		}{
			{name: "require unset", require: "", fatal: false},
			{name: "require 0", require: "0", fatal: false},
			{name: "require false", require: "false", fatal: false},
			{name: "require 1", require: "1", fatal: true},
			{name: "require true", require: "true", fatal: true},
		} {
			t.Run(k.service+"/"+tc.name, func(t *testing.T) {
				clearEnv(t)
				addr := closedAddr(t)
				t.Setenv(k.addrVar, addr)
				t.Setenv(EnvRequire, tc.require)

				f := &fakeTB{}
				start := time.Now()
				got := k.addrOf(f)
				elapsed := time.Since(start)

				if got != "" {
					t.Errorf("returned address %q for a missing server, want empty", got)
				}
				if f.fataled != tc.fatal || f.skipped == tc.fatal {
					t.Fatalf("skipped=%v fataled=%v, want fatal=%v (msg %q)", f.skipped, f.fataled, tc.fatal, f.msg)
				}
				for _, want := range []string{
					k.name + " not running on " + addr,
					"(from " + k.addrVar + ")",
					"run scripts/services.sh start " + k.service,
					"README test command",
				} {
					if !strings.Contains(f.msg, want) {
						t.Errorf("message %q does not contain %q", f.msg, want)
					}
				}
				if tc.fatal && !strings.HasPrefix(f.msg, EnvRequire+" is set: ") {
					t.Errorf("fatal message %q does not name %s", f.msg, EnvRequire)
				}
				// A refused dial on loopback is immediate; allow for a busy machine.
				if elapsed > 3*ProbeTimeout {
					t.Errorf("probe of a closed port took %v, want well under %v", elapsed, 3*ProbeTimeout)
				}
			})
		}
	}
}

func TestMissingServerOnDefaultPortNamesUnsetVariable(t *testing.T) {
	for _, k := range kinds() {
		t.Run(k.service, func(t *testing.T) {
			clearEnv(t)
			addr := closedAddr(t)
			_, port, _ := net.SplitHostPort(addr)
			t.Setenv(k.portVar, port)

			f := &fakeTB{}
			k.addrOf(f)
			if !f.skipped || f.fataled {
				t.Fatalf("skipped=%v fataled=%v, want a skip (msg %q)", f.skipped, f.fataled, f.msg)
			}
			want := k.name + " not running on 127.0.0.1:" + port + " " + k.unsetNote +
				": run scripts/services.sh start " + k.service + ", or use the README test command"
			if !strings.HasPrefix(f.msg, want) {
				t.Errorf("message %q\ndoes not start with %q", f.msg, want)
			}
		})
	}
}

func TestRunningServerIsReturned(t *testing.T) {
	for _, k := range kinds() {
		t.Run(k.service, func(t *testing.T) {
			clearEnv(t)
			t.Setenv(EnvRequire, "1")
			addr := openAddr(t)
			t.Setenv(k.addrVar, addr)

			f := &fakeTB{}
			if got := k.addrOf(f); got != addr {
				t.Errorf("address %q, want %q", got, addr)
			}
			if f.skipped || f.fataled {
				t.Errorf("skipped=%v fataled=%v (msg %q), want neither", f.skipped, f.fataled, f.msg)
			}
		})
	}
}

func TestMalformedVariableFailsEvenWithoutRequire(t *testing.T) {
	clearEnv(t)
	t.Setenv(EnvMySQLDSN, "cdc:s3cret@unix(/run/mysqld.sock)/")
	f := &fakeTB{}
	MySQL(f)
	if !f.fataled {
		t.Fatalf("skipped=%v fataled=%v, want fatal (msg %q)", f.skipped, f.fataled, f.msg)
	}
	if !strings.Contains(f.msg, EnvMySQLDSN) || strings.Contains(f.msg, "s3cret") {
		t.Errorf("message %q should name %s and hide the password", f.msg, EnvMySQLDSN)
	}
}

func TestMySQLConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    MySQLInfo
		source  string
		wantErr string
	}{
		{
			name:   "defaults",
			want:   MySQLInfo{Addr: "127.0.0.1:13306", User: "cdc", Password: "cdc", RootUser: "root", RootPassword: "root"},
			source: "CONNECTD_MYSQL_ADDR unset",
		},
		{
			name:   "port override",
			env:    map[string]string{EnvMySQLPort: "23306"},
			want:   MySQLInfo{Addr: "127.0.0.1:23306", User: "cdc", Password: "cdc", RootUser: "root", RootPassword: "root"},
			source: "CONNECTD_MYSQL_ADDR unset",
		},
		{
			name: "services.sh env output",
			env: map[string]string{
				EnvMySQLAddr:    "127.0.0.1:13306",
				EnvMySQLDSN:     "cdc:cdc@tcp(127.0.0.1:13306)/",
				EnvMySQLRootDSN: "root:root@tcp(127.0.0.1:13306)/",
			},
			want:   MySQLInfo{Addr: "127.0.0.1:13306", User: "cdc", Password: "cdc", RootUser: "root", RootPassword: "root"},
			source: "from CONNECTD_MYSQL_ADDR",
		},
		{
			name:   "address from DSN",
			env:    map[string]string{EnvMySQLDSN: "u:p@tcp(db:3306)/x?parseTime=true"},
			want:   MySQLInfo{Addr: "db:3306", User: "u", Password: "p", RootUser: "root", RootPassword: "root"},
			source: "from CONNECTD_MYSQL_DSN",
		},
		{
			name:   "password with @ and /",
			env:    map[string]string{EnvMySQLDSN: "u:p@ss/w@tcp(h:1)/db", EnvMySQLRootDSN: "admin:@tcp(h:1)/"},
			want:   MySQLInfo{Addr: "h:1", User: "u", Password: "p@ss/w", RootUser: "admin", RootPassword: ""},
			source: "from CONNECTD_MYSQL_DSN",
		},
		{
			name:   "address variable wins over DSN",
			env:    map[string]string{EnvMySQLAddr: "a:1", EnvMySQLDSN: "u:p@tcp(b:2)/"},
			want:   MySQLInfo{Addr: "a:1", User: "u", Password: "p", RootUser: "root", RootPassword: "root"},
			source: "from CONNECTD_MYSQL_ADDR",
		},
		{
			name:    "no slash",
			env:     map[string]string{EnvMySQLDSN: "u:secret@tcp(h:1)"},
			wantErr: "missing '/'",
		},
		{
			name:    "unix socket",
			env:     map[string]string{EnvMySQLRootDSN: "root:secret@unix(/tmp/s.sock)/"},
			wantErr: "want tcp(host:port)",
		},
		{
			name:    "address without port",
			env:     map[string]string{EnvMySQLAddr: "localhost"},
			wantErr: "parsing CONNECTD_MYSQL_ADDR",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, source, err := mysqlConfig(mapEnv(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || source != tc.source {
				t.Errorf("got %+v (%s), want %+v (%s)", got, source, tc.want, tc.source)
			}
		})
	}
}

func TestPostgresConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		env      map[string]string
		wantDSN  string
		wantAddr string
		source   string
		wantErr  string
	}{
		{
			name:     "defaults",
			wantDSN:  "postgres://cdc:cdc@127.0.0.1:15432/connectd_test?sslmode=disable",
			wantAddr: "127.0.0.1:15432",
			source:   "CONNECTD_PG_DSN unset",
		},
		{
			name:     "port override",
			env:      map[string]string{EnvPostgresPort: "25432"},
			wantDSN:  "postgres://cdc:cdc@127.0.0.1:25432/connectd_test?sslmode=disable",
			wantAddr: "127.0.0.1:25432",
			source:   "CONNECTD_PG_DSN unset",
		},
		{
			name:     "URL",
			env:      map[string]string{EnvPostgresDSN: "postgresql://u:p@db.example:6000/x"},
			wantDSN:  "postgresql://u:p@db.example:6000/x",
			wantAddr: "db.example:6000",
			source:   "from CONNECTD_PG_DSN",
		},
		{
			name:     "URL without port",
			env:      map[string]string{EnvPostgresDSN: "postgres://u@db/x"},
			wantDSN:  "postgres://u@db/x",
			wantAddr: "db:5432",
			source:   "from CONNECTD_PG_DSN",
		},
		{
			name:     "keyword/value",
			env:      map[string]string{EnvPostgresDSN: "host=10.0.0.1 port=6432 user=cdc dbname=x"},
			wantDSN:  "host=10.0.0.1 port=6432 user=cdc dbname=x",
			wantAddr: "10.0.0.1:6432",
			source:   "from CONNECTD_PG_DSN",
		},
		{
			name:     "address variable wins",
			env:      map[string]string{EnvPostgresDSN: "host=/run/postgresql", EnvPostgresAddr: "127.0.0.1:5433"},
			wantDSN:  "host=/run/postgresql",
			wantAddr: "127.0.0.1:5433",
			source:   "from CONNECTD_PG_ADDR",
		},
		{
			name:    "unix socket host",
			env:     map[string]string{EnvPostgresDSN: "host=/run/postgresql"},
			wantErr: "set CONNECTD_PG_ADDR",
		},
		{
			name:    "malformed URL",
			env:     map[string]string{EnvPostgresDSN: "postgres://u:secret@[::1/x"},
			wantErr: "malformed postgres URL",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, source, err := postgresConfig(mapEnv(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.DSN != tc.wantDSN || got.Addr != tc.wantAddr || source != tc.source {
				t.Errorf("got %+v (%s), want DSN %q addr %q (%s)", got, source, tc.wantDSN, tc.wantAddr, tc.source)
			}
		})
	}
}

func TestRedisConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    string
		wantErr bool
	}{
		{name: "defaults", want: "127.0.0.1:16379"},
		{name: "port override", env: map[string]string{EnvRedisPort: "26379"}, want: "127.0.0.1:26379"},
		{name: "address", env: map[string]string{EnvRedisAddr: "[::1]:6379"}, want: "[::1]:6379"},
		{name: "address without port", env: map[string]string{EnvRedisAddr: "redis"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, _, err := redisConfig(mapEnv(tc.env))
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if got.Addr != tc.want {
				t.Errorf("address %q, want %q", got.Addr, tc.want)
			}
		})
	}
}

func TestRequired(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		value string
		want  bool
	}{
		{"", false}, {"0", false}, {"false", false}, {"FALSE", false}, {"no", false}, {" off ", false},
		{"1", true}, {"true", true}, {"yes", true}, {"ci", true},
	} {
		if got := required(mapEnv(map[string]string{EnvRequire: tc.value})); got != tc.want {
			t.Errorf("%s=%q: required %v, want %v", EnvRequire, tc.value, got, tc.want)
		}
	}
}

func TestMySQLInfoDSN(t *testing.T) {
	t.Parallel()
	i := MySQLInfo{Addr: "127.0.0.1:13306", User: "cdc", Password: "cdc", RootUser: "root", RootPassword: "root"}
	if got, want := i.DSN("connectd_test_x"), "cdc:cdc@tcp(127.0.0.1:13306)/connectd_test_x"; got != want {
		t.Errorf("DSN = %q, want %q", got, want)
	}
	if got, want := i.RootDSN(""), "root:root@tcp(127.0.0.1:13306)/"; got != want {
		t.Errorf("RootDSN = %q, want %q", got, want)
	}
}
