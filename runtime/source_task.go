package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/offsets"
)

// maxBatchBytes keeps produce batches under Kafka's default
// message.max.bytes (1048588), which limits a whole batch.
const maxBatchBytes = 1_000_000

// runSource runs one attempt of a source task: open at the stored position,
// read → transform → send to Kafka until soft is done or something fails,
// then flush, commit the highest acknowledged position and close.
func (w *Worker) runSource(soft, hard context.Context, bs *builtSource) (err error) {
	name := bs.cfg.Name
	src, err := bs.newSource()
	if err != nil {
		return cdc.Terminal(fmt.Errorf("building source: %w", err))
	}
	key := sourceKey(name, src)
	pos, err := w.opts.Offsets.Get(hard, key)
	if err != nil {
		return fmt.Errorf("reading stored position of %s: %w", key, err)
	}
	log := w.log.With("connector", name)
	if err := src.Open(soft, pos); err != nil {
		_ = src.Close(hard)
		return fmt.Errorf("opening source: %w", err)
	}
	log.Info("source started", "position", string(pos))
	defer func() {
		if cerr := src.Close(hard); cerr != nil && err == nil && soft.Err() == nil {
			err = fmt.Errorf("closing source: %w", cerr)
		}
	}()

	cp := offsets.NewCheckpointer(w.opts.MaxInFlight)
	produceErr := make(chan error, 1)
	produced := w.metrics.producedRecords.WithLabelValues(name)
	writer := &kafka.Writer{
		Addr:            kafka.TCP(w.opts.Kafka.Brokers...),
		Balancer:        &kafka.Murmur2Balancer{},
		RequiredAcks:    kafka.RequireAll,
		Async:           true,
		BatchSize:       w.opts.ProducerBatchSize,
		BatchBytes:      maxBatchBytes,
		BatchTimeout:    w.opts.ProducerLinger,
		MaxAttempts:     8,
		WriteBackoffMin: 100 * time.Millisecond,
		WriteBackoffMax: 2 * time.Second,
		Compression:     kafka.Lz4,
		Transport:       w.opts.Kafka.Transport(),
		Completion: func(msgs []kafka.Message, err error) {
			if err != nil {
				select {
				case produceErr <- fmt.Errorf("writing %d records to %s on %s: %w", len(msgs), msgs[0].Topic, w.opts.Kafka.Addr(), err):
				default:
				}
				return
			}
			produced.Add(float64(len(msgs)))
			// Acknowledge runs of messages that share a ticket at once.
			for i := 0; i < len(msgs); {
				t := msgs[i].WriterData.(*offsets.Ticket)
				j := i + 1
				for j < len(msgs) && msgs[j].WriterData == msgs[i].WriterData {
					j++
				}
				t.Ack(j - i)
				i = j
			}
		},
	}

	var lastSeq uint64
	commit := func(ctx context.Context) error {
		p, seq := cp.Committable()
		if seq == lastSeq {
			return nil
		}
		if err := w.opts.Offsets.Put(ctx, key, p); err != nil {
			return fmt.Errorf("storing position: %w", err)
		}
		lastSeq = seq
		w.metrics.lastCommit.WithLabelValues(name).SetToCurrentTime()
		if err := src.Ack(ctx, p); err != nil {
			return fmt.Errorf("acknowledging position to source: %w", err)
		}
		return nil
	}

	// The committer stores positions periodically while the loop reads.
	loopCtx, stopLoop := context.WithCancelCause(soft)
	defer stopLoop(nil)
	commitDone := make(chan struct{})
	go func() {
		defer close(commitDone)
		tick := time.NewTicker(time.Duration(w.opts.Pipeline.Worker.OffsetFlushInterval))
		defer tick.Stop()
		uncommitted := w.metrics.uncommitted.WithLabelValues(name)
		for {
			select {
			case <-loopCtx.Done():
				return
			case err := <-produceErr:
				stopLoop(err)
				return
			case <-tick.C:
				uncommitted.Set(float64(cp.InFlight()))
				if err := commit(hard); err != nil {
					stopLoop(err)
					return
				}
			}
		}
	}()

	loopErr := w.sourceLoop(loopCtx, bs, src, cp, writer)
	stopLoop(loopErr)
	<-commitDone

	// Flush: let everything sent reach Kafka (bounded by hard), then store
	// the highest acknowledged position.
	closed := make(chan error, 1)
	go func() { closed <- writer.Close() }()
	select {
	case <-closed:
	case <-hard.Done():
		log.Warn("shutdown timeout: records still in flight to Kafka are not committed and will be re-sent on restart", "in_flight", cp.InFlight())
	}
	// Report the first real cause once: a producer error cancels the loop,
	// whose own error is then just "context canceled".
	var errs []error
	if loopErr != nil && !errors.Is(loopErr, context.Canceled) {
		errs = append(errs, loopErr)
	}
	if cause := context.Cause(loopCtx); cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, loopErr) {
		errs = append(errs, cause)
	}
	select {
	case perr := <-produceErr:
		if len(errs) == 0 {
			errs = append(errs, perr)
		}
	default:
	}
	if cerr := commit(hard); cerr != nil {
		errs = append(errs, cerr)
	}
	if p, _ := cp.Committable(); p != nil {
		log.Info("source stopped", "committed", string(p))
	}
	return errors.Join(errs...)
}

// sourceLoop reads, transforms and sends until ctx is done or an error.
func (w *Worker) sourceLoop(ctx context.Context, bs *builtSource, src cdc.Source, cp *offsets.Checkpointer, writer *kafka.Writer) error {
	name := bs.cfg.Name
	read := w.metrics.sourceRecords.WithLabelValues(name)
	batchTime := w.metrics.batchSeconds.WithLabelValues(name, "source")
	var scratch []byte
	for {
		recs, err := src.Read(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			w.metrics.errors.WithLabelValues(name, "read").Inc()
			return fmt.Errorf("reading source: %w", err)
		}
		start := time.Now()
		msgs, pos, err := w.prepare(ctx, bs, recs, &scratch)
		if err != nil {
			w.metrics.errors.WithLabelValues(name, "transform").Inc()
			return err
		}
		t, err := cp.Track(ctx, len(msgs), pos)
		if err != nil {
			return nil // shutting down while waiting for room
		}
		if len(msgs) == 0 {
			continue
		}
		for i := range msgs {
			msgs[i].WriterData = t
		}
		if err := writer.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("sending records: %w", err)
		}
		read.Add(float64(len(msgs)))
		batchTime.Observe(time.Since(start).Seconds())
	}
}

// prepare expands deletes with their tombstones, runs the transform chain
// and encodes the result. A record the chain fails on follows the error
// policy: the source stops before it (tolerance none), or the original
// record goes to the dead letter topic through the same ordered producer,
// so the position still commits only once it is durable (tolerance all).
// pos is the last non-nil position of recs: the resume point once all of
// msgs are acknowledged.
func (w *Worker) prepare(ctx context.Context, bs *builtSource, recs []cdc.Record, scratch *[]byte) (msgs []kafka.Message, pos cdc.Position, err error) {
	msgs = make([]kafka.Message, 0, len(recs)+len(recs)/8)
	var newTopics []string
	seen := map[string]bool{}
	appendKey, appendValue := cdc.AppendKey, cdc.AppendValue
	if bs.cfg.Schemas {
		appendKey, appendValue = cdc.AppendKeyWithSchema, cdc.AppendValueWithSchema
	}
	encode := func(r *cdc.Record) (kafka.Message, error) {
		if r.Topic == "" {
			return kafka.Message{}, fmt.Errorf("%w: record without a topic (table %s.%s)", cdc.ErrBadEvent, r.Source.DB, r.Source.Table)
		}
		m := kafka.Message{Topic: r.Topic}
		var err error
		if r.Key != nil {
			if m.Key, err = appendKey(nil, r); err != nil {
				return m, fmt.Errorf("encoding key for %s: %w", r.Topic, err)
			}
		}
		if !r.Tombstone {
			// Encode into scratch, then copy into an exactly sized buffer:
			// values stay in memory until Kafka acknowledges them.
			*scratch, err = appendValue((*scratch)[:0], r)
			if err != nil {
				return m, fmt.Errorf("encoding value for %s: %w", r.Topic, err)
			}
			m.Value = append(make([]byte, 0, len(*scratch)), *scratch...)
		}
		for _, h := range r.Headers {
			m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: h.Value})
		}
		return m, nil
	}
	fastChain := inPlace(bs.transforms)
	var chain []cdc.Record // reused for every record
	for i := range recs {
		r := &recs[i]
		if r.Position != nil {
			pos = r.Position
		}
		if r.Time.IsZero() {
			r.Time = time.Now()
		}
		chain = append(chain[:0], *r)
		if r.Op == cdc.OpDelete && !r.Tombstone && r.Key != nil {
			chain = append(chain, cdc.Record{Topic: r.Topic, Key: r.Key, Tombstone: true, Op: cdc.OpDelete, Source: r.Source, Time: r.Time})
		}
		var fail *failure
		if len(bs.transforms) > 0 {
			out, typ, err := runChain(bs.transforms, chain, fastChain)
			if err != nil {
				fail = &failure{connector: bs.cfg.Name, stage: stageTransform, class: typ, err: err, topic: r.Topic, partition: -1}
			}
			chain = out
		}
		mark := len(msgs)
		for j := 0; fail == nil && j < len(chain); j++ {
			m, err := encode(&chain[j])
			if err != nil {
				fail = &failure{connector: bs.cfg.Name, stage: stageConvert, class: "cdc.AppendValue", err: err, topic: chain[j].Topic, partition: -1}
				break
			}
			if !seen[m.Topic] {
				seen[m.Topic] = true
				newTopics = append(newTopics, m.Topic)
			}
			msgs = append(msgs, m)
		}
		if fail == nil {
			continue
		}
		msgs = msgs[:mark] // none of this record's outputs go out
		if !bs.policy.tolerateAll {
			return nil, nil, cdc.Terminal(fmt.Errorf("%s of a record of %s (errors.tolerance: none): %w", strings.ToLower(fail.stage), r.Topic, fail.err))
		}
		toDLQ, err := w.admitFailure(ctx, bs.policy, *fail)
		if err != nil {
			return nil, nil, err
		}
		if !toDLQ {
			continue
		}
		orig, err := encode(r)
		if err != nil {
			orig = kafka.Message{Value: []byte(fmt.Sprintf("%+v", *r))}
		}
		orig.Topic, orig.Headers = bs.policy.dlq, append(orig.Headers, fail.dlqHeaders()...)
		bs.policy.logFailure(w.log, *fail, "sent to "+bs.policy.dlq)
		msgs = append(msgs, orig)
	}
	if err := w.topics.ensure(ctx, newTopics...); err != nil {
		return nil, nil, fmt.Errorf("creating topics: %w", err)
	}
	return msgs, pos, nil
}
