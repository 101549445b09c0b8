// Package kafkatest starts Kafka-protocol brokers for tests: in-process
// (fast, dies with the test) or as a separate `connectd broker` process (so
// a test can kill -9 connectd, or the broker, independently).
package kafkatest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connectd/connectd/internal/kafkautil"
	"github.com/connectd/connectd/runtime/broker"
)

// Start starts an in-process broker that is closed when the test ends.
// dataDir may be "" for a memory-only broker.
func Start(t testing.TB, dataDir string) *broker.Broker {
	t.Helper()
	b, err := broker.Start(broker.Options{DataDir: dataDir})
	if err != nil {
		t.Fatalf("starting embedded broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// Conn returns a connection description for addr.
func Conn(addr string) kafkautil.Conn {
	return kafkautil.Conn{Brokers: []string{addr}, ClientID: "connectd-test"}
}

// RepoRoot returns the module root, found from this file's location.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate kafkatest source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// BuildBinary builds cmd/connectd into dir and returns the binary's path.
func BuildBinary(dir string) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	bin := filepath.Join(dir, "connectd")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/connectd")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building connectd: %v\n%s", err, out)
	}
	return bin, nil
}

// Process is a broker running as its own `connectd broker` process.
type Process struct {
	Bin     string
	DataDir string
	Addr    string // fixed across restarts
	cmd     *exec.Cmd
	waitErr chan error
}

// StartProcess starts `bin broker` on dataDir, listening on listen
// ("127.0.0.1:0" picks a port, which restarts then keep). It is stopped
// when the test ends.
func StartProcess(t testing.TB, bin, dataDir, listen string) *Process {
	t.Helper()
	p := &Process{Bin: bin, DataDir: dataDir, Addr: listen}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill() })
	return p
}

func (p *Process) start() error {
	cmd := exec.Command(p.Bin, "broker", "--data-dir", p.DataDir, "--listen", p.Addr)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting broker process: %w", err)
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				line <- a
			}
		}
	}()
	p.cmd = cmd
	p.waitErr = make(chan error, 1)
	go func() { p.waitErr <- cmd.Wait() }()
	select {
	case a := <-line:
		p.Addr = a
		return nil
	case err := <-p.waitErr:
		return fmt.Errorf("broker process exited at start: %v", err)
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return fmt.Errorf("broker process did not report its address within 30s")
	}
}

// Kill sends SIGKILL and waits for the process to exit.
func (p *Process) Kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.waitErr
	p.cmd = nil
}

// Stop sends SIGTERM (the broker persists its state) and waits.
func (p *Process) Stop() error {
	if p.cmd == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.waitErr:
		p.cmd = nil
		return err
	case <-time.After(20 * time.Second):
		p.Kill()
		return fmt.Errorf("broker did not stop within 20s; killed")
	}
}

// Restart starts the process again on the same data dir and address.
func (p *Process) Restart() error {
	if p.cmd != nil {
		return fmt.Errorf("broker still running")
	}
	return p.start()
}

// Pause freezes the broker process (SIGSTOP): connections stay open but
// nothing is answered, as with a hung broker.
func (p *Process) Pause() {
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(syscall.SIGSTOP)
	}
}

// Continue resumes a paused broker (SIGCONT).
func (p *Process) Continue() {
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
	}
}
