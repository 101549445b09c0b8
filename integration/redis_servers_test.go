package integration

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/connectd/connectd/integration/servers"
)

// EnvRedisClusterAddrs lists the seed nodes of the Redis Cluster that
// scripts/redis-cluster.sh starts (comma-separated host:port).
const EnvRedisClusterAddrs = "CONNECTD_REDIS_CLUSTER_ADDRS"

// redisServer is a redis-server of the test's own, for faults that must
// not disturb the shared server (kill -9 and restart). By default it keeps
// an append-only file fsynced on every write, so a kill loses nothing it
// acknowledged.
type redisServer struct {
	t    testing.TB
	Addr string
	dir  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// startRedisServer starts a redis-server; args are appended to its command
// line (e.g. "--appendonly", "no").
func startRedisServer(t testing.TB, args ...string) *redisServer {
	t.Helper()
	servers.Redis(t) // skips, or fails when servers are required, without the project's Redis
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not on PATH: run scripts/services.sh start redis")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &redisServer{t: t, Addr: l.Addr().String(), dir: t.TempDir(), args: args}
	l.Close()
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *redisServer) start() {
	r.t.Helper()
	_, port, _ := net.SplitHostPort(r.Addr)
	args := append([]string{"--bind", "127.0.0.1", "--port", port, "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--dir", r.dir, "--daemonize", "no"}, r.args...)
	r.cmd = exec.Command("redis-server", args...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(r.cmd, r.done)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", r.Addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not start", r.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the exit.
func (r *redisServer) kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// redisCluster returns the seed nodes of the Redis Cluster of
// scripts/redis-cluster.sh, or skips (fails when servers are required).
func redisCluster(t testing.TB) []string {
	t.Helper()
	v := os.Getenv(EnvRedisClusterAddrs)
	msg := "Redis Cluster not running: run scripts/redis-cluster.sh start and eval \"$(scripts/redis-cluster.sh env)\""
	required := func() bool {
		switch strings.ToLower(strings.TrimSpace(os.Getenv(servers.EnvRequire))) {
		case "", "0", "false", "no", "off":
			return false
		}
		return true
	}
	if v == "" {
		if required() {
			t.Fatalf("%s is set but %s is empty: %s", servers.EnvRequire, EnvRedisClusterAddrs, msg)
		}
		t.Skipf("%s unset: %s", EnvRedisClusterAddrs, msg)
	}
	addrs := strings.Split(v, ",")
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, servers.ProbeTimeout)
		if err != nil {
			if required() {
				t.Fatalf("%s: %v", msg, err)
			}
			t.Skipf("%s: %v", msg, err)
		}
		c.Close()
	}
	return addrs
}
