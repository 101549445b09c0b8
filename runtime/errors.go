package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/connectd/connectd/configs"
)

// ErrorsConfig is a connector's `errors:` block, with Kafka Connect's
// errors.* semantics.
type ErrorsConfig struct {
	// Tolerance is "none" (default: a record that cannot be processed
	// stops the connector at its position) or "all" (it goes to the dead
	// letter topic, or is logged and skipped when there is none, and the
	// connector moves on).
	Tolerance string `yaml:"tolerance"`
	// RetryTimeout bounds how long retryable failures (a lost connection,
	// an unavailable broker) are retried, with exponential backoff and
	// jitter, before the connector is marked FAILED. Default 5m.
	RetryTimeout configs.Duration `yaml:"retry_timeout"`
	// DeadLetterTopic receives records that cannot be processed, with
	// __connect.errors.* headers saying where and why. Needs tolerance all.
	DeadLetterTopic string `yaml:"dead_letter_topic"`
	// Log logs every tolerated failure at WARN (without record contents).
	Log bool `yaml:"log"`
}

// Stages of the pipeline, named as Kafka Connect names them in the
// __connect.errors.stage header.
const (
	stageTransform = "TRANSFORMATION"
	stageConvert   = "VALUE_CONVERTER"
	stagePut       = "TASK_PUT"
)

const defaultRetryTimeout = 5 * time.Minute

// errorPolicy is a decoded, validated ErrorsConfig.
type errorPolicy struct {
	tolerateAll  bool
	retryTimeout time.Duration
	dlq          string
	log          bool
}

func parseErrors(s configs.Section) (errorPolicy, error) {
	cfg := ErrorsConfig{Tolerance: "none", RetryTimeout: configs.Duration(defaultRetryTimeout)}
	if err := s.Decode(&cfg); err != nil {
		return errorPolicy{}, err
	}
	var errs []error
	switch cfg.Tolerance {
	case "none", "all":
	default:
		errs = append(errs, s.Errorf("tolerance", "tolerance must be none or all, not %q", cfg.Tolerance))
	}
	if cfg.RetryTimeout < 0 {
		errs = append(errs, s.Errorf("retry_timeout", "retry_timeout must not be negative"))
	}
	if cfg.DeadLetterTopic != "" && cfg.Tolerance != "all" {
		errs = append(errs, s.Errorf("dead_letter_topic", "dead_letter_topic only takes effect with tolerance: all; add it, or remove dead_letter_topic"))
	}
	return errorPolicy{
		tolerateAll:  cfg.Tolerance == "all",
		retryTimeout: time.Duration(cfg.RetryTimeout),
		dlq:          cfg.DeadLetterTopic,
		log:          cfg.Log,
	}, errors.Join(errs...)
}

// failure describes a record that could not be processed.
type failure struct {
	connector string
	stage     string
	class     string // the transform or connector type that failed
	err       error
	// Where the record was read from, on the sink side (partition -1 on
	// the source side).
	topic     string
	partition int
	offset    int64
}

// dlqHeaders returns the __connect.errors.* headers Kafka Connect writes
// on dead-lettered records.
func (f failure) dlqHeaders() []kafka.Header {
	h := []kafka.Header{
		{Key: "__connect.errors.topic", Value: []byte(f.topic)},
		{Key: "__connect.errors.connector.name", Value: []byte(f.connector)},
		{Key: "__connect.errors.task.id", Value: []byte("0")},
		{Key: "__connect.errors.stage", Value: []byte(f.stage)},
		{Key: "__connect.errors.class.name", Value: []byte(f.class)},
		{Key: "__connect.errors.exception.class.name", Value: []byte(errorClass(f.err))},
		{Key: "__connect.errors.exception.message", Value: []byte(f.err.Error())},
	}
	if f.partition >= 0 {
		h = append(h,
			kafka.Header{Key: "__connect.errors.partition", Value: []byte(strconv.Itoa(f.partition))},
			kafka.Header{Key: "__connect.errors.offset", Value: []byte(strconv.FormatInt(f.offset, 10))})
	}
	return h
}

// errorClass names the innermost error's Go type, the closest thing to
// Kafka Connect's exception class.
func errorClass(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return fmt.Sprintf("%T", err)
		}
		err = u
	}
}

// logFailure logs a tolerated failure when the policy asks for it.
func (p errorPolicy) logFailure(log *slog.Logger, f failure, action string) {
	if !p.log {
		return
	}
	attrs := []any{"connector", f.connector, "stage", f.stage, "class", f.class, "topic", f.topic, "err", f.err, "action", action}
	if f.partition >= 0 {
		attrs = append(attrs, "partition", f.partition, "offset", f.offset)
	}
	log.Warn("record failed; tolerated (errors.tolerance: all)", attrs...)
}

// admitFailure does what every failure tolerated under errors.tolerance:
// all shares: it counts it and, without a dead letter topic, logs it (never
// silently) and reports false; with one, it makes sure the topic exists
// and reports true, leaving the write to the caller.
func (w *Worker) admitFailure(ctx context.Context, p errorPolicy, f failure) (bool, error) {
	w.metrics.deadLetters.WithLabelValues(f.connector, f.stage).Inc()
	if p.dlq == "" {
		p.log = true
		p.logFailure(w.log, f, "skipped (no dead_letter_topic)")
		return false, nil
	}
	if err := w.topics.ensureWith(ctx, dlqTopicConfigs(), p.dlq); err != nil {
		return false, fmt.Errorf("creating dead letter topic: %w", err)
	}
	return true, nil
}

// dlqWriter writes dead-lettered records synchronously (the caller commits
// only after they are durable).
type dlqWriter struct {
	w *kafka.Writer
}

func (w *Worker) newDLQWriter(topic string) (*dlqWriter, error) {
	if topic == "" {
		return nil, nil
	}
	return &dlqWriter{w: &kafka.Writer{
		Addr:         kafka.TCP(w.opts.Kafka.Brokers...),
		Topic:        topic,
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    1,
		BatchTimeout: time.Millisecond,
		MaxAttempts:  8,
		Transport:    w.opts.Kafka.Transport(),
	}}, nil
}

func (d *dlqWriter) write(ctx context.Context, key, value []byte, f failure) error {
	msg := kafka.Message{Key: key, Value: value, Headers: f.dlqHeaders()}
	if err := d.w.WriteMessages(ctx, msg); err != nil {
		return fmt.Errorf("writing to dead letter topic %s: %w", d.w.Topic, err)
	}
	return nil
}

func (d *dlqWriter) close() {
	if d != nil {
		_ = d.w.Close()
	}
}

// jitter spreads d by ±20% so restarting tasks do not retry in lockstep.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
