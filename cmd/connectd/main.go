// Command connectd runs change-data-capture pipelines: sources → Kafka →
// sinks, configured in YAML. See the README for the commands.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/configs"
	"github.com/connectd/connectd/internal/kafkautil"
	"github.com/connectd/connectd/offsets"
	"github.com/connectd/connectd/runtime"
	"github.com/connectd/connectd/runtime/broker"
	"github.com/connectd/connectd/sinks/file"
	"github.com/connectd/connectd/sources/generator"
)

// Exit codes.
const (
	exitOK        = 0
	exitError     = 1
	exitBadConfig = 2
	exitSignal    = 130
)

const usage = `connectd — change data capture into Kafka, and lean views out of it

Usage:
  connectd run -c pipeline.yaml              run a worker (standalone)
  connectd validate -c pipeline.yaml         check a config; print every problem with file:line:col
  connectd offsets get <connector> -c FILE   print a source's stored position as JSON
  connectd broker --data-dir DIR [--listen 127.0.0.1:9092]
                                             run only the embedded Kafka-protocol broker
  connectd version

Common flags: --log-level debug|info|warn|error (default info), --log-format text|json
`

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitBadConfig
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(rest, stdout, stderr)
	case "validate":
		return cmdValidate(rest, stdout, stderr)
	case "offsets":
		return cmdOffsets(rest, stdout, stderr)
	case "broker":
		return cmdBroker(rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "connectd", version)
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "connectd: unknown command %q\n\n%s", cmd, usage)
	return exitBadConfig
}

// common holds the flags every command shares.
type common struct {
	config    string
	logLevel  string
	logFormat string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "c", "", "pipeline YAML file")
	fs.StringVar(&c.config, "config", "", "pipeline YAML file")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
}

func (c *common) logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.logLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch c.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", c.logFormat)
}

// parseArgs parses flags that may come before or after positional
// arguments, returning the positional ones.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("connectd "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// registry lists the connector and transform types this binary ships.
func registry(stdout io.Writer) *runtime.Registry {
	reg := runtime.NewRegistry()
	reg.Source("generator", func(c cdc.ConfigDecoder, env runtime.Env) (cdc.Source, error) {
		s, err := generator.New(c, env.Name)
		if err != nil {
			return nil, err
		}
		return s, nil
	})
	reg.Sink("file", func(c cdc.ConfigDecoder, env runtime.Env) (cdc.Sink, error) {
		s, err := file.New(c, stdout)
		if err != nil {
			return nil, err
		}
		return s, nil
	})
	registerMySQL(reg)
	registerPostgres(reg)
	registerRedis(reg)
	registerPostgresSink(reg)
	registerTransforms(reg)
	return reg
}

// loadPipeline loads and checks a pipeline, printing every problem.
func loadPipeline(path string, reg *runtime.Registry, stderr io.Writer) (*configs.Pipeline, bool) {
	if path == "" {
		fmt.Fprintln(stderr, "connectd: no config given: use -c pipeline.yaml")
		return nil, false
	}
	p, err := configs.Load(path, os.LookupEnv)
	if p != nil {
		// Check connector types and configs even when the file has other
		// problems, so one run reports everything.
		err = errors.Join(err, reg.Check(p, nil))
	}
	if err != nil {
		printProblems(stderr, err)
		return nil, false
	}
	return p, true
}

func printProblems(w io.Writer, err error) {
	probs := configs.Problems(err)
	slices.SortStableFunc(probs, func(a, b *configs.Error) int {
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line - b.Pos.Line
		}
		return a.Pos.Col - b.Pos.Col
	})
	if len(probs) == 0 {
		fmt.Fprintln(w, err)
		return
	}
	for _, p := range probs {
		fmt.Fprintln(w, p)
	}
	fmt.Fprintf(w, "%d problem(s) found\n", len(probs))
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	var c common
	fs := newFlagSet("validate", stderr)
	c.register(fs)
	if _, err := parseArgs(fs, args); err != nil {
		return exitBadConfig
	}
	p, ok := loadPipeline(c.config, registry(io.Discard), stderr)
	if !ok {
		return exitBadConfig
	}
	fmt.Fprintf(stdout, "%s: ok (%d sources, %d sinks)\n", c.config, len(p.Sources), len(p.Sinks))
	return exitOK
}

// kafkaConn returns the cluster to use: the configured brokers (checked
// with bounded retries), or an embedded broker started on the data
// directory. stop releases what was started.
func kafkaConn(ctx context.Context, p *configs.Pipeline, log *slog.Logger) (conn kafkautil.Conn, stop func(), err error) {
	conn.ClientID = p.Kafka.ClientID
	if len(p.Kafka.Brokers) > 0 {
		conn.Brokers = p.Kafka.Brokers
		err := kafkautil.Retry(ctx, 6, 500*time.Millisecond, 8*time.Second, func(ctx context.Context) error {
			err := kafkautil.Reachable(ctx, conn.Brokers)
			if err != nil {
				log.Warn("kafka not reachable yet; retrying", "brokers", conn.Addr(), "err", err)
			}
			return err
		})
		if err != nil {
			return conn, nil, err
		}
		return conn, func() {}, nil
	}
	dir := filepath.Join(p.Worker.DataDir, "kafka")
	b, err := broker.Start(broker.Options{DataDir: dir, Listen: p.Kafka.EmbeddedListen, Partitions: p.Kafka.TopicPartitions, Logger: log})
	if err != nil {
		return conn, nil, err
	}
	_ = os.WriteFile(filepath.Join(dir, "ADDR"), []byte(b.Addr()+"\n"), 0o644)
	log.Info("no kafka.brokers configured: started the embedded Kafka-protocol broker; set kafka.brokers to use a real cluster",
		"addr", b.Addr(), "data_dir", dir)
	conn.Brokers = []string{b.Addr()}
	return conn, b.Close, nil
}

// offsetStore opens the configured offset store.
func offsetStore(ctx context.Context, p *configs.Pipeline, conn kafkautil.Conn) (interface {
	runtime.OffsetStore
	List(context.Context) ([]offsets.Entry, error)
	Close() error
}, error) {
	switch p.Worker.Offsets.Store {
	case "file":
		return offsets.OpenFile(p.Worker.Offsets.Path)
	default:
		var s *offsets.KafkaStore
		err := kafkautil.Retry(ctx, 5, 500*time.Millisecond, 5*time.Second, func(ctx context.Context) error {
			var err error
			s, err = offsets.OpenKafka(ctx, conn, p.Worker.Offsets.Topic)
			return err
		})
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	var c common
	var cpuProfile string
	fs := newFlagSet("run", stderr)
	c.register(fs)
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file until exit")
	if _, err := parseArgs(fs, args); err != nil {
		return exitBadConfig
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "connectd:", err)
			return exitError
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "connectd:", err)
			return exitError
		}
		defer pprof.StopCPUProfile()
	}
	log, err := c.logger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "connectd:", err)
		return exitBadConfig
	}
	reg := registry(stdout)
	p, ok := loadPipeline(c.config, reg, stderr)
	if !ok {
		return exitBadConfig
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		s := <-sigs
		log.Info("signal received: flushing, committing and stopping; send it again to exit at once", "signal", s.String())
		cancel()
		s = <-sigs
		log.Warn("second signal: exiting now without committing", "signal", s.String())
		os.Exit(exitSignal)
	}()

	conn, stopKafka, err := kafkaConn(ctx, p, log)
	if err != nil {
		log.Error("cannot reach Kafka", "err", err)
		return exitError
	}
	defer stopKafka()
	store, err := offsetStore(ctx, p, conn)
	if err != nil {
		log.Error("cannot open the offset store", "store", p.Worker.Offsets.Store, "err", err)
		return exitError
	}
	defer store.Close()

	w, err := runtime.New(runtime.Options{Pipeline: p, Registry: reg, Kafka: conn, Offsets: store, Logger: log})
	if err != nil {
		printProblems(stderr, err)
		return exitBadConfig
	}
	log.Info("connectd started", "version", version, "worker", p.Worker.Name, "sources", len(p.Sources), "sinks", len(p.Sinks), "kafka", conn.Addr())
	if err := w.Run(ctx); err != nil {
		log.Error("worker stopped with an error", "err", err)
		return exitError
	}
	log.Info("connectd stopped cleanly")
	return exitOK
}

func cmdOffsets(args []string, stdout, stderr io.Writer) int {
	var c common
	fs := newFlagSet("offsets", stderr)
	c.register(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return exitBadConfig
	}
	if len(pos) != 2 || pos[0] != "get" {
		fmt.Fprintln(stderr, "usage: connectd offsets get <connector> -c pipeline.yaml")
		return exitBadConfig
	}
	name := pos[1]
	log, err := c.logger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "connectd:", err)
		return exitBadConfig
	}
	reg := registry(io.Discard)
	p, ok := loadPipeline(c.config, reg, stderr)
	if !ok {
		return exitBadConfig
	}
	key, err := reg.OffsetKey(p, name)
	if err != nil {
		fmt.Fprintln(stderr, "connectd:", err)
		return exitBadConfig
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, stopKafka, err := offsetsConn(ctx, p, log)
	if err != nil {
		fmt.Fprintln(stderr, "connectd:", err)
		return exitError
	}
	defer stopKafka()
	store, err := offsetStore(ctx, p, conn)
	if err != nil {
		fmt.Fprintln(stderr, "connectd: opening the offset store:", err)
		return exitError
	}
	defer store.Close()
	position, err := store.Get(ctx, key)
	if err != nil {
		fmt.Fprintln(stderr, "connectd:", err)
		return exitError
	}
	fmt.Fprintln(stdout, offsetsJSON(key, position))
	return exitOK
}

// offsetsConn reaches Kafka for a one-off command: the configured brokers,
// the embedded broker of a running worker (its address is in the data
// directory), or an embedded broker started just for the command.
func offsetsConn(ctx context.Context, p *configs.Pipeline, log *slog.Logger) (kafkautil.Conn, func(), error) {
	if len(p.Kafka.Brokers) == 0 && p.Worker.Offsets.Store == "kafka" {
		dir := filepath.Join(p.Worker.DataDir, "kafka")
		b, err := broker.Start(broker.Options{DataDir: dir, Logger: log})
		if errors.Is(err, broker.ErrLocked) {
			addr, rerr := os.ReadFile(filepath.Join(dir, "ADDR"))
			if rerr != nil {
				return kafkautil.Conn{}, nil, fmt.Errorf("%w; and its address is unreadable: %v", err, rerr)
			}
			return kafkautil.Conn{Brokers: []string{strings.TrimSpace(string(addr))}, ClientID: p.Kafka.ClientID}, func() {}, nil
		}
		if err != nil {
			return kafkautil.Conn{}, nil, err
		}
		return kafkautil.Conn{Brokers: []string{b.Addr()}, ClientID: p.Kafka.ClientID}, b.Close, nil
	}
	if p.Worker.Offsets.Store == "file" {
		return kafkautil.Conn{}, func() {}, nil
	}
	return kafkaConn(ctx, p, log)
}

// offsetsJSON renders a stored position as Kafka Connect's GET
// /connectors/{name}/offsets does.
func offsetsJSON(key offsets.Key, pos cdc.Position) string {
	if pos == nil {
		return `{"offsets":[]}`
	}
	// Kafka Connect shows the source partition, not the whole offset key.
	type entry struct {
		Partition map[string]string `json:"partition"`
		Offset    json.RawMessage   `json:"offset"`
	}
	out, _ := json.Marshal(struct {
		Offsets []entry `json:"offsets"`
	}{[]entry{{Partition: map[string]string{"server": key.Server}, Offset: json.RawMessage(pos)}}})
	return string(out)
}

func cmdBroker(args []string, stdout, stderr io.Writer) int {
	var c common
	var dataDir, listen string
	var syncWrites bool
	fs := newFlagSet("broker", stderr)
	c.register(fs)
	fs.StringVar(&dataDir, "data-dir", "", "directory for topics, offsets and groups (required)")
	fs.StringVar(&listen, "listen", "127.0.0.1:9092", "host:port to listen on (port 0 picks one)")
	fs.BoolVar(&syncWrites, "sync", false, "fsync every produced batch")
	if _, err := parseArgs(fs, args); err != nil {
		return exitBadConfig
	}
	if dataDir == "" {
		fmt.Fprintln(stderr, "connectd broker: --data-dir is required")
		return exitBadConfig
	}
	log, err := c.logger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, "connectd:", err)
		return exitBadConfig
	}
	b, err := broker.Start(broker.Options{DataDir: dataDir, Listen: listen, SyncWrites: syncWrites, Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, "connectd broker:", err)
		return exitError
	}
	_ = os.WriteFile(filepath.Join(dataDir, "ADDR"), []byte(b.Addr()+"\n"), 0o644)
	fmt.Fprintf(stdout, "listening on %s\n", b.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	b.Close()
	return exitOK
}
