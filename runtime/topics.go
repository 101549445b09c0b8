package runtime

import (
	"context"
	"sync"

	"github.com/segmentio/kafka-go"

	"github.com/connectd/connectd/internal/kafkautil"
)

// ChangeTopicConfigs are the settings of the change topics connectd
// creates: compacted, so the latest event per key (and the tombstone after
// a delete, for delete.retention.ms) is kept forever and views can always
// be rebuilt from the topic.
var changeTopicConfigs = map[string]string{
	"cleanup.policy":      "compact",
	"delete.retention.ms": "86400000", // tombstones stay readable for a day
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

// ensure creates the topics not seen before; existing topics are left as
// they are.
func (tc *topicCreator) ensure(ctx context.Context, names ...string) error {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	var missing []kafkautil.Topic
	for _, n := range names {
		if !tc.known[n] {
			missing = append(missing, kafkautil.Topic{Name: n, Partitions: tc.partitions, Configs: changeTopicConfigs})
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
