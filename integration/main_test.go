package integration

import (
	"fmt"
	"os"
	"testing"

	"github.com/connectd/connectd/internal/kafkatest"
)

// connectdBin is the binary under test, built once by TestMain.
var connectdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "connectd-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	connectdBin, err = kafkatest.BuildBinary(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
