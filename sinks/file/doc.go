// Package file is a sink that appends every change event it receives to a
// file, one JSON object per line:
//
//	{"topic":"demo.inventory.items","partition":0,"offset":17,"key":{"id":3},"value":{…}}
//
// key and value are embedded as they are in Kafka (JSON when they are JSON,
// otherwise a JSON string); a tombstone has "value":null. It is for trying
// connectd, for tests and for benchmarks (path /dev/null). The file is a log:
// after a crash, re-delivered events are appended again (at-least-once).
package file
