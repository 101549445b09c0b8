#!/usr/bin/env bash
# services.sh installs, starts, stops and describes the real servers that
# connectd's integration tests run against: MariaDB (binlog source),
# PostgreSQL 15 (logical replication source) and Redis 7. They listen on
# 127.0.0.1 only, on non-default ports, and keep every file (data, logs,
# pid files, sockets) under one state directory.
#
# Usage: scripts/services.sh start|stop|status|env [mariadb] [postgres] [redis]
#
#   start   Install missing packages from apt, then start the named servers
#           (default: all three). A server that is already running and
#           answering is left alone, so start is idempotent. Data survives a
#           stop/start; delete the state directory for a fresh one.
#   stop    Stop the named servers: SIGTERM (pg_ctl -m fast for PostgreSQL),
#           a bounded wait, then SIGKILL.
#   status  One line per server: name, port, state. Exits 3 when any named
#           server is not running.
#   env     `export` lines for the servers that are running, for
#           eval "$(scripts/services.sh env)" in a shell or before go test.
#
# Environment:
#   CONNECTD_SERVICES_DIR  state directory (default /tmp/connectd-services)
#   CONNECTD_MYSQL_PORT    MariaDB port (default 13306)
#   CONNECTD_PG_PORT       PostgreSQL port (default 15432)
#   CONNECTD_REDIS_PORT    Redis port (default 16379)
#
# Accounts: MariaDB cdc/cdc (replication grants, ALL on connectd_test%) and
# root/root over TCP; PostgreSQL role cdc/cdc (LOGIN REPLICATION SUPERUSER,
# trust auth on loopback) and database connectd_test; Redis without auth.
#
# start and stop need root (apt, runuser). There is no systemd here and
# package auto-start is blocked, so the servers are started directly.
set -euo pipefail

PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
umask 022 # the mysql and postgres users must reach their directories

readonly HOST=127.0.0.1
readonly ALL_SERVERS=(mariadb postgres redis)

STATE_DIR="${CONNECTD_SERVICES_DIR:-/tmp/connectd-services}"
[[ $STATE_DIR == /* ]] || STATE_DIR="$PWD/$STATE_DIR"
MYSQL_PORT="${CONNECTD_MYSQL_PORT:-13306}"
PG_PORT="${CONNECTD_PG_PORT:-15432}"
REDIS_PORT="${CONNECTD_REDIS_PORT:-16379}"

MY_DIR="$STATE_DIR/mariadb"
MY_CNF="$MY_DIR/my.cnf"
MY_DATA="$MY_DIR/data"
MY_SOCK="$MY_DIR/mariadbd.sock"
MY_PIDFILE="$MY_DIR/mariadbd.pid"
MY_LOG="$MY_DIR/mariadb.log"

PG_DIR="$STATE_DIR/postgres"
PG_DATA="$PG_DIR/data"
PG_PIDFILE="$PG_DATA/postmaster.pid"
PG_LOG="$PG_DIR/postgres.log"

REDIS_DIR="$STATE_DIR/redis"
REDIS_PIDFILE="$REDIS_DIR/redis.pid"
REDIS_LOG="$REDIS_DIR/redis.log"

APT_LOG="$STATE_DIR/apt.log"

# Bounded waits, in seconds.
readonly READY_TIMEOUT=60
readonly STOP_TIMEOUT=30
readonly KILL_TIMEOUT=10

# ---------------------------------------------------------------- helpers

log() { printf 'services: %s\n' "$*" >&2; }

die() {
	printf 'services: error: %s\n' "$*" >&2
	exit 1
}

# fail NAME LOGFILE MESSAGE... reports a failed server with the tail of its
# log file and exits non-zero.
fail() {
	local name=$1 logfile=$2
	shift 2
	printf 'services: %s: FAILED: %s\n' "$name" "$*" >&2
	if [[ -n $logfile && -s $logfile ]]; then
		printf -- '--- last 40 lines of %s ---\n' "$logfile" >&2
		tail -n 40 -- "$logfile" >&2
		printf -- '--- end of %s ---\n' "$logfile" >&2
	fi
	exit 1
}

have() { command -v "$1" >/dev/null 2>&1; }

now() { printf '%s' "${EPOCHREALTIME/./}"; } # microseconds

# since START prints the seconds elapsed since START (from now), e.g. 1.23s.
since() {
	local us=$(($(now) - $1))
	printf '%d.%02ds' $((us / 1000000)) $((us % 1000000 / 10000))
}

# read_pid FILE prints the first line of a pid file, or nothing.
read_pid() {
	local pid=""
	[[ -r $1 ]] && pid=$(head -n 1 -- "$1" 2>/dev/null || true)
	printf '%s' "${pid//[^0-9]/}"
}

# pid_alive PID [COMM] succeeds when PID is a live process (a zombie counts as
# dead: PID 1 here reaps late) and, when COMM is given, is named COMM.
pid_alive() {
	local pid=${1:-} comm=${2:-} stat state
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
	state=${stat##*) }
	state=${state%% *}
	[[ $state != Z && $state != X ]] || return 1
	[[ -z $comm || $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]]
}

# tcp_open PORT succeeds when something accepts TCP connections on HOST:PORT.
tcp_open() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
}

# listener_pid PORT prints the pid of the process listening on HOST:PORT.
listener_pid() {
	ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1
}

# wait_ready NAME LOGFILE PID CHECK... polls CHECK until it succeeds; fails
# early when process PID dies and after READY_TIMEOUT seconds.
wait_ready() {
	local name=$1 logfile=$2 pid=$3
	shift 3
	local deadline=$((SECONDS + READY_TIMEOUT))
	until "$@"; do
		if [[ -n $pid ]] && ! pid_alive "$pid"; then
			fail "$name" "$logfile" "server process $pid exited during startup"
		fi
		if ((SECONDS >= deadline)); then
			fail "$name" "$logfile" "not ready on $HOST after ${READY_TIMEOUT}s"
		fi
		sleep 0.1
	done
}

# stop_pid NAME LOGFILE PID [SIGNAL] sends SIGNAL (default TERM; "none" to
# only wait) to PID, waits STOP_TIMEOUT seconds, then SIGKILLs it and waits
# KILL_TIMEOUT seconds more.
stop_pid() {
	local name=$1 logfile=$2 pid=$3 signal=${4:-TERM} deadline
	[[ $signal == none ]] || kill -"$signal" "$pid" 2>/dev/null || true
	deadline=$((SECONDS + STOP_TIMEOUT))
	while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
	if pid_alive "$pid"; then
		log "$name: still running after ${STOP_TIMEOUT}s, sending SIGKILL to $pid"
		kill -KILL "$pid" 2>/dev/null || true
		deadline=$((SECONDS + KILL_TIMEOUT))
		while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
		if pid_alive "$pid"; then
			fail "$name" "$logfile" "process $pid survived SIGKILL"
		fi
	fi
}

# ensure_port_free NAME LOGFILE PORT fails when a process that this state
# directory did not start already holds PORT.
ensure_port_free() {
	local name=$1 logfile=$2 port=$3 pid who
	tcp_open "$port" || return 0
	pid=$(listener_pid "$port")
	who="another process"
	[[ -n $pid ]] && who="$(cat "/proc/$pid/comm" 2>/dev/null || echo '?') (pid $pid)"
	fail "$name" "" "port $HOST:$port is in use by $who that $STATE_DIR does not know;" \
		"stop it (\`$0 stop $name\` finds a server of this kind by its port) or set another port"
}

# owned_pid PIDFILE COMM PORT prints the pid of the running server: from its
# pid file, or else the listener on PORT if it is a COMM process (the state
# directory may have been deleted under a running server).
owned_pid() {
	local pid
	pid=$(read_pid "$1")
	if pid_alive "$pid" "$2"; then
		printf '%s' "$pid"
		return 0
	fi
	pid=$(listener_pid "$3")
	if pid_alive "$pid" "$2"; then
		printf '%s' "$pid"
		return 0
	fi
	return 1
}

need_root() {
	((EUID == 0)) || die "$1 needs root (apt-get, runuser); run it as root"
}

# ---------------------------------------------------------------- install

pg_bindir() {
	local d
	if [[ -x /usr/lib/postgresql/15/bin/pg_ctl ]]; then
		printf '%s' /usr/lib/postgresql/15/bin
		return 0
	fi
	d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 3 -path '*/bin/pg_ctl' 2>/dev/null | sort -V | tail -n 1)
	[[ -n $d ]] && printf '%s' "${d%/pg_ctl}"
}

pkg_installed() {
	[[ $(dpkg-query -W -f '${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

pkg_available() {
	local c
	c=$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: *//p')
	[[ -n $c && $c != "(none)" ]]
}

# ensure_packages SERVER... installs the apt packages the servers need, in one
# apt run, only when something is missing. Nice-to-haves ride along.
ensure_packages() {
	local want=() extra=() s p t0
	for s in "$@"; do
		case $s in
		mariadb)
			if ! have mariadbd || ! have mariadb-install-db || ! have mariadb || ! have mariadb-admin; then
				want+=(mariadb-server mariadb-client)
			fi
			;;
		postgres)
			if [[ -z $(pg_bindir) ]]; then want+=(postgresql); fi
			;;
		redis)
			if ! have redis-server || ! have redis-cli; then want+=(redis-server redis-tools); fi
			;;
		esac
	done
	((${#want[@]} > 0)) || return 0

	t0=$(now)
	mkdir -p "$STATE_DIR"
	log "installing ${want[*]} (apt-get; log in $APT_LOG)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=300 update >"$APT_LOG" 2>&1 ||
		fail apt "$APT_LOG" "apt-get update failed"
	for p in postgresql-contrib kcat; do
		if ! pkg_installed "$p"; then
			if pkg_available "$p"; then
				extra+=("$p")
			else
				log "optional package $p is not available from apt; skipping it"
			fi
		fi
	done
	apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends \
		"${want[@]}" "${extra[@]}" >>"$APT_LOG" 2>&1 ||
		fail apt "$APT_LOG" "apt-get install ${want[*]} ${extra[*]} failed"
	log "installed ${want[*]} ${extra[*]} in $(since "$t0")"
}

# ---------------------------------------------------------------- MariaDB

mariadb_answers() {
	# ping exits 0 for any server that answers, even with "access denied"
	# (on a fresh data dir the cdc user does not exist yet).
	timeout 5 mariadb-admin --no-defaults --protocol=TCP --host="$HOST" --port="$MYSQL_PORT" \
		--user=cdc --password=cdc --connect-timeout=2 ping >/dev/null 2>&1
}

write_my_cnf() {
	cat >"$MY_CNF" <<EOF
# Written by scripts/services.sh on every start; edits are lost.
[mysqld]
user                           = mysql
datadir                        = $MY_DATA
socket                         = $MY_SOCK
pid-file                       = $MY_PIDFILE
port                           = $MYSQL_PORT
bind-address                   = $HOST
skip-name-resolve
server_id                      = 1
log_bin                        = mariadb-bin
binlog_format                  = ROW
binlog_row_image               = FULL
binlog_row_metadata            = FULL
gtid_strict_mode               = ON
character-set-server           = utf8mb4
collation-server               = utf8mb4_general_ci
innodb_buffer_pool_size        = 128M
innodb_flush_log_at_trx_commit = 2
sync_binlog                    = 0
EOF
	chmod 0644 "$MY_CNF"
}

provision_mariadb() {
	local host
	{
		# Keep the provisioning out of the binlog that CDC tests read.
		echo "SET SESSION sql_log_bin = 0;"
		# OS root over the socket (this script), password root over TCP.
		echo "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('root');"
		echo "CREATE USER IF NOT EXISTS 'root'@'$HOST';"
		echo "ALTER USER 'root'@'$HOST' IDENTIFIED BY 'root';"
		echo "GRANT ALL PRIVILEGES ON *.* TO 'root'@'$HOST' WITH GRANT OPTION;"
		# Anonymous accounts would shadow cdc@localhost on the socket;
		# accounts by host name are ignored (and warned about) under
		# skip-name-resolve.
		echo "DROP USER IF EXISTS ''@'localhost', ''@'$(hostname)', 'root'@'$(hostname)';"
		for host in '%' "$HOST" localhost; do
			echo "CREATE USER IF NOT EXISTS 'cdc'@'$host';"
			echo "ALTER USER 'cdc'@'$host' IDENTIFIED BY 'cdc';"
			echo "GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT, LOCK TABLES ON *.* TO 'cdc'@'$host';"
			echo "GRANT ALL PRIVILEGES ON \`connectd\\_test%\`.* TO 'cdc'@'$host';"
		done
		echo "CREATE DATABASE IF NOT EXISTS connectd_test;"
	} | mariadb --no-defaults --socket="$MY_SOCK" --user=root --batch >>"$MY_LOG" 2>&1 ||
		fail mariadb "$MY_LOG" "creating users and grants failed"
}

start_mariadb() {
	local pid t0
	t0=$(now)
	pid=$(read_pid "$MY_PIDFILE")
	if pid_alive "$pid" mariadbd; then
		wait_ready mariadb "$MY_LOG" "$pid" mariadb_answers
		log "mariadb: already running (pid $pid) on $HOST:$MYSQL_PORT"
		return 0
	fi
	rm -f -- "$MY_PIDFILE"
	ensure_port_free mariadb "$MY_LOG" "$MYSQL_PORT"

	id mysql >/dev/null 2>&1 || die "mariadb: user mysql does not exist (is mariadb-server installed?)"
	mkdir -p "$MY_DIR"
	write_my_cnf
	touch "$MY_LOG"
	chown -R mysql:mysql "$MY_DIR"
	runuser -u mysql -- test -w "$MY_DIR" ||
		fail mariadb "" "user mysql cannot write $MY_DIR (is a parent directory closed to it?)"

	if [[ ! -d $MY_DATA/mysql ]]; then
		log "mariadb: initialising $MY_DATA"
		rm -rf -- "$MY_DATA"
		mariadb-install-db --defaults-file="$MY_CNF" --auth-root-authentication-method=normal \
			--skip-test-db </dev/null >>"$MY_LOG" 2>&1 9>&- ||
			fail mariadb "$MY_LOG" "mariadb-install-db failed"
	fi

	log "mariadb: starting on $HOST:$MYSQL_PORT"
	setsid mariadbd --defaults-file="$MY_CNF" </dev/null >>"$MY_LOG" 2>&1 9>&- &
	pid=$!
	wait_ready mariadb "$MY_LOG" "$pid" mariadb_answers
	provision_mariadb
	log "mariadb: ready (pid $pid) in $(since "$t0")"
}

stop_mariadb() {
	local pid
	if ! pid=$(owned_pid "$MY_PIDFILE" mariadbd "$MYSQL_PORT"); then
		rm -f -- "$MY_PIDFILE"
		log "mariadb: not running"
		return 0
	fi
	log "mariadb: stopping pid $pid"
	stop_pid mariadb "$MY_LOG" "$pid"
	rm -f -- "$MY_PIDFILE"
	log "mariadb: stopped"
}

# ---------------------------------------------------------------- PostgreSQL

PG_BIN=""

pg_answers() {
	timeout 5 "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -t 2 >/dev/null 2>&1
}

# as_postgres CMD... runs CMD as the postgres user from a directory it can read.
as_postgres() {
	(cd / && runuser -u postgres -- "$@")
}

write_pg_config() {
	cat >"$PG_DATA/connectd.conf" <<EOF
# Written by scripts/services.sh on every start; edits are lost.
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
	cat >"$PG_DATA/pg_hba.conf" <<'EOF'
# Written by scripts/services.sh on every start; edits are lost.
# TYPE  DATABASE     USER  ADDRESS       METHOD
local   all          all                 trust
local   replication  all                 trust
host    all          all   127.0.0.1/32  trust
host    replication  all   127.0.0.1/32  trust
EOF
	if ! grep -qx "include 'connectd.conf'" "$PG_DATA/postgresql.conf"; then
		printf '\n%s\n' "include 'connectd.conf'" >>"$PG_DATA/postgresql.conf"
	fi
	chown postgres:postgres "$PG_DATA/connectd.conf" "$PG_DATA/pg_hba.conf"
}

provision_postgres() {
	"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$PG_PORT" -U postgres -d postgres \
		>>"$PG_LOG" 2>&1 <<'SQL' || fail postgres "$PG_LOG" "creating role cdc and database connectd_test failed"
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'cdc') THEN
    CREATE ROLE cdc LOGIN REPLICATION SUPERUSER PASSWORD 'cdc';
  ELSE
    ALTER ROLE cdc LOGIN REPLICATION SUPERUSER PASSWORD 'cdc';
  END IF;
END
$$;
SELECT 'CREATE DATABASE connectd_test OWNER cdc'
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = 'connectd_test')\gexec
SQL
}

start_postgres() {
	local pid t0
	t0=$(now)
	PG_BIN=$(pg_bindir) || true
	[[ -n $PG_BIN ]] || die "postgres: no pg_ctl under /usr/lib/postgresql/*/bin (is postgresql installed?)"
	pid=$(read_pid "$PG_PIDFILE")
	if pid_alive "$pid" postgres; then
		wait_ready postgres "$PG_LOG" "$pid" pg_answers
		log "postgres: already running (pid $pid) on $HOST:$PG_PORT"
		return 0
	fi
	if [[ -n $pid ]]; then
		# A postmaster.pid left by a killed server: postgres itself checks
		# that no old backend still uses the data directory, but refuses to
		# start while the old pid lingers as a zombie or was reused.
		local deadline=$((SECONDS + 5))
		while [[ -e /proc/$pid ]] && ((SECONDS < deadline)); do sleep 0.1; done
		if [[ -e /proc/$pid ]]; then
			log "postgres: removing stale $PG_PIDFILE (pid $pid is not a postmaster)"
			rm -f -- "$PG_PIDFILE"
		fi
	fi
	ensure_port_free postgres "$PG_LOG" "$PG_PORT"

	mkdir -p "$PG_DIR"
	touch "$PG_LOG"
	chown postgres:postgres "$PG_DIR" "$PG_LOG"
	chmod 0755 "$PG_DIR" # the data directory below it stays 0700
	as_postgres test -w "$PG_DIR" ||
		fail postgres "" "user postgres cannot write $PG_DIR (is a parent directory closed to it?)"

	if [[ ! -f $PG_DATA/PG_VERSION ]]; then
		log "postgres: initialising $PG_DATA ($PG_BIN)"
		rm -rf -- "$PG_DATA"
		as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust --encoding=UTF8 \
			--locale=C.UTF-8 --no-sync --no-instructions </dev/null >>"$PG_LOG" 2>&1 9>&- ||
			fail postgres "$PG_LOG" "initdb failed"
	fi
	write_pg_config

	log "postgres: starting on $HOST:$PG_PORT"
	# shellcheck disable=SC2094 # pg_ctl's own messages go to the server log too
	as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$READY_TIMEOUT" start \
		</dev/null >>"$PG_LOG" 2>&1 9>&- ||
		fail postgres "$PG_LOG" "pg_ctl start failed"
	pid=$(read_pid "$PG_PIDFILE")
	wait_ready postgres "$PG_LOG" "$pid" pg_answers
	provision_postgres
	log "postgres: ready (pid $pid) in $(since "$t0")"
}

stop_postgres() {
	local pid
	PG_BIN=$(pg_bindir) || true
	if ! pid=$(owned_pid "$PG_PIDFILE" postgres "$PG_PORT"); then
		rm -f -- "$PG_PIDFILE"
		log "postgres: not running"
		return 0
	fi
	log "postgres: stopping pid $pid"
	if [[ -n $PG_BIN && -f $PG_PIDFILE ]] &&
		as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t "$STOP_TIMEOUT" stop \
			</dev/null >>"$PG_LOG" 2>&1; then
		# pg_ctl returns once postmaster.pid is gone; the process may
		# still be exiting.
		stop_pid postgres "$PG_LOG" "$pid" none
	else
		# SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for
		# replication clients).
		stop_pid postgres "$PG_LOG" "$pid" INT
	fi
	rm -f -- "$PG_PIDFILE"
	log "postgres: stopped"
}

# ---------------------------------------------------------------- Redis

redis_answers() {
	[[ $(timeout 3 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
}

start_redis() {
	local pid t0
	t0=$(now)
	pid=$(read_pid "$REDIS_PIDFILE")
	if pid_alive "$pid" redis-server; then
		wait_ready redis "$REDIS_LOG" "$pid" redis_answers
		log "redis: already running (pid $pid) on $HOST:$REDIS_PORT"
		return 0
	fi
	rm -f -- "$REDIS_PIDFILE"
	ensure_port_free redis "$REDIS_LOG" "$REDIS_PORT"
	mkdir -p "$REDIS_DIR"

	log "redis: starting on $HOST:$REDIS_PORT"
	# shellcheck disable=SC2094 # errors before daemonising go to the same log
	redis-server --bind "$HOST" --port "$REDIS_PORT" --save '' --appendonly no \
		--daemonize yes --pidfile "$REDIS_PIDFILE" --logfile "$REDIS_LOG" --dir "$REDIS_DIR" \
		</dev/null >>"$REDIS_LOG" 2>&1 9>&- ||
		fail redis "$REDIS_LOG" "redis-server failed to start"
	# The daemonised server writes its pid file shortly after the fork.
	wait_ready redis "$REDIS_LOG" "" redis_answers
	pid=$(read_pid "$REDIS_PIDFILE")
	log "redis: ready (pid ${pid:-?}) in $(since "$t0")"
}

stop_redis() {
	local pid
	if ! pid=$(owned_pid "$REDIS_PIDFILE" redis-server "$REDIS_PORT"); then
		rm -f -- "$REDIS_PIDFILE"
		log "redis: not running"
		return 0
	fi
	log "redis: stopping pid $pid"
	stop_pid redis "$REDIS_LOG" "$pid"
	rm -f -- "$REDIS_PIDFILE"
	log "redis: stopped"
}

# ---------------------------------------------------------------- status, env

# state_of SERVER prints running, unresponsive, stopped or "port busy".
state_of() {
	local pidfile comm port check
	case $1 in
	mariadb) pidfile=$MY_PIDFILE comm=mariadbd port=$MYSQL_PORT check=mariadb_answers ;;
	postgres) pidfile=$PG_PIDFILE comm=postgres port=$PG_PORT check=pg_answers ;;
	redis) pidfile=$REDIS_PIDFILE comm=redis-server port=$REDIS_PORT check=redis_answers ;;
	esac
	if owned_pid "$pidfile" "$comm" "$port" >/dev/null; then
		if "$check"; then echo running; else echo unresponsive; fi
	elif tcp_open "$port"; then
		echo "port busy (not ours)"
	else
		echo stopped
	fi
}

port_of() {
	case $1 in
	mariadb) echo "$MYSQL_PORT" ;;
	postgres) echo "$PG_PORT" ;;
	redis) echo "$REDIS_PORT" ;;
	esac
}

cmd_status() {
	local s state rc=0
	PG_BIN=$(pg_bindir) || true
	for s in "$@"; do
		state=$(state_of "$s")
		printf '%-9s %s:%-6s %s\n' "$s" "$HOST" "$(port_of "$s")" "$state"
		[[ $state == running ]] || rc=3
	done
	return "$rc"
}

cmd_env() {
	local s
	PG_BIN=$(pg_bindir) || true
	for s in "$@"; do
		[[ $(state_of "$s") == running ]] || continue
		case $s in
		mariadb)
			printf "export CONNECTD_MYSQL_ADDR='%s:%s'\n" "$HOST" "$MYSQL_PORT"
			printf "export CONNECTD_MYSQL_DSN='cdc:cdc@tcp(%s:%s)/'\n" "$HOST" "$MYSQL_PORT"
			printf "export CONNECTD_MYSQL_ROOT_DSN='root:root@tcp(%s:%s)/'\n" "$HOST" "$MYSQL_PORT"
			;;
		postgres)
			printf "export CONNECTD_PG_ADDR='%s:%s'\n" "$HOST" "$PG_PORT"
			printf "export CONNECTD_PG_DSN='postgres://cdc:cdc@%s:%s/connectd_test?sslmode=disable'\n" "$HOST" "$PG_PORT"
			;;
		redis)
			printf "export CONNECTD_REDIS_ADDR='%s:%s'\n" "$HOST" "$REDIS_PORT"
			;;
		esac
	done
}

# ---------------------------------------------------------------- main

usage() {
	cat >&2 <<EOF
usage: $0 start|stop|status|env [mariadb] [postgres] [redis]
  state dir: $STATE_DIR (CONNECTD_SERVICES_DIR)
  ports: mariadb $MYSQL_PORT, postgres $PG_PORT, redis $REDIS_PORT
         (CONNECTD_MYSQL_PORT, CONNECTD_PG_PORT, CONNECTD_REDIS_PORT)
EOF
	exit 2
}

# lock serialises start and stop between concurrent runs. Servers are started
# with fd 9 closed so that they do not inherit (and hold) the lock.
lock() {
	if [[ ! -d $STATE_DIR ]]; then
		mkdir -p "$STATE_DIR"
		chmod 0755 "$STATE_DIR"
	fi
	exec 9>>"$STATE_DIR/.lock"
	flock -w 300 9 || die "another services.sh holds $STATE_DIR/.lock"
}

main() {
	(($# >= 1)) || usage
	local cmd=$1 s p servers=()
	shift
	for s in "$@"; do
		case $s in
		mariadb | mysql) servers+=(mariadb) ;;
		postgres | postgresql | pg) servers+=(postgres) ;;
		redis) servers+=(redis) ;;
		*) die "unknown server '$s' (want mariadb, postgres or redis)" ;;
		esac
	done
	((${#servers[@]} > 0)) || servers=("${ALL_SERVERS[@]}")

	for p in "$MYSQL_PORT" "$PG_PORT" "$REDIS_PORT"; do
		if ! [[ $p =~ ^[0-9]{1,5}$ ]] || ((p < 1 || p > 65535)); then die "bad port '$p'"; fi
	done
	# Unix socket paths are limited to 107 bytes.
	((${#STATE_DIR} <= 70)) || die "CONNECTD_SERVICES_DIR is too long for unix sockets: $STATE_DIR"

	case $cmd in
	start)
		need_root start
		lock
		local t0
		t0=$(now)
		ensure_packages "${servers[@]}"
		for s in "${servers[@]}"; do "start_$s"; done
		log "started ${servers[*]} in $(since "$t0") (state in $STATE_DIR)"
		;;
	stop)
		need_root stop
		lock
		for s in "${servers[@]}"; do "stop_$s"; done
		;;
	status) cmd_status "${servers[@]}" ;;
	env) cmd_env "${servers[@]}" ;;
	-h | --help | help) usage ;;
	*) usage ;;
	esac
}

main "$@"
