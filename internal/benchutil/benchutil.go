// Package benchutil holds what connectd's benchmarks share: a process's
// peak resident set and a worker's /metrics read as numbers.
package benchutil

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// PeakRSSMB returns the peak resident set (VmHWM) of process pid in MiB;
// pid 0 means the calling process. It returns 0 when it cannot tell.
func PeakRSSMB(pid int) float64 {
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// Scrape reads a connectd worker's /metrics at addr (host:port) and
// returns its connectd_* series by their full name with labels, e.g.
// `connectd_sink_records_total{connector="out"}`.
func Scrape(addr string) (map[string]float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 4<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "connectd_") {
			i := strings.LastIndexByte(line, ' ')
			f, _ := strconv.ParseFloat(line[i+1:], 64)
			m[line[:i]] = f
		}
	}
	return m, sc.Err()
}
