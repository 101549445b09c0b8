package servers

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// The tests below talk to the servers that scripts/services.sh started, with
// just enough of each protocol to show that the right server answers at the
// address this package returns. They skip when the servers are absent.

// dialLive connects to addr with a deadline for the whole exchange.
func dialLive(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return conn
}

func TestLiveMySQLGreets(t *testing.T) {
	info := MySQL(t)
	conn := dialLive(t, info.Addr)

	// The server speaks first: a packet (3-byte length, 1-byte sequence)
	// holding protocol version 10 and a NUL-terminated version string.
	var header [4]byte
	if _, err := io.ReadFull(conn, header[:]); err != nil {
		t.Fatalf("reading handshake header: %v", err)
	}
	n := int(header[0]) | int(header[1])<<8 | int(header[2])<<16
	payload := make([]byte, n)
	if _, err := io.ReadFull(conn, payload); err != nil {
		t.Fatalf("reading handshake: %v", err)
	}
	if len(payload) < 2 || payload[0] != 10 {
		t.Fatalf("handshake %q is not MySQL protocol 10", payload)
	}
	version, _, _ := bytes.Cut(payload[1:], []byte{0})
	t.Logf("%s at %s", version, info.Addr)
	if !strings.Contains(string(version), "MariaDB") {
		t.Errorf("server version %q: want MariaDB (scripts/services.sh starts MariaDB)", version)
	}
}

func TestLivePostgresAnswersSSLRequest(t *testing.T) {
	info := Postgres(t)
	conn := dialLive(t, info.Addr)

	// SSLRequest: length 8, code 80877103; the server answers one byte.
	var req [8]byte
	binary.BigEndian.PutUint32(req[0:4], 8)
	binary.BigEndian.PutUint32(req[4:8], 80877103)
	if _, err := conn.Write(req[:]); err != nil {
		t.Fatalf("writing SSLRequest: %v", err)
	}
	var reply [1]byte
	if _, err := io.ReadFull(conn, reply[:]); err != nil {
		t.Fatalf("reading SSLRequest reply: %v", err)
	}
	if reply[0] != 'N' && reply[0] != 'S' {
		t.Fatalf("SSLRequest reply %q, want 'N' or 'S'", reply[0])
	}
}

func TestLiveRedisPongs(t *testing.T) {
	info := Redis(t)
	conn := dialLive(t, info.Addr)

	if _, err := io.WriteString(conn, "PING\r\n"); err != nil {
		t.Fatalf("writing PING: %v", err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("reading PING reply: %v", err)
	}
	if line != "+PONG\r\n" {
		t.Fatalf("PING reply %q, want +PONG", line)
	}
}
