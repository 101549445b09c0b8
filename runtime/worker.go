package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/configs"
	"github.com/connectd/connectd/internal/kafkautil"
	"github.com/connectd/connectd/offsets"
)

// OffsetStore stores committed source positions.
type OffsetStore interface {
	Get(ctx context.Context, k offsets.Key) (cdc.Position, error)
	Put(ctx context.Context, k offsets.Key, pos cdc.Position) error
}

// Options configure a Worker. Zero tuning values take the defaults shown.
type Options struct {
	Pipeline *configs.Pipeline
	Registry *Registry
	// Kafka is the cluster records go through (an embedded broker's address
	// when the pipeline names none).
	Kafka   kafkautil.Conn
	Offsets OffsetStore
	Logger  *slog.Logger

	// MaxInFlight bounds source records sent but not yet acknowledged by
	// Kafka, per source (default 10,000).
	MaxInFlight int
	// ProducerBatchSize is the most records in one produce request per
	// partition (default 2,000).
	ProducerBatchSize int
	// ProducerLinger is how long a partial batch waits for more records
	// (default 2ms).
	ProducerLinger time.Duration
	// SinkBatchSize is the most messages handed to one Sink.Write
	// (default 2,000).
	SinkBatchSize int
	// SinkLinger is how long a sink waits to fill a batch once it has a
	// first message (default 5ms).
	SinkLinger time.Duration
	// RetryBackoff is the first wait before a failed task restarts,
	// doubled (with jitter) each time up to RetryBackoffMax (defaults 500ms
	// and 30s). A connector's errors.retry_timeout bounds the whole streak.
	RetryBackoff    time.Duration
	RetryBackoffMax time.Duration
}

func (o *Options) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxInFlight, 10_000)
	def(&o.ProducerBatchSize, 2_000)
	def(&o.SinkBatchSize, 2_000)
	defDur(&o.ProducerLinger, 2*time.Millisecond)
	defDur(&o.SinkLinger, 5*time.Millisecond)
	defDur(&o.RetryBackoff, 500*time.Millisecond)
	defDur(&o.RetryBackoffMax, 30*time.Second)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Worker runs the connectors of one pipeline.
type Worker struct {
	opts       Options
	log        *slog.Logger
	built      *built
	registerer prometheus.Registerer
	gatherer   prometheus.Gatherer
	metrics    *metrics
	status     *statusBoard
	topics     *topicCreator

	mu       sync.Mutex
	httpAddr string
}

// New validates the pipeline and builds its connectors without starting
// anything. The error lists every configuration problem.
func New(opts Options) (*Worker, error) {
	opts.defaults()
	if opts.Pipeline == nil || opts.Registry == nil || opts.Offsets == nil || len(opts.Kafka.Brokers) == 0 {
		return nil, errors.New("runtime: Pipeline, Registry, Offsets and Kafka.Brokers are required")
	}
	b, err := opts.Registry.build(opts.Pipeline, opts.Logger)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mx := newMetrics(reg)
	w := &Worker{
		opts: opts, log: opts.Logger, built: b,
		registerer: reg, gatherer: reg, metrics: mx, status: newStatusBoard(mx),
		topics: newTopicCreator(opts.Kafka, opts.Pipeline.Kafka.TopicPartitions),
	}
	for _, s := range b.sources {
		w.status.add(s.cfg.Name, "source")
	}
	for _, s := range b.sinks {
		w.status.add(s.cfg.Name, "sink")
	}
	return w, nil
}

// Statuses returns every connector's status, sorted by name.
func (w *Worker) Statuses() []Status { return w.status.list() }

// HTTPAddr returns the address the HTTP server listens on, once Run has
// started it ("" before, or when disabled).
func (w *Worker) HTTPAddr() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.httpAddr
}

// Run starts every connector and the HTTP server and blocks until ctx is
// done. Then it stops sources, lets in-flight records reach Kafka, commits
// positions and offsets, and closes everything, giving up after
// worker.shutdown_timeout. A clean stop returns nil; connectors that fail
// while running do not stop the worker (they show in /healthz).
func (w *Worker) Run(ctx context.Context) error {
	var srv *http.Server
	if addr := w.opts.Pipeline.Worker.HTTP; addr != "" && addr != "off" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listening for HTTP on %s: %w", addr, err)
		}
		w.mu.Lock()
		w.httpAddr = ln.Addr().String()
		w.mu.Unlock()
		srv = &http.Server{Handler: w.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		w.log.Info("http listening", "addr", ln.Addr().String(), "paths", "/healthz /metrics")
	}

	// soft is ctx: cancelling it asks tasks to stop. hard ends the grace
	// period: flushes and commits still running then are abandoned.
	hard, hardCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hardCancel()
	stopTimer := context.AfterFunc(ctx, func() {
		time.AfterFunc(time.Duration(w.opts.Pipeline.Worker.ShutdownTimeout), hardCancel)
	})
	defer stopTimer()

	g := new(errgroup.Group)
	for i := range w.built.sinks {
		bs := &w.built.sinks[i]
		g.Go(func() error {
			w.supervise(ctx, bs.cfg.Name, bs.policy.retryTimeout, func() error { return w.runSink(ctx, hard, bs) })
			return nil
		})
	}
	for i := range w.built.sources {
		bs := &w.built.sources[i]
		g.Go(func() error {
			w.supervise(ctx, bs.cfg.Name, bs.policy.retryTimeout, func() error { return w.runSource(ctx, hard, bs) })
			return nil
		})
	}
	done := make(chan struct{})
	go func() { _ = g.Wait(); close(done) }()
	// Failed connectors end their tasks early; the worker keeps serving
	// (health, metrics) until it is asked to stop.
	<-ctx.Done()
	var err error
	select {
	case <-done:
	case <-hard.Done():
		err = fmt.Errorf("shutdown: tasks still running after %s; stopping anyway", time.Duration(w.opts.Pipeline.Worker.ShutdownTimeout))
	}
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	return err
}

// supervise runs a task until ctx is done, restarting it after retryable
// errors with exponential backoff and jitter for at most retryTimeout from
// the first failure of a streak (a run that lasts longer than the longest
// backoff ends the streak), and keeps its status. Terminal errors fail the
// connector at once.
func (w *Worker) supervise(ctx context.Context, name string, retryTimeout time.Duration, run func() error) {
	attempt := 0
	backoff := w.opts.RetryBackoff
	var streakStart time.Time
	for {
		w.status.set(name, StateRunning, nil)
		started := time.Now()
		err := run()
		if ctx.Err() != nil {
			if err != nil && !errors.Is(err, context.Canceled) {
				w.log.Warn("connector stopped with an error during shutdown", "connector", name, "err", err)
			}
			w.status.set(name, StateStopped, nil)
			return
		}
		if err == nil {
			err = errors.New("task returned without an error before shutdown")
		}
		w.metrics.errors.WithLabelValues(name, "task").Inc()
		if streakStart.IsZero() || time.Since(started) > 2*w.opts.RetryBackoffMax {
			attempt, backoff, streakStart = 0, w.opts.RetryBackoff, started
		}
		if cdc.IsTerminal(err) {
			w.log.Error("connector failed", "connector", name, "err", err)
			w.status.set(name, StateFailed, err)
			return
		}
		if time.Since(streakStart)+backoff > retryTimeout {
			w.log.Error("connector failed: retries exhausted (errors.retry_timeout)", "connector", name, "err", err, "restarts", attempt, "retry_timeout", retryTimeout)
			w.status.set(name, StateFailed, fmt.Errorf("retries exhausted after %s: %w", time.Since(streakStart).Round(time.Millisecond), err))
			return
		}
		attempt++
		w.metrics.restarts.WithLabelValues(name).Inc()
		wait := jitter(backoff)
		w.log.Warn("connector failed; restarting", "connector", name, "err", err, "attempt", attempt, "backoff", wait)
		w.status.set(name, StateRestarting, err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			w.status.set(name, StateStopped, nil)
			return
		case <-t.C:
		}
		backoff = min(backoff*2, w.opts.RetryBackoffMax)
	}
}
