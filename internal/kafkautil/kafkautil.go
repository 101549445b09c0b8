package kafkautil

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// Conn is how a component reaches the Kafka cluster.
type Conn struct {
	Brokers  []string
	ClientID string
}

// Transport returns a new transport owned by the caller. kafka-go's shared
// default transport keeps broken connections after a broker restart, so
// every client gets its own.
func (c Conn) Transport() *kafka.Transport {
	return &kafka.Transport{
		ClientID:    c.ClientID,
		DialTimeout: 5 * time.Second,
		IdleTimeout: 30 * time.Second,
		MetadataTTL: 10 * time.Second,
	}
}

// Client returns an admin client with its own transport.
func (c Conn) Client() *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(c.Brokers...), Timeout: 15 * time.Second, Transport: c.Transport()}
}

// Addr names the cluster in errors.
func (c Conn) Addr() string { return strings.Join(c.Brokers, ",") }

// Topic describes a topic connectd creates when it is missing.
type Topic struct {
	Name       string
	Partitions int
	Configs    map[string]string
}

// EnsureTopics creates the topics that do not exist yet; existing topics are
// left as they are.
func EnsureTopics(ctx context.Context, client *kafka.Client, topics ...Topic) error {
	req := &kafka.CreateTopicsRequest{}
	for _, t := range topics {
		tc := kafka.TopicConfig{Topic: t.Name, NumPartitions: t.Partitions, ReplicationFactor: -1}
		for k, v := range t.Configs {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
		}
		req.Topics = append(req.Topics, tc)
	}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("creating topics on %s: %w", client.Addr, err)
	}
	var errs []error
	for name, e := range resp.Errors {
		if e != nil && !errors.Is(e, kafka.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("creating topic %s: %w", name, e))
		}
	}
	return errors.Join(errs...)
}

// Partitions returns the partition numbers of topic, or an error wrapping
// kafka.UnknownTopicOrPartition when it does not exist.
func Partitions(ctx context.Context, client *kafka.Client, topic string) ([]int, error) {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("reading metadata of %s from %s: %w", topic, client.Addr, err)
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("reading metadata of %s: %w", topic, t.Error)
		}
		ps := make([]int, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			ps = append(ps, p.ID)
		}
		return ps, nil
	}
	return nil, fmt.Errorf("reading metadata of %s: %w", topic, kafka.UnknownTopicOrPartition)
}

// Topics lists the topic names of the cluster.
func Topics(ctx context.Context, client *kafka.Client) ([]string, error) {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		return nil, fmt.Errorf("listing topics on %s: %w", client.Addr, err)
	}
	names := make([]string, 0, len(md.Topics))
	for _, t := range md.Topics {
		if !t.Internal && t.Error == nil {
			names = append(names, t.Name)
		}
	}
	return names, nil
}

// ReadAll calls fn for every message of topic, partition by partition, from
// the first offset to the end the topic had when ReadAll started.
func ReadAll(ctx context.Context, c Conn, topic string, fn func(kafka.Message) error) error {
	client := c.Client()
	parts, err := Partitions(ctx, client, topic)
	if err != nil {
		return err
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, p := range parts {
		req.Topics[topic] = append(req.Topics[topic], kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	offs, err := client.ListOffsets(ctx, req)
	if err != nil {
		return fmt.Errorf("listing offsets of %s on %s: %w", topic, c.Addr(), err)
	}
	for _, po := range offs.Topics[topic] {
		if po.Error != nil {
			return fmt.Errorf("listing offsets of %s[%d]: %w", topic, po.Partition, po.Error)
		}
		if po.LastOffset <= po.FirstOffset {
			continue
		}
		if err := readRange(ctx, c, topic, po.Partition, po.FirstOffset, po.LastOffset, fn); err != nil {
			return err
		}
	}
	return nil
}

func readRange(ctx context.Context, c Conn, topic string, partition int, first, end int64, fn func(kafka.Message) error) error {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   c.Brokers,
		Topic:     topic,
		Partition: partition,
		MinBytes:  1,
		MaxBytes:  16 << 20,
		MaxWait:   200 * time.Millisecond,
		Dialer:    &kafka.Dialer{ClientID: c.ClientID, Timeout: 5 * time.Second, DualStack: true},
	})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return fmt.Errorf("seeking %s[%d] to %d: %w", topic, partition, first, err)
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return fmt.Errorf("reading %s[%d] from %s: %w", topic, partition, c.Addr(), err)
		}
		if err := fn(m); err != nil {
			return err
		}
		if m.Offset >= end-1 {
			return nil
		}
	}
}

// Reachable dials the brokers once each and reports the first that answers,
// or an error naming every address tried.
func Reachable(ctx context.Context, brokers []string) error {
	var errs []error
	d := net.Dialer{Timeout: 3 * time.Second}
	for _, b := range brokers {
		conn, err := d.DialContext(ctx, "tcp", b)
		if err == nil {
			conn.Close()
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("no Kafka broker reachable at %s: %w", strings.Join(brokers, ","), errors.Join(errs...))
}

// Retry runs fn until it succeeds, ctx is done, or attempts are used up,
// sleeping with exponential backoff from base (doubling, at most max)
// between attempts. It returns the last error.
func Retry(ctx context.Context, attempts int, base, max time.Duration, fn func(context.Context) error) error {
	var err error
	delay := base
	for i := 0; i < attempts; i++ {
		if err = fn(ctx); err == nil {
			return nil
		}
		if i == attempts-1 {
			break
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		delay = min(delay*2, max)
	}
	return err
}
