package redis

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/connectd/connectd/cdc"
)

// OffsetsKeyPrefix starts the name of the hash holding a sink's offsets:
// connectd:offsets:<sink>, field "topic/partition", value the offset of
// the last message applied.
const OffsetsKeyPrefix = "connectd:offsets:"

// Retry policy of transient faults inside one Write.
const (
	retryFirst = 100 * time.Millisecond
	retryMax   = 5 * time.Second
	retryFor   = 30 * time.Second
)

// Sink writes change events to Redis. See the package documentation.
type Sink struct {
	cfg        *settings
	name       string
	log        *slog.Logger
	cluster    bool
	offsetsKey string
	client     goredis.UniversalClient

	// workers apply the messages of disjoint sets of topic partitions
	// concurrently, each on its own connection: per-key order holds
	// because a key lives in one partition, and each transaction stores
	// the offsets of its own partitions only.
	workers []*worker

	mu    sync.Mutex
	execs int // successful transactions, for TestKillAfterExec

	// kill ends the process for TestKillAfterExec; sleep waits between
	// retries. Tests replace them.
	kill  func()
	sleep func(ctx context.Context, d time.Duration) error
}

var (
	_ cdc.Sink         = (*Sink)(nil)
	_ cdc.OffsetStorer = (*Sink)(nil)
)

// worker is the state of one of a Sink's concurrent writers.
type worker struct {
	*Sink
	applied     map[cdc.TopicPartition]int64 // last offset stored in Redis per partition
	truncWarned map[string]bool
	// Buffers reused from batch to batch.
	ops   []op
	rows  cdc.Row
	text  []byte
	args  []any          // arena of command arguments
	names map[string]any // field names, boxed once
}

// maxWorkers bounds the concurrent writers of a sink.
const maxWorkers = 4

// New builds a redis sink from its config block without connecting. name
// is the sink connector's name (it names the offsets hash); log may be nil.
func New(dec cdc.ConfigDecoder, name string, log *slog.Logger) (*Sink, error) {
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		return nil, err
	}
	s, err := check(cfg, dec)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	snk := &Sink{
		cfg:        s,
		name:       name,
		log:        log,
		cluster:    len(cfg.ClusterAddrs) > 0,
		offsetsKey: OffsetsKeyPrefix + name,
		kill:       killSelf,
		sleep:      sleep,
	}
	for range max(1, min(goruntime.GOMAXPROCS(0), maxWorkers)) {
		snk.workers = append(snk.workers, &worker{Sink: snk, applied: map[cdc.TopicPartition]int64{}, truncWarned: map[string]bool{}, names: map[string]any{}})
	}
	return snk, nil
}

func killSelf() {
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Kill()
	}
	select {} // SIGKILL is not delivered synchronously everywhere
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// where names the server(s) in messages (never the password).
func (s *Sink) where() string {
	if s.cluster {
		return "redis cluster " + strings.Join(s.cfg.ClusterAddrs, ",")
	}
	return fmt.Sprintf("redis %s db %d", s.cfg.Addr, s.cfg.DB)
}

// Open connects, checks the credentials and, for a standalone addr, that
// the server is not a cluster node.
func (s *Sink) Open(ctx context.Context) error {
	noMaint := &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	if s.cluster {
		s.client = goredis.NewClusterClient(&goredis.ClusterOptions{
			Addrs:                    s.cfg.ClusterAddrs,
			Password:                 s.cfg.Password,
			MaxRedirects:             8,
			DialTimeout:              5 * time.Second,
			ReadTimeout:              30 * time.Second,
			WriteTimeout:             30 * time.Second,
			DisableIdentity:          true,
			MaintNotificationsConfig: noMaint,
		})
	} else {
		s.client = goredis.NewClient(&goredis.Options{
			Addr:     s.cfg.Addr,
			DB:       s.cfg.DB,
			Password: s.cfg.Password,
			// A blind retry of a MULTI/EXEC whose reply was lost would
			// apply it twice; Write retries after re-reading the offsets.
			MaxRetries:               -1,
			DialTimeout:              5 * time.Second,
			ReadTimeout:              30 * time.Second,
			WriteTimeout:             30 * time.Second,
			PoolSize:                 len(s.workers) + 2,
			DisableIdentity:          true,
			MaintNotificationsConfig: noMaint,
		})
	}
	if err := s.open(ctx); err != nil {
		_ = s.client.Close()
		s.client = nil
		return err
	}
	s.log.Info("redis sink connected", "redis", s.where(), "format", s.cfg.Format, "key", s.cfg.Key,
		"offsets", s.offsetsKey, "delivery", map[bool]string{true: "at-least-once (cluster)", false: "effectively-once (MULTI/EXEC with offsets)"}[s.cluster])
	return nil
}

func (s *Sink) open(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		err = fmt.Errorf("connecting to %s: %w", s.where(), err)
		if terminalRedis(err) {
			return cdc.Terminal(err)
		}
		return err
	}
	if s.cluster {
		return nil
	}
	info, err := s.client.Info(ctx, "cluster").Result()
	if err != nil {
		return fmt.Errorf("reading INFO cluster from %s: %w", s.where(), err)
	}
	if strings.Contains(info, "cluster_enabled:1") {
		return cdc.Terminal(fmt.Errorf("%w: %s; list the nodes under cluster_addrs instead", ErrRedisCluster, s.cfg.Addr))
	}
	return nil
}

// Close closes the connections.
func (s *Sink) Close(context.Context) error {
	if s.client == nil {
		return nil
	}
	err := s.client.Close()
	s.client = nil
	if err != nil && !errors.Is(err, goredis.ErrClosed) {
		return fmt.Errorf("closing connections to %s: %w", s.where(), err)
	}
	return nil
}

// StoredOffsets returns the offsets stored in the connectd:offsets:<sink>
// hash: the last message applied per topic partition.
func (s *Sink) StoredOffsets(ctx context.Context) (map[cdc.TopicPartition]int64, error) {
	m, err := s.readOffsets(ctx)
	if err != nil {
		return nil, err
	}
	for _, w := range s.workers {
		w.applied = maps.Clone(m)
	}
	return m, nil
}

func (s *Sink) readOffsets(ctx context.Context) (map[cdc.TopicPartition]int64, error) {
	m, err := s.client.HGetAll(ctx, s.offsetsKey).Result()
	if err != nil {
		return nil, fmt.Errorf("reading offsets hash %s from %s: %w", s.offsetsKey, s.where(), err)
	}
	applied := make(map[cdc.TopicPartition]int64, len(m))
	for f, v := range m {
		i := strings.LastIndexByte(f, '/')
		p, perr := strconv.Atoi(f[i+1:])
		off, oerr := strconv.ParseInt(v, 10, 64)
		if i <= 0 || perr != nil || oerr != nil {
			return nil, cdc.Terminal(fmt.Errorf("offsets hash %s: field %q = %q is not topic/partition = offset", s.offsetsKey, f, v))
		}
		applied[cdc.TopicPartition{Topic: f[:i], Partition: p}] = off
	}
	return applied, nil
}

// reload replaces the worker's offsets with those stored in Redis.
func (s *worker) reload(ctx context.Context) error {
	m, err := s.readOffsets(ctx)
	if err == nil {
		s.applied = m
	}
	return err
}

// Write applies batch in order per topic partition, at most batch_size
// messages per transaction (per pipeline in cluster mode), skipping
// messages at or below the offsets already stored in Redis. Partitions are
// spread over concurrent workers. Transient faults are retried with
// backoff for a while; a message that is not a change event, or whose key
// cannot be rendered, stops its partition there with an error marked
// cdc.BadRecord (and terminal), for the runtime's error policy.
// The count returned covers the messages, from the start of batch, that are
// all durable.
func (s *Sink) Write(ctx context.Context, batch []cdc.Message) (int, error) {
	if len(s.workers) == 1 {
		return s.workers[0].write(ctx, batch)
	}
	parts := make([][]cdc.Message, len(s.workers))
	idx := make([][]int, len(s.workers))
	for i := range batch {
		h := fnv.New32a()
		h.Write([]byte(batch[i].Topic))
		w := int((h.Sum32() + uint32(batch[i].Partition)) % uint32(len(s.workers)))
		parts[w] = append(parts[w], batch[i])
		idx[w] = append(idx[w], i)
	}
	ns := make([]int, len(s.workers))
	errs := make([]error, len(s.workers))
	var wg sync.WaitGroup
	for w := range s.workers {
		if len(parts[w]) == 0 {
			continue
		}
		wg.Go(func() { ns[w], errs[w] = s.workers[w].write(ctx, parts[w]) })
	}
	wg.Wait()
	n, first := len(batch), -1
	for w := range s.workers {
		if ns[w] < len(parts[w]) && idx[w][ns[w]] < n {
			n, first = idx[w][ns[w]], w
		}
	}
	if first >= 0 {
		if errs[first] == nil {
			return n, fmt.Errorf("redis sink %s: worker %d stopped without an error", s.name, first)
		}
		return n, errs[first]
	}
	return n, errors.Join(errs...)
}

// write applies msgs (a subset of a batch, in order) in chunks.
func (s *worker) write(ctx context.Context, msgs []cdc.Message) (int, error) {
	done := 0
	for done < len(msgs) {
		end := min(done+s.cfg.BatchSize, len(msgs))
		n, err := s.writeChunk(ctx, msgs[done:end])
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// writeChunk writes one transaction's worth, retrying transient faults.
// Before each retry on standalone Redis it re-reads the stored offsets: the
// failed attempt may have been applied with its reply lost, and a retry
// must not apply it again.
func (s *worker) writeChunk(ctx context.Context, chunk []cdc.Message) (int, error) {
	done := 0
	backoff := retryFirst
	deadline := time.Now().Add(retryFor)
	reload := false
	for attempt := 1; ; attempt++ {
		var err error
		if reload {
			if err = s.reload(ctx); err == nil {
				reload = false
			}
		}
		if !reload {
			var n int
			n, err = s.tryChunk(ctx, chunk[done:])
			done += n
			if err == nil || cdc.IsTerminal(err) || !transient(err) {
				return done, err
			}
			reload = !s.cluster
		}
		if !transient(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return done, err
		}
		m := &chunk[done]
		s.log.Warn("writing to redis failed; retrying", "redis", s.where(), "err", err, "attempt", attempt, "backoff", backoff,
			"topic", m.Topic, "partition", m.Partition, "offset", m.Offset)
		if err := s.sleep(ctx, backoff); err != nil {
			return done, err
		}
		backoff = min(backoff*2, retryMax)
	}
}

// tryChunk makes one attempt at writing chunk. It returns how many
// messages from its start are durable (all or none on standalone Redis,
// except for a message that cannot be applied, which stops the chunk).
func (s *worker) tryChunk(ctx context.Context, chunk []cdc.Message) (int, error) {
	ops, planned, bad := s.plan(chunk)
	last := s.newOffsets(chunk[:planned])
	if len(last) == 0 {
		return planned, bad // everything was applied already
	}
	var base map[string]cdc.Row
	if s.cfg.Format == FormatJSON {
		var err error
		if base, err = s.fetchMergeBases(ctx, ops); err != nil {
			return 0, err
		}
	}
	var pipe goredis.Pipeliner
	if s.cluster {
		pipe = s.client.Pipeline()
	} else {
		pipe = s.client.TxPipeline()
	}
	s.emit(ctx, pipe, ops, base)
	if !s.cluster {
		s.queueOffsets(ctx, pipe, last)
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		return 0, s.execError(ctx, cmds, err, last)
	}
	if s.cluster {
		p := s.client.Pipeline()
		s.queueOffsets(ctx, p, last)
		if _, err := p.Exec(ctx); err != nil {
			// The data is written; only freshness is behind. A replay
			// rewrites the same values.
			return 0, fmt.Errorf("writing offsets hash %s to %s: %w", s.offsetsKey, s.where(), err)
		}
	}
	for tp, off := range last {
		s.applied[tp] = off
	}
	if s.cfg.TestKillAfterExec > 0 {
		s.mu.Lock()
		s.execs++
		if s.execs >= s.cfg.TestKillAfterExec {
			s.log.Warn("test_kill_after_exec reached: killing the process before the Kafka commit", "transactions", s.execs)
			s.kill()
		}
		s.mu.Unlock()
	}
	return planned, bad
}

// newOffsets returns the offset of the last message per topic partition,
// for the messages not applied before.
func (s *worker) newOffsets(msgs []cdc.Message) map[cdc.TopicPartition]int64 {
	out := map[cdc.TopicPartition]int64{}
	for i := range msgs {
		tp := cdc.TopicPartition{Topic: msgs[i].Topic, Partition: msgs[i].Partition}
		if off, ok := s.applied[tp]; ok && msgs[i].Offset <= off {
			continue
		}
		if off, ok := out[tp]; !ok || msgs[i].Offset > off {
			out[tp] = msgs[i].Offset
		}
	}
	return out
}

func (s *worker) queueOffsets(ctx context.Context, pipe goredis.Pipeliner, last map[cdc.TopicPartition]int64) {
	if len(last) == 0 {
		return
	}
	args := make([]any, 0, 2*len(last))
	for tp, off := range last {
		args = append(args, tp.Topic+"/"+strconv.Itoa(tp.Partition), strconv.FormatInt(off, 10))
	}
	pipe.HSet(ctx, s.offsetsKey, args...)
}

// execError explains a failed EXEC (or pipeline). Commands that failed
// inside an executed transaction (WRONGTYPE) did not stop the others, nor
// the offsets update: the offsets are put back, so that nothing unapplied
// is ever marked applied, and the error is terminal.
func (s *worker) execError(ctx context.Context, cmds []goredis.Cmder, err error, last map[cdc.TopicPartition]int64) error {
	var first goredis.Cmder
	for _, c := range cmds {
		if c.Err() != nil && !errors.Is(c.Err(), goredis.Nil) {
			first = c
			break
		}
	}
	what := ""
	if first != nil {
		err = first.Err()
		args := first.Args()
		if len(args) > 1 {
			what = fmt.Sprintf(" (%v %v)", args[0], args[1])
		}
	}
	werr := fmt.Errorf("writing to %s%s: %w", s.where(), what, err)
	if !terminalRedis(err) {
		return werr
	}
	if !s.cluster && strings.HasPrefix(err.Error(), "WRONGTYPE") {
		s.restoreOffsets(ctx, last)
		werr = fmt.Errorf("%w; a key the template renders holds a value of another type (other commands of the transaction were applied; they will be re-applied after the key is fixed)", werr)
	}
	return cdc.Terminal(werr)
}

// restoreOffsets puts the offsets of the partitions in last back to what
// they were before the failed transaction.
func (s *worker) restoreOffsets(ctx context.Context, last map[cdc.TopicPartition]int64) {
	pipe := s.client.TxPipeline()
	for tp := range last {
		f := tp.Topic + "/" + strconv.Itoa(tp.Partition)
		if off, ok := s.applied[tp]; ok {
			pipe.HSet(ctx, s.offsetsKey, f, strconv.FormatInt(off, 10))
		} else {
			pipe.HDel(ctx, s.offsetsKey, f)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		s.log.Error("restoring the offsets hash after a failed transaction", "hash", s.offsetsKey, "err", err)
	}
}
