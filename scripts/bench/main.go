// Command bench runs connectd's benchmark scenarios against the real
// binary and prints one table: events/s (median of the runs, with min and
// max) and connectd's peak RSS. scripts/bench.sh builds and runs it.
//
// Scenario "generator → embedded Kafka → file": the generator emits
// -events change events (about 300 bytes each on the wire) as fast as it
// can; the embedded broker (in connectd's own process) stores them; the
// file sink consumes them into /dev/null. The clock runs from process
// start until the sink has committed every record the source produced
// (tombstones included), so it covers start-up, produce, broker and
// consume.
package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/connectd/connectd/internal/benchutil"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("bin", "./connectd", "connectd binary")
	events := flag.Int("events", 1_000_000, "events per run")
	runs := flag.Int("runs", 3, "runs per scenario")
	out := flag.String("out", "", "also write the table (markdown) to this file")
	flag.Parse()
	if err := run(*bin, *events, *runs, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type result struct {
	seconds float64
	rssMB   float64
	records float64
}

// scenario is one row of the table.
type scenario struct {
	name       string
	transforms string // YAML list of source transforms, "" for none
	target     string
}

const chain5 = `
    transforms:
      - {type: filter, when: 'record.tombstone || record.op == "d" || record.after.qty >= 0'}
      - {type: unwrap}
      - {type: replace_field, exclude: [payload]}
      - {type: route, pattern: 'bench\.(.*)', replacement: 'views.$1'}
      - {type: set, field: qty2, expression: 'row.qty * 2'}`

func run(bin string, events, runs int, out string) error {
	scenarios := []scenario{
		{name: "generator → embedded Kafka → file (/dev/null)", target: "≥ 200000"},
		{name: "same, with 5 transforms (filter, unwrap, replace_field, route, set)", transforms: chain5, target: "cost ≤ 15%"},
	}
	host, _ := os.Hostname()
	var b strings.Builder
	fmt.Fprintf(&b, "| scenario | events | runs | events/s median (min–max) | target | peak RSS MB median (max) | target |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|\n")
	var base float64
	for si, sc := range scenarios {
		var rs []result
		for i := range runs {
			r, err := genToFile(bin, events, sc.transforms)
			if err != nil {
				return fmt.Errorf("%s, run %d: %w", sc.name, i+1, err)
			}
			fmt.Fprintf(os.Stderr, "%s, run %d: %d events in %.2fs = %.0f events/s, peak RSS %.0f MB\n", sc.name, i+1, events, r.seconds, float64(events)/r.seconds, r.rssMB)
			rs = append(rs, r)
		}
		rates := make([]float64, len(rs))
		rss := make([]float64, len(rs))
		for i, r := range rs {
			rates[i] = float64(events) / r.seconds
			rss[i] = r.rssMB
		}
		slices.Sort(rates)
		slices.Sort(rss)
		target := sc.target
		if si == 0 {
			base = median(rates)
		} else {
			target = fmt.Sprintf("%s (measured %.0f%%)", sc.target, 100*(1-median(rates)/base))
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %.0f (%.0f–%.0f) | %s | %.0f (%.0f) | ≤ 300 |\n",
			sc.name, events, runs, median(rates), rates[0], rates[len(rates)-1], target, median(rss), rss[len(rss)-1])
	}
	fmt.Fprintf(&b, "\nmachine: %s, %d cores (shared; numbers are noisy), %s\n", host, numCPU(), time.Now().UTC().Format(time.RFC3339))
	fmt.Print(b.String())
	if out != "" {
		return os.WriteFile(out, []byte(b.String()), 0o644)
	}
	return nil
}

func median(v []float64) float64 {
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func genToFile(bin string, events int, transforms string) (result, error) {
	topic := "bench.inventory.items"
	if transforms != "" {
		topic = "views.inventory.items"
	}
	dir, err := os.MkdirTemp("", "connectd-bench")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	httpAddr, err := freePort()
	if err != nil {
		return result{}, err
	}
	cfg := fmt.Sprintf(`worker: {data_dir: %s/data, http: %q}
sources:
  - name: gen
    type: generator
    config: {topic_prefix: bench, keys: 100000, total: %d, batch_size: 2000}%s
sinks:
  - name: out
    type: file
    topics: [%s]
    config: {path: /dev/null}
`, dir, httpAddr, events, transforms, topic)
	path := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return result{}, err
	}
	start := time.Now()
	cmd := exec.Command(bin, "run", "-c", path, "--log-level", "warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var peak float64
	for {
		if ctx.Err() != nil {
			return result{}, fmt.Errorf("not done within 5 minutes")
		}
		if kb := benchutil.PeakRSSMB(cmd.Process.Pid); kb > peak {
			peak = kb
		}
		m, err := benchutil.Scrape(httpAddr)
		if err == nil {
			src := m[`connectd_source_records_total{connector="gen"}`]
			prod := m[`connectd_source_records_produced_total{connector="gen"}`]
			snk := m[`connectd_sink_records_total{connector="out"}`]
			if prod >= float64(events) && prod == src && snk >= prod {
				return result{seconds: time.Since(start).Seconds(), rssMB: max(peak, benchutil.PeakRSSMB(cmd.Process.Pid)), records: snk}, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}
