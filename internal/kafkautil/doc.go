// Package kafkautil holds the few Kafka chores that several packages share:
// a client per use (never kafka-go's shared default transport), creating
// topics idempotently, and reading a topic from its start to its current
// end. It is internal: the rest of the world talks to Kafka through the
// runtime.
package kafkautil
