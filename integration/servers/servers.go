package servers

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// Names of the environment variables this package reads.
const (
	EnvMySQLAddr    = "CONNECTD_MYSQL_ADDR"
	EnvMySQLDSN     = "CONNECTD_MYSQL_DSN"
	EnvMySQLRootDSN = "CONNECTD_MYSQL_ROOT_DSN"
	EnvMySQLPort    = "CONNECTD_MYSQL_PORT"
	EnvPostgresDSN  = "CONNECTD_PG_DSN"
	EnvPostgresAddr = "CONNECTD_PG_ADDR"
	EnvPostgresPort = "CONNECTD_PG_PORT"
	EnvRedisAddr    = "CONNECTD_REDIS_ADDR"
	EnvRedisPort    = "CONNECTD_REDIS_PORT"
	EnvRequire      = "CONNECTD_REQUIRE_SERVERS"
)

// Defaults of scripts/services.sh.
const (
	defaultHost          = "127.0.0.1"
	defaultMySQLPort     = "13306"
	defaultPostgresPort  = "15432"
	defaultRedisPort     = "16379"
	defaultMySQLUser     = "cdc"
	defaultMySQLPassword = "cdc"
	defaultMySQLRoot     = "root"
	defaultMySQLRootPass = "root"
	defaultPostgresDB    = "connectd_test"
)

// ProbeTimeout bounds the TCP dial that checks whether a server listens.
const ProbeTimeout = 300 * time.Millisecond

// MySQLInfo holds the connection facts of a MariaDB (MySQL protocol) server.
type MySQLInfo struct {
	Addr         string // host:port
	User         string // has replication grants and ALL on connectd_test%
	Password     string
	RootUser     string
	RootPassword string
}

// DSN returns a go-sql-driver/mysql DSN for User on database db ("" for none).
func (i MySQLInfo) DSN(db string) string {
	return fmt.Sprintf("%s:%s@tcp(%s)/%s", i.User, i.Password, i.Addr, db)
}

// RootDSN returns a go-sql-driver/mysql DSN for RootUser on database db ("" for none).
func (i MySQLInfo) RootDSN(db string) string {
	return fmt.Sprintf("%s:%s@tcp(%s)/%s", i.RootUser, i.RootPassword, i.Addr, db)
}

// PostgresInfo holds the connection facts of a PostgreSQL server.
type PostgresInfo struct {
	DSN  string // postgres:// URL of a role with LOGIN REPLICATION SUPERUSER
	Addr string // host:port
}

// RedisInfo holds the connection facts of a Redis server.
type RedisInfo struct {
	Addr string // host:port
}

// getenv is os.Getenv, or a fake in tests.
type getenv func(string) string

// MySQL returns the connection facts of the MariaDB server, or skips the test
// (fails it when CONNECTD_REQUIRE_SERVERS is set) when none answers.
func MySQL(t testing.TB) MySQLInfo {
	t.Helper()
	info, source, err := mysqlConfig(os.Getenv)
	if err != nil {
		t.Fatal(err)
		return MySQLInfo{}
	}
	if !reachable(t, os.Getenv, "MariaDB", "mariadb", info.Addr, source) {
		return MySQLInfo{}
	}
	return info
}

// Postgres returns the connection facts of the PostgreSQL server, or skips
// the test (fails it when CONNECTD_REQUIRE_SERVERS is set) when none answers.
func Postgres(t testing.TB) PostgresInfo {
	t.Helper()
	info, source, err := postgresConfig(os.Getenv)
	if err != nil {
		t.Fatal(err)
		return PostgresInfo{}
	}
	if !reachable(t, os.Getenv, "PostgreSQL", "postgres", info.Addr, source) {
		return PostgresInfo{}
	}
	return info
}

// Redis returns the connection facts of the Redis server, or skips the test
// (fails it when CONNECTD_REQUIRE_SERVERS is set) when none answers.
func Redis(t testing.TB) RedisInfo {
	t.Helper()
	info, source, err := redisConfig(os.Getenv)
	if err != nil {
		t.Fatal(err)
		return RedisInfo{}
	}
	if !reachable(t, os.Getenv, "Redis", "redis", info.Addr, source) {
		return RedisInfo{}
	}
	return info
}

// reachable probes addr and, when nothing answers, skips or fails t with a
// message naming the server, the address, its source and the start command.
func reachable(t testing.TB, env getenv, name, service, addr, source string) bool {
	t.Helper()
	err := probe(addr)
	if err == nil {
		return true
	}
	msg := fmt.Sprintf("%s not running on %s (%s): run scripts/services.sh start %s, or use the README test command (probe: %v)",
		name, addr, source, service, err)
	if required(env) {
		t.Fatal(EnvRequire + " is set: " + msg)
	} else {
		t.Skip(msg)
	}
	return false
}

// probe dials addr over TCP within ProbeTimeout.
func probe(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, ProbeTimeout)
	if err != nil {
		return err
	}
	return conn.Close()
}

// required reports whether a missing server must fail the test.
func required(env getenv) bool {
	switch strings.ToLower(strings.TrimSpace(env(EnvRequire))) {
	case "", "0", "false", "no", "off":
		return false
	default:
		return true
	}
}

// checkAddr checks that the value of variable name is host:port.
func checkAddr(name, addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("parsing %s: want host:port: %w", name, err)
	}
	return nil
}

func defaultAddr(env getenv, portVar, port string) string {
	if p := env(portVar); p != "" {
		port = p
	}
	return net.JoinHostPort(defaultHost, port)
}

// mysqlConfig resolves the MariaDB facts from the environment and says where
// the address came from.
func mysqlConfig(env getenv) (MySQLInfo, string, error) {
	info := MySQLInfo{
		User:         defaultMySQLUser,
		Password:     defaultMySQLPassword,
		RootUser:     defaultMySQLRoot,
		RootPassword: defaultMySQLRootPass,
	}
	var dsnAddr string
	if dsn := env(EnvMySQLDSN); dsn != "" {
		user, password, addr, err := parseMySQLDSN(dsn)
		if err != nil {
			return MySQLInfo{}, "", fmt.Errorf("parsing %s: %w", EnvMySQLDSN, err)
		}
		info.User, info.Password, dsnAddr = user, password, addr
	}
	if dsn := env(EnvMySQLRootDSN); dsn != "" {
		user, password, _, err := parseMySQLDSN(dsn)
		if err != nil {
			return MySQLInfo{}, "", fmt.Errorf("parsing %s: %w", EnvMySQLRootDSN, err)
		}
		info.RootUser, info.RootPassword = user, password
	}
	switch {
	case env(EnvMySQLAddr) != "":
		info.Addr = env(EnvMySQLAddr)
		if err := checkAddr(EnvMySQLAddr, info.Addr); err != nil {
			return MySQLInfo{}, "", err
		}
		return info, "from " + EnvMySQLAddr, nil
	case dsnAddr != "":
		info.Addr = dsnAddr
		return info, "from " + EnvMySQLDSN, nil
	default:
		info.Addr = defaultAddr(env, EnvMySQLPort, defaultMySQLPort)
		return info, EnvMySQLAddr + " unset", nil
	}
}

// parseMySQLDSN splits a go-sql-driver/mysql DSN,
// [user[:password]@][tcp[(addr)]]/dbname[?params], the way that driver does:
// the last '/' ends the address, the last '@' before it ends the password.
func parseMySQLDSN(dsn string) (user, password, addr string, err error) {
	slash := strings.LastIndexByte(dsn, '/')
	if slash < 0 {
		return "", "", "", fmt.Errorf("DSN %q: missing '/' before the database name", redactMySQL(dsn))
	}
	head := dsn[:slash]
	if at := strings.LastIndexByte(head, '@'); at >= 0 {
		user, password, _ = strings.Cut(head[:at], ":")
		head = head[at+1:]
	}
	switch {
	case head == "" || head == "tcp":
		// The driver's default address; keep the caller's.
	case strings.HasPrefix(head, "tcp(") && strings.HasSuffix(head, ")"):
		addr = head[len("tcp(") : len(head)-1]
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return "", "", "", fmt.Errorf("DSN %q: address %q: %w", redactMySQL(dsn), addr, err)
		}
	default:
		return "", "", "", fmt.Errorf("DSN %q: want tcp(host:port), got %q", redactMySQL(dsn), head)
	}
	return user, password, addr, nil
}

// redactMySQL hides the password of a MySQL DSN for error messages.
func redactMySQL(dsn string) string {
	slash := strings.LastIndexByte(dsn, '/')
	if slash < 0 {
		slash = len(dsn)
	}
	at := strings.LastIndexByte(dsn[:slash], '@')
	if at < 0 {
		return dsn
	}
	user, _, hasPassword := strings.Cut(dsn[:at], ":")
	if !hasPassword {
		return dsn
	}
	return user + ":xxxxx" + dsn[at:]
}

// postgresConfig resolves the PostgreSQL facts from the environment and says
// where the address came from.
func postgresConfig(env getenv) (PostgresInfo, string, error) {
	dsn, source := env(EnvPostgresDSN), "from "+EnvPostgresDSN
	if dsn == "" {
		addr := defaultAddr(env, EnvPostgresPort, defaultPostgresPort)
		dsn = "postgres://cdc:cdc@" + addr + "/" + defaultPostgresDB + "?sslmode=disable"
		source = EnvPostgresDSN + " unset"
	}
	if addr := env(EnvPostgresAddr); addr != "" {
		if err := checkAddr(EnvPostgresAddr, addr); err != nil {
			return PostgresInfo{}, "", err
		}
		return PostgresInfo{DSN: dsn, Addr: addr}, "from " + EnvPostgresAddr, nil
	}
	addr, err := postgresAddr(dsn)
	if err != nil {
		return PostgresInfo{}, "", fmt.Errorf("parsing %s: %w", EnvPostgresDSN, err)
	}
	return PostgresInfo{DSN: dsn, Addr: addr}, source, nil
}

// postgresAddr returns host:port of a postgres:// URL or a keyword/value
// connection string; PostgreSQL's defaults are localhost and 5432.
func postgresAddr(dsn string) (string, error) {
	host, port := "", ""
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", errors.New("malformed postgres URL") // url's error repeats the password
		}
		host, port = u.Hostname(), u.Port()
	} else {
		for _, field := range strings.Fields(dsn) {
			key, value, ok := strings.Cut(field, "=")
			if !ok {
				return "", fmt.Errorf("keyword/value connection string: %q has no '='", key)
			}
			switch key {
			case "host":
				host = value
			case "port":
				port = value
			}
		}
	}
	if strings.HasPrefix(host, "/") || strings.Contains(host, ",") {
		return "", fmt.Errorf("host %q is not a single TCP host: set %s", host, EnvPostgresAddr)
	}
	if host == "" {
		host = "localhost"
	}
	if port == "" {
		port = "5432"
	}
	return net.JoinHostPort(host, port), nil
}

// redisConfig resolves the Redis facts from the environment and says where
// the address came from.
func redisConfig(env getenv) (RedisInfo, string, error) {
	if addr := env(EnvRedisAddr); addr != "" {
		if err := checkAddr(EnvRedisAddr, addr); err != nil {
			return RedisInfo{}, "", err
		}
		return RedisInfo{Addr: addr}, "from " + EnvRedisAddr, nil
	}
	return RedisInfo{Addr: defaultAddr(env, EnvRedisPort, defaultRedisPort)}, EnvRedisAddr + " unset", nil
}
