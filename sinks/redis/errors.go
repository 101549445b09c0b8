package redis

import (
	"errors"
	"net"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// ErrRedisCluster means addr points at a node of a Redis Cluster, where
// multi-key transactions across slots fail: configure cluster_addrs.
var ErrRedisCluster = errors.New("addr is a Redis Cluster node")

// transient reports whether err is a fault that retrying after a pause
// can fix: a lost connection, a restarting or busy server, or a write
// refused for memory (OOM under maxmemory) until memory is freed.
func transient(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, net.ErrClosed) {
		return true
	}
	if goredis.IsOOMError(err) || goredis.IsLoadingError(err) || goredis.IsReadOnlyError(err) {
		return true
	}
	msg := err.Error()
	for _, p := range []string{"BUSY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "EXECABORT", "OOM", "LOADING", "NOREPLICAS"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return strings.Contains(msg, "EOF") || strings.Contains(msg, "connection reset") ||
		strings.Contains(msg, "connection refused") || strings.Contains(msg, "broken pipe") ||
		strings.Contains(msg, "use of closed network connection") || strings.Contains(msg, "i/o timeout")
}

// terminalRedis reports whether err is a Redis answer that no retry can
// change: bad credentials, a missing ACL permission, or a key holding a
// value of another type.
func terminalRedis(err error) bool {
	if err == nil {
		return false
	}
	if goredis.IsAuthError(err) || goredis.IsPermissionError(err) {
		return true
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "WRONGTYPE") || strings.HasPrefix(msg, "WRONGPASS") ||
		strings.HasPrefix(msg, "NOAUTH") || strings.HasPrefix(msg, "NOPERM") ||
		strings.Contains(msg, "invalid password") || strings.Contains(msg, "invalid username-password")
}
