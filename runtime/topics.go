package runtime

import (
	"context"
	"sync"

	"github.com/segmentio/kafka-go"

	"github.com/connectd/connectd/internal/kafkautil"
)

// changeTopicConfigs are the settings of the change topics connectd
// creates: compacted, so the latest event per key (and the tombstone after
// a delete, for delete.retention.ms) is kept forever and views can always
// be rebuilt from the topic.
func changeTopicConfigs() map[string]string {
	return map[string]string{
		"cleanup.policy":      "compact",
		"delete.retention.ms": "86400000", // tombstones stay readable for a day
	}
}

// topicCreator creates change topics the first time the worker sees them.
type topicCreator struct {
	conn       kafkautil.Conn
	partitions int
	client     *kafka.Client

	mu    sync.Mutex
	known map[string]bool
}

func newTopicCreator(conn kafkautil.Conn, partitions int) *topicCreator {
	return &topicCreator{conn: conn, partitions: max(partitions, 1), client: conn.Client(), known: map[string]bool{}}
}

// dlqTopicConfigs are the settings of dead letter topics connectd
// creates: a plain log (records may lack keys), kept a week.
func dlqTopicConfigs() map[string]string {
	return map[string]string{
		"cleanup.policy": "delete",
		"retention.ms":   "604800000",
	}
}

// ensure creates the change topics not seen before; existing topics are
// left as they are.
func (tc *topicCreator) ensure(ctx context.Context, names ...string) error {
	return tc.ensureWith(ctx, changeTopicConfigs(), names...)
}

// ensureWith creates the topics not seen before with the given configs.
func (tc *topicCreator) ensureWith(ctx context.Context, cfg map[string]string, names ...string) error {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	var missing []kafkautil.Topic
	for _, n := range names {
		if !tc.known[n] {
			missing = append(missing, kafkautil.Topic{Name: n, Partitions: tc.partitions, Configs: cfg})
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := kafkautil.EnsureTopics(ctx, tc.client, missing...); err != nil {
		return err
	}
	for _, t := range missing {
		tc.known[t.Name] = true
	}
	return nil
}
