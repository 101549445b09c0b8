// Package broker runs connectd's embedded Kafka-protocol broker: franz-go's
// kfake with its data directory, so a single machine needs nothing else and
// topics, offsets and consumer groups survive a restart.
//
// A broker owns its data directory exclusively: Start takes an advisory lock
// (flock) on <dir>/LOCK and fails, naming the directory, when another
// process holds it. The lock dies with the process, so kill -9 never leaves
// a stale lock behind.
package broker
