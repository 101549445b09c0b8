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
	log.Info("sink started", "topics", strings.Join(topics, ","), "group", GroupID(name))

	written := w.metrics.sinkRecords.WithLabelValues(name)
	batchTime := w.metrics.batchSeconds.WithLabelValues(name, "sink")
	lag := w.metrics.sinkLag.WithLabelValues(name)
	recheck := time.NewTicker(15 * time.Second)
	defer recheck.Stop()
	kmsgs := make([]kafka.Message, 0, w.opts.SinkBatchSize)
	for {
		select {
		case <-recheck.C:
			if bs.cfg.TopicsRegex != "" {
				now, err := w.sinkTopics(soft, bs)
				if err == nil && !slices.Equal(now, topics) {
					log.Info("topics_regex matches a new set of topics; re-joining", "topics", strings.Join(now, ","))
					return errTopicsChanged
				}
			}
		default:
		}
		var err error
		kmsgs, err = w.fetchBatch(soft, reader, kmsgs[:0])
		if len(kmsgs) == 0 {
			if soft.Err() != nil {
				return nil
			}
			if err != nil {
				return fmt.Errorf("consuming %s from %s: %w", strings.Join(topics, ","), w.opts.Kafka.Addr(), err)
			}
			continue
		}
		start := time.Now()
		batch, oneToOne, err := w.sinkTransform(kmsgs, applied, bs.transforms)
		if err != nil {
			w.metrics.errors.WithLabelValues(name, "transform").Inc()
			return err
		}
		// Write with hard: a batch fetched before shutdown is still
		// written and committed during the grace period.
		var n int
		var werr error
		if len(batch) > 0 {
			n, werr = snk.Write(hard, batch)
		} else if err := reader.CommitMessages(hard, lastPerPartition(kmsgs)...); err != nil {
			// Everything fetched was already applied (stored in the sink).
			return fmt.Errorf("committing offsets of group %s: %w", GroupID(name), err)
		}
		if n > len(batch) || (n < len(batch) && werr == nil) {
			return cdc.Terminal(fmt.Errorf("sink %s broke its contract: wrote %d of %d messages without an error", name, n, len(batch)))
		}
		if n > 0 {
			if err := reader.CommitMessages(hard, lastPerPartition(kmsgsOf(kmsgs, batch, n, oneToOne))...); err != nil {
				return fmt.Errorf("committing offsets of group %s: %w", GroupID(name), err)
			}
			written.Add(float64(n))
		}
		if werr != nil {
			w.metrics.errors.WithLabelValues(name, "write").Inc()
			return fmt.Errorf("writing to sink: %w", werr)
		}
		batchTime.Observe(time.Since(start).Seconds())
		lag.Set(float64(reader.Lag()))
	}
}

// fetchBatch blocks for a first message, then gathers more for at most
// SinkLinger, up to SinkBatchSize.
func (w *Worker) fetchBatch(ctx context.Context, r *kafka.Reader, out []kafka.Message) ([]kafka.Message, error) {
	m, err := r.FetchMessage(ctx)
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

// sinkTransform converts Kafka messages to cdc messages, skipping those
// the sink already applied (at or below applied's offsets), and running the
// sink's transform chain when it has one (decode → transform → encode,
// keeping each input's topic position so offsets still commit correctly).
// oneToOne reports that out[i] came from in[i] for every i.
func (w *Worker) sinkTransform(in []kafka.Message, applied map[cdc.TopicPartition]int64, ts []cdc.Transform) (out []cdc.Message, oneToOne bool, err error) {
	out = make([]cdc.Message, 0, len(in))
	oneToOne = len(ts) == 0
	for i := range in {
		if off, ok := applied[cdc.TopicPartition{Topic: in[i].Topic, Partition: in[i].Partition}]; ok && in[i].Offset <= off {
			oneToOne = false
			continue
		}
		m := toMessage(&in[i])
		if len(ts) == 0 {
			out = append(out, m)
			continue
		}
		rec, err := m.Decode()
		if err != nil {
			return nil, false, cdc.Terminal(err)
		}
		chain := []cdc.Record{rec}
		for _, t := range ts {
			var next []cdc.Record
			for _, r := range chain {
				o, err := t.Apply(r)
				if err != nil {
					return nil, false, cdc.Terminal(fmt.Errorf("transforming %s[%d]@%d: %w", m.Topic, m.Partition, m.Offset, err))
				}
				next = append(next, o...)
			}
			chain = next
		}
		for j := range chain {
			r := &chain[j]
			enc := cdc.Message{Topic: r.Topic, Partition: m.Partition, Offset: m.Offset, Headers: r.Headers, Time: m.Time}
			if r.Key != nil {
				if enc.Key, err = cdc.AppendKey(nil, r); err != nil {
					return nil, false, cdc.Terminal(err)
				}
			}
			if !r.Tombstone {
				if enc.Value, err = cdc.AppendValue(nil, r); err != nil {
					return nil, false, cdc.Terminal(err)
				}
			}
			out = append(out, enc)
		}
	}
	return out, oneToOne, nil
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

// kmsgsOf returns the Kafka messages covered by the first n messages of
// batch (a transform chain may have dropped or multiplied messages; a
// Kafka message is covered once every output up to it was written).
func kmsgsOf(kmsgs []kafka.Message, batch []cdc.Message, n int, oneToOne bool) []kafka.Message {
	if oneToOne {
		return kmsgs[:n]
	}
	if n == len(batch) {
		return kmsgs
	}
	// Outputs carry their input's partition and offset; the input of the
	// first unwritten output is not covered, nor anything after it.
	first := batch[n]
	for i := range kmsgs {
		if kmsgs[i].Partition == first.Partition && kmsgs[i].Offset == first.Offset && kmsgs[i].Topic == first.Topic {
			return kmsgs[:i]
		}
	}
	return kmsgs[:0]
}

// lastPerPartition returns the last message of each topic partition:
// committing it commits everything before it.
func lastPerPartition(msgs []kafka.Message) []kafka.Message {
	type tp struct {
		t string
		p int
	}
	idx := map[tp]int{}
	var out []kafka.Message
	for _, m := range msgs {
		k := tp{m.Topic, m.Partition}
		if i, ok := idx[k]; ok {
			out[i] = m
			continue
		}
		idx[k] = len(out)
		out = append(out, m)
	}
	return out
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
