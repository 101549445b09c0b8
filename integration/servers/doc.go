// Package servers tells integration tests where the real servers started by
// scripts/services.sh are, and skips tests clearly when they are absent.
//
// Each of [MySQL], [Postgres] and [Redis] returns the connection facts for one
// server, or ends the calling test:
//
//	func TestSnapshot(t *testing.T) {
//		db := servers.MySQL(t) // skips when MariaDB is not running
//		conn, err := sql.Open("mysql", db.DSN("connectd_test_snapshot"))
//		...
//	}
//
// Where the servers are comes from the environment that
// `scripts/services.sh env` prints (eval "$(scripts/services.sh env)"):
//
//	CONNECTD_MYSQL_ADDR      host:port of MariaDB
//	CONNECTD_MYSQL_DSN       cdc:cdc@tcp(127.0.0.1:13306)/ (user and password)
//	CONNECTD_MYSQL_ROOT_DSN  root:root@tcp(127.0.0.1:13306)/
//	CONNECTD_PG_DSN          postgres://cdc:cdc@127.0.0.1:15432/connectd_test?sslmode=disable
//	CONNECTD_PG_ADDR         host:port of PostgreSQL (else taken from the DSN)
//	CONNECTD_REDIS_ADDR      host:port of Redis
//
// An unset (or empty) variable falls back to what services.sh starts by
// default: 127.0.0.1 on port 13306, 15432 or 16379 (or CONNECTD_MYSQL_PORT,
// CONNECTD_PG_PORT, CONNECTD_REDIS_PORT), users cdc/cdc and root/root.
//
// Before returning, each function dials the server's address over TCP with a
// [ProbeTimeout] limit, whether the address came from the environment or
// from the defaults. The probe proves that something listens there, not that
// it speaks the right protocol: a protocol handshake could miss a short
// deadline on a loaded machine and skip a test for no reason. When nothing
// answers, the test is skipped with a message that names the server, the
// address, where the address came from and the command that starts the
// server. When CONNECTD_REQUIRE_SERVERS is set to anything but "", "0" or
// "false" (CI sets it to 1), the test fails with t.Fatal instead, so that CI
// can never pass by skipping its integration tests. A malformed variable
// always fails the test.
//
// The functions keep no state and only read the environment, so they are
// safe to call from parallel tests and once per test; every call probes
// again, so a test that restarts a server sees it come back.
package servers
