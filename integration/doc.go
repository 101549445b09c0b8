// Package integration holds end-to-end tests that run the connectd binary
// as a user would, against real servers: Kafka-protocol brokers (kfake, in
// their own process), and the MariaDB, PostgreSQL and Redis servers that
// scripts/services.sh starts. Tests whose servers are absent skip with a
// message naming the server and the command that starts it, unless
// CONNECTD_REQUIRE_SERVERS=1 (set by CI), which makes absence a failure.
package integration
