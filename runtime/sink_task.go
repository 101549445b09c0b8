package runtime

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/internal/kafkautil"
)

// errTopicsChanged restarts a sink whose topics_regex matches a new set of
// topics.
var errTopicsChanged = errors.New("topics matching topics_regex changed")

// GroupID returns the consumer group of a sink connector.
func GroupID(sink string) string { return "connectd-" + sink }

// runSink runs one attempt of a sink task: consume with the sink's group,
// hand batches to the sink, commit offsets only for what the sink reported
// durable.
func (w *Worker) runSink(soft, hard context.Context, bs *builtSink) error {
	name := bs.cfg.Name
	log := w.log.With("connector", name)
	topics, err := w.sinkTopics(soft, bs)
	if err != nil || soft.Err() != nil {
		return err
	}
	snk, err := bs.newSink()
	if err != nil {
		return cdc.Terminal(fmt.Errorf("building sink: %w", err))
	}
	if err := snk.Open(soft); err != nil {
		_ = snk.Close(hard)
		return fmt.Errorf("opening sink: %w", err)
	}
	defer snk.Close(hard)
	var applied map[cdc.TopicPartition]int64
	if os, ok := snk.(cdc.OffsetStorer); ok {
		if applied, err = os.StoredOffsets(soft); err != nil {
			return fmt.Errorf("reading offsets stored in the sink: %w", err)
		}
		log.Info("sink stores its own offsets: messages it already applied are skipped", "partitions", len(applied))
	}

	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:               w.opts.Kafka.Brokers,
		GroupID:               GroupID(name),
		GroupTopics:           topics,
		StartOffset:           kafka.FirstOffset,
		MinBytes:              1,
		MaxBytes:              16 << 20,
		MaxWait:               250 * time.Millisecond,
		QueueCapacity:         max(w.opts.SinkBatchSize*2, 100),
		CommitInterval:        0, // commit synchronously, after the sink wrote
		HeartbeatInterval:     time.Second,
		SessionTimeout:        10 * time.Second,
		RebalanceTimeout:      10 * time.Second,
		JoinGroupBackoff:      time.Second,
		WatchPartitionChanges: true,
		ReadBackoffMin:        50 * time.Millisecond,
		ReadBackoffMax:        time.Second,
		Dialer:                &kafka.Dialer{ClientID: w.opts.Kafka.ClientID, Timeout: 10 * time.Second, DualStack: true},
	})
	defer reader.Close()
	dlq, err := w.newDLQWriter(bs.policy.dlq)
	if err != nil {
		return err
	}
	defer dlq.close()
	log.Info("sink started", "topics", strings.Join(topics, ","), "group", GroupID(name))

	written := w.metrics.sinkRecords.WithLabelValues(name)
	batchTime := w.metrics.batchSeconds.WithLabelValues(name, "sink")
	lag := w.metrics.sinkLag.WithLabelValues(name)
	recheck := time.NewTicker(15 * time.Second)
	defer recheck.Stop()

	// Offsets of what the sink wrote are committed to the group at most
	// every offset_flush_interval (as Kafka Connect does) and whenever the
	// task ends, never before the write: a crash re-delivers at most that
	// interval's messages, which the sink skips (OffsetStorer) or re-applies
	// idempotently.
	flushEvery := time.Duration(w.opts.Pipeline.Worker.OffsetFlushInterval)
	pending := map[cdc.TopicPartition]kafka.Message{}
	lastCommit := time.Now()
	commit := func() error {
		if len(pending) == 0 {
			return nil
		}
		msgs := make([]kafka.Message, 0, len(pending))
		for _, m := range pending {
			msgs = append(msgs, m)
		}
		if err := reader.CommitMessages(hard, msgs...); err != nil {
			return fmt.Errorf("committing offsets of group %s: %w", GroupID(name), err)
		}
		clear(pending)
		lastCommit = time.Now()
		return nil
	}
	kmsgs := make([]kafka.Message, 0, w.opts.SinkBatchSize)
	for {
		select {
		case <-recheck.C:
			if bs.cfg.TopicsRegex != "" {
				now, err := w.sinkTopics(soft, bs)
				if err == nil && !slices.Equal(now, topics) {
					log.Info("topics_regex matches a new set of topics; re-joining", "topics", strings.Join(now, ","))
					return errors.Join(errTopicsChanged, commit())
				}
			}
		default:
		}
		var err error
		kmsgs, err = w.fetchBatch(soft, reader, kmsgs[:0], flushEvery-time.Since(lastCommit))
		if len(kmsgs) == 0 {
			if soft.Err() != nil {
				return commit()
			}
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return errors.Join(fmt.Errorf("consuming %s from %s: %w", strings.Join(topics, ","), w.opts.Kafka.Addr(), err), commit())
			}
			if err := commit(); err != nil { // idle: flush what is written
				return err
			}
			continue
		}
		start := time.Now()
		batch, from, err := w.sinkTransform(hard, bs, dlq, kmsgs, applied)
		if err != nil {
			w.metrics.errors.WithLabelValues(name, "transform").Inc()
			return errors.Join(err, commit())
		}
		// Write with hard: a batch fetched before shutdown is still
		// written and committed during the grace period.
		done, err := w.writeBatch(hard, bs, snk, dlq, kmsgs, batch, from)
		if done > 0 || len(batch) == 0 {
			for _, m := range covered(kmsgs, from, done) {
				pending[cdc.TopicPartition{Topic: m.Topic, Partition: m.Partition}] = m
			}
			written.Add(float64(done))
		}
		if err != nil {
			w.metrics.errors.WithLabelValues(name, "write").Inc()
			return errors.Join(err, commit())
		}
		if time.Since(lastCommit) >= flushEvery || soft.Err() != nil {
			if err := commit(); err != nil {
				return err
			}
		}
		batchTime.Observe(time.Since(start).Seconds())
		lag.Set(float64(reader.Lag()))
	}
}

// fetchBatch blocks for a first message (at most maxWait, so pending
// offsets get committed when the topic goes idle), then gathers more for at
// most SinkLinger, up to SinkBatchSize.
func (w *Worker) fetchBatch(ctx context.Context, r *kafka.Reader, out []kafka.Message, maxWait time.Duration) ([]kafka.Message, error) {
	fctx, cancel := context.WithTimeout(ctx, max(maxWait, 10*time.Millisecond))
	m, err := r.FetchMessage(fctx)
	cancel()
	if err != nil {
		return out, err
	}
	out = append(out, m)
	lctx, cancel := context.WithTimeout(ctx, w.opts.SinkLinger)
	defer cancel()
	for len(out) < w.opts.SinkBatchSize {
		m, err := r.FetchMessage(lctx)
		if err != nil {
			break
		}
		out = append(out, m)
	}
	return out, nil
}

// writeBatch hands batch to the sink, applying the connector's error
// policy to messages the sink rejects as bad (cdc.BadRecord): with
// tolerance all they go to the dead letter topic and writing goes on after
// them; otherwise the task stops at the bad message. done counts the
// messages from the start of batch that are written or dead-lettered.
func (w *Worker) writeBatch(ctx context.Context, bs *builtSink, snk cdc.Sink, dlq *dlqWriter, kmsgs []kafka.Message, batch []cdc.Message, from []int) (done int, err error) {
	name := bs.cfg.Name
	for done < len(batch) {
		rest := batch[done:]
		n, werr := snk.Write(ctx, rest)
		if n > len(rest) || (n < len(rest) && werr == nil) {
			return done, cdc.Terminal(fmt.Errorf("sink %s broke its contract: wrote %d of %d messages without an error", name, n, len(rest)))
		}
		done += n
		if werr == nil {
			return done, nil
		}
		if !cdc.IsBadRecord(werr) || n == len(rest) {
			return done, fmt.Errorf("writing to sink: %w", werr)
		}
		bad := &rest[n]
		f := failure{connector: name, stage: stagePut, class: bs.cfg.Type, err: werr, topic: bad.Topic, partition: bad.Partition, offset: bad.Offset}
		if !bs.policy.tolerateAll {
			return done, cdc.Terminal(fmt.Errorf("writing %s[%d]@%d to sink (errors.tolerance: none): %w", bad.Topic, bad.Partition, bad.Offset, werr))
		}
		orig := &kmsgs[from[done]]
		if err := w.tolerate(ctx, bs.policy, dlq, f, orig.Key, orig.Value); err != nil {
			return done, err
		}
		done++
	}
	return done, nil
}

// tolerate dead-letters (or, without a dead letter topic, logs and skips)
// a record that failed under errors.tolerance: all.
func (w *Worker) tolerate(ctx context.Context, p errorPolicy, dlq *dlqWriter, f failure, key, value []byte) error {
	if ok, err := w.admitFailure(ctx, p, f); !ok || err != nil {
		return err
	}
	if err := dlq.write(ctx, key, value, f); err != nil {
		return err
	}
	p.logFailure(w.log, f, "sent to "+p.dlq)
	return nil
}

// sinkTransform converts Kafka messages to cdc messages, skipping those
// the sink already applied (at or below applied's offsets), and running the
// sink's transform chain when it has one (decode → transform → encode,
// keeping each input's topic position so offsets still commit correctly).
// A message that cannot be decoded or transformed follows the error
// policy. from[j] is the index in `in` of the message out[j] came from.
func (w *Worker) sinkTransform(ctx context.Context, bs *builtSink, dlq *dlqWriter, in []kafka.Message, applied map[cdc.TopicPartition]int64) (out []cdc.Message, from []int, err error) {
	out = make([]cdc.Message, 0, len(in))
	from = make([]int, 0, len(in))
	for i := range in {
		if off, ok := applied[cdc.TopicPartition{Topic: in[i].Topic, Partition: in[i].Partition}]; ok && in[i].Offset <= off {
			continue
		}
		m := toMessage(&in[i])
		if len(bs.transforms) == 0 {
			out = append(out, m)
			from = append(from, i)
			continue
		}
		res, f := w.transformMessage(bs, &m)
		if f == nil {
			out = append(out, res...)
			for range res {
				from = append(from, i)
			}
			continue
		}
		if !bs.policy.tolerateAll {
			return nil, nil, cdc.Terminal(fmt.Errorf("%s of %s[%d]@%d (errors.tolerance: none): %w", strings.ToLower(f.stage), m.Topic, m.Partition, m.Offset, f.err))
		}
		if err := w.tolerate(ctx, bs.policy, dlq, *f, in[i].Key, in[i].Value); err != nil {
			return nil, nil, err
		}
	}
	return out, from, nil
}

// transformMessage decodes m, runs the sink's chain and re-encodes the
// results, which keep m's partition and offset.
func (w *Worker) transformMessage(bs *builtSink, m *cdc.Message) ([]cdc.Message, *failure) {
	fail := func(stage, class string, err error) *failure {
		return &failure{connector: bs.cfg.Name, stage: stage, class: class, err: err, topic: m.Topic, partition: m.Partition, offset: m.Offset}
	}
	rec, err := m.Decode()
	if err != nil {
		return nil, fail(stageConvert, "cdc.Message.Decode", err)
	}
	chain, typ, err := runChain(bs.transforms, []cdc.Record{rec}, inPlace(bs.transforms))
	if err != nil {
		return nil, fail(stageTransform, typ, err)
	}
	out := make([]cdc.Message, 0, len(chain))
	for j := range chain {
		r := &chain[j]
		enc := cdc.Message{Topic: r.Topic, Partition: m.Partition, Offset: m.Offset, Headers: r.Headers, Time: m.Time}
		if r.Key != nil {
			if enc.Key, err = cdc.AppendKey(nil, r); err != nil {
				return nil, fail(stageConvert, "cdc.AppendKey", err)
			}
		}
		if !r.Tombstone {
			if enc.Value, err = cdc.AppendValue(nil, r); err != nil {
				return nil, fail(stageConvert, "cdc.AppendValue", err)
			}
		}
		out = append(out, enc)
	}
	return out, nil
}

func toMessage(k *kafka.Message) cdc.Message {
	m := cdc.Message{Topic: k.Topic, Partition: k.Partition, Offset: k.Offset, Key: k.Key, Value: k.Value, Time: k.Time}
	if len(k.Headers) > 0 {
		m.Headers = make([]cdc.Header, len(k.Headers))
		for i, h := range k.Headers {
			m.Headers[i] = cdc.Header{Key: h.Key, Value: h.Value}
		}
	}
	return m
}

// covered returns the Kafka messages that are fully handled once the
// first done outputs are: everything before the input of the first
// unhandled output (skipped and dead-lettered inputs included).
func covered(kmsgs []kafka.Message, from []int, done int) []kafka.Message {
	if done >= len(from) {
		return kmsgs
	}
	return kmsgs[:from[done]]
}

// sinkTopics returns the sink's topics, sorted, creating listed topics
// that do not exist yet (so a sink can start before its source). For
// topics_regex it waits until at least one topic matches.
func (w *Worker) sinkTopics(ctx context.Context, bs *builtSink) ([]string, error) {
	if bs.cfg.TopicsRegex == "" {
		topics := slices.Clone(bs.cfg.Topics)
		slices.Sort(topics)
		if err := w.topics.ensure(ctx, topics...); err != nil {
			return nil, fmt.Errorf("creating sink topics: %w", err)
		}
		return topics, nil
	}
	re, err := regexp.Compile("^(?:" + bs.cfg.TopicsRegex + ")$")
	if err != nil {
		return nil, cdc.Terminal(fmt.Errorf("topics_regex: %w", err))
	}
	client := w.opts.Kafka.Client()
	for {
		all, err := kafkautil.Topics(ctx, client)
		if err != nil {
			return nil, err
		}
		var topics []string
		for _, t := range all {
			if re.MatchString(t) {
				topics = append(topics, t)
			}
		}
		if len(topics) > 0 {
			slices.Sort(topics)
			return topics, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(2 * time.Second):
		}
	}
}
