#!/usr/bin/env bash
# redis-cluster.sh starts, stops and describes a local Redis Cluster of
# three masters (no replicas) on loopback, for the redis sink's cluster-mode
# tests. Every file lives under one state directory.
#
# Usage: scripts/redis-cluster.sh start|stop|status|env
#
#   start   Start the three nodes (redis-server --cluster-enabled yes) and,
#           on a fresh state directory, join them with
#           redis-cli --cluster create. Idempotent: running nodes are left
#           alone. Waits until CLUSTER INFO says cluster_state:ok.
#   stop    SIGTERM the nodes, a bounded wait, then SIGKILL. The state
#           directory is removed, so the next start makes a fresh cluster.
#   status  One line per node; exits 3 when a node is down or the cluster
#           is not ok.
#   env     `export CONNECTD_REDIS_CLUSTER_ADDRS=...` when the cluster is up,
#           for eval "$(scripts/redis-cluster.sh env)" before go test.
#
# Environment:
#   CONNECTD_REDIS_CLUSTER_DIR    state directory (default /tmp/connectd-redis-cluster)
#   CONNECTD_REDIS_CLUSTER_PORT   first port (default 17000; nodes use it and the
#                                 next two; cluster bus ports are +10000)
#
# Needs redis-server and redis-cli (apt package redis-server, installed by
# scripts/services.sh start redis).
set -euo pipefail

readonly HOST=127.0.0.1
STATE_DIR="${CONNECTD_REDIS_CLUSTER_DIR:-/tmp/connectd-redis-cluster}"
FIRST_PORT="${CONNECTD_REDIS_CLUSTER_PORT:-17000}"
if ! [[ $FIRST_PORT =~ ^[0-9]+$ ]] || ((FIRST_PORT < 1 || FIRST_PORT + 2 > 55535)); then
	echo "redis-cluster: bad CONNECTD_REDIS_CLUSTER_PORT '$FIRST_PORT'" >&2
	exit 2
fi
PORTS=("$FIRST_PORT" "$((FIRST_PORT + 1))" "$((FIRST_PORT + 2))")
readonly READY_TIMEOUT=30 STOP_TIMEOUT=15

log() { printf 'redis-cluster: %s\n' "$*" >&2; }
die() {
	printf 'redis-cluster: error: %s\n' "$*" >&2
	exit 1
}

# pid_alive PID: a live process (a zombie counts as dead: PID 1 here reaps late).
pid_alive() {
	local stat state
	[[ ${1:-} =~ ^[0-9]+$ ]] || return 1
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	state=${stat##*) }
	state=${state%% *}
	[[ $state != Z && $state != X ]]
}

node_pid() {
	local pid=""
	[[ -r $STATE_DIR/$1/redis.pid ]] && pid=$(head -n 1 "$STATE_DIR/$1/redis.pid" 2>/dev/null || true)
	printf '%s' "${pid//[^0-9]/}"
}
cli() { timeout 5 redis-cli -h "$HOST" -p "$@"; }
node_answers() { [[ $(cli "$1" ping 2>/dev/null) == PONG ]]; }
cluster_ok() { cli "${PORTS[0]}" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; }

start_node() {
	local port=$1 dir="$STATE_DIR/$1" pid deadline
	pid=$(node_pid "$port")
	if pid_alive "$pid" && node_answers "$port"; then
		log "node $port: already running (pid $pid)"
		return 0
	fi
	if node_answers "$port"; then
		die "port $HOST:$port answers but is not a node of $STATE_DIR; stop it or set CONNECTD_REDIS_CLUSTER_PORT"
	fi
	mkdir -p "$dir"
	redis-server --bind "$HOST" --port "$port" --cluster-enabled yes \
		--cluster-config-file "$dir/nodes.conf" --cluster-node-timeout 2000 \
		--save '' --appendonly no --dir "$dir" --daemonize yes \
		--pidfile "$dir/redis.pid" --logfile "$dir/redis.log" </dev/null >/dev/null 2>&1 9>&- ||
		die "node $port: redis-server failed to start (log: $dir/redis.log)"
	deadline=$((SECONDS + READY_TIMEOUT))
	until node_answers "$port"; do
		((SECONDS < deadline)) || die "node $port: not answering after ${READY_TIMEOUT}s (log: $dir/redis.log)"
		sleep 0.1
	done
	log "node $port: ready (pid $(node_pid "$port"))"
}

cmd_start() {
	if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
		die "redis-server/redis-cli not found: run scripts/services.sh start redis (installs them)"
	fi
	mkdir -p "$STATE_DIR"
	exec 9>>"$STATE_DIR/.lock"
	flock -w 60 9 || die "another redis-cluster.sh holds $STATE_DIR/.lock"
	local p addrs=() deadline
	for p in "${PORTS[@]}"; do
		start_node "$p"
		addrs+=("$HOST:$p")
	done
	if ! cli "${PORTS[0]}" cluster info 2>/dev/null | grep -q '^cluster_known_nodes:3'; then
		log "creating the cluster: ${addrs[*]}"
		redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes \
			>"$STATE_DIR/create.log" 2>&1 || {
			cat "$STATE_DIR/create.log" >&2
			die "redis-cli --cluster create failed"
		}
	fi
	deadline=$((SECONDS + READY_TIMEOUT))
	until cluster_ok; do
		((SECONDS < deadline)) || die "cluster_state is not ok after ${READY_TIMEOUT}s"
		sleep 0.2
	done
	log "cluster ok on ${addrs[*]} (state in $STATE_DIR)"
}

cmd_stop() {
	local p pid deadline
	for p in "${PORTS[@]}"; do
		pid=$(node_pid "$p")
		if ! pid_alive "$pid"; then
			log "node $p: not running"
			continue
		fi
		kill -TERM "$pid" 2>/dev/null || true
		deadline=$((SECONDS + STOP_TIMEOUT))
		while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
		if pid_alive "$pid"; then
			log "node $p: still running after ${STOP_TIMEOUT}s; SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		log "node $p: stopped"
	done
	rm -rf -- "$STATE_DIR"
}

cmd_status() {
	local p rc=0 pid
	for p in "${PORTS[@]}"; do
		pid=$(node_pid "$p")
		if pid_alive "$pid" && node_answers "$p"; then
			printf 'node %s:%s running (pid %s)\n' "$HOST" "$p" "$pid"
		else
			printf 'node %s:%s stopped\n' "$HOST" "$p"
			rc=3
		fi
	done
	if cluster_ok; then echo "cluster ok"; else
		echo "cluster not ok"
		rc=3
	fi
	return "$rc"
}

cmd_env() {
	cluster_ok || return 0
	printf "export CONNECTD_REDIS_CLUSTER_ADDRS='%s:%s,%s:%s,%s:%s'\n" \
		"$HOST" "${PORTS[0]}" "$HOST" "${PORTS[1]}" "$HOST" "${PORTS[2]}"
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env ;;
*)
	echo "usage: $0 start|stop|status|env  (state: $STATE_DIR, ports ${PORTS[*]})" >&2
	exit 2
	;;
esac
