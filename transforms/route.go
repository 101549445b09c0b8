package transforms

import (
	"errors"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connectd/connectd/cdc"
)

// RouteConfig configures route, Kafka Connect's RegexRouter:
//
//	transforms:
//	  - type: route
//	    pattern: "shop\\.shop\\.(.*)"
//	    replacement: "views.$1"
//
// When the whole topic matches pattern, it becomes replacement, in which
// $1 or $name stand for the groups (Go regexp.Expand syntax; ${1} must be
// written $${1} in a config file, where ${…} is environment
// interpolation). Other topics are left alone.
type RouteConfig struct {
	Common      `yaml:",inline"`
	Pattern     string `yaml:"pattern"`
	Replacement string `yaml:"replacement"`
}

type route struct {
	re          *regexp.Regexp
	replacement string
	cache       topicCache
}

// topicCache remembers the new topic of each topic seen: a pipeline has
// few topics and routing every record through the regexp again would cost
// more than the rest of a chain. Safe for concurrent use; bounded.
type topicCache struct {
	m    sync.Map // string → string
	size atomic.Int64
}

const maxCachedTopics = 4096

func (c *topicCache) get(topic string) (string, bool) {
	v, ok := c.m.Load(topic)
	if !ok {
		return "", false
	}
	return v.(string), true
}

func (c *topicCache) put(topic, routed string) {
	if c.size.Load() < maxCachedTopics {
		if _, loaded := c.m.LoadOrStore(topic, routed); !loaded {
			c.size.Add(1)
		}
	}
}

func newRoute(dec cdc.ConfigDecoder) (InPlacer, error) {
	var c RouteConfig
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	errs := []error{
		required(dec, "pattern", c.Pattern, `pattern: "shop\\.(.*)"`),
		required(dec, "replacement", c.Replacement, `replacement: "views.$1"`),
	}
	var re *regexp.Regexp
	if c.Pattern != "" {
		var err error
		if re, err = regexp.Compile(`^(?:` + c.Pattern + `)$`); err != nil {
			errs = append(errs, dec.Errorf("pattern", "invalid regular expression: %v", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &route{re: re, replacement: c.Replacement}, nil
}

func (r *route) ApplyInPlace(rec *cdc.Record) (bool, error) {
	if topic, ok := r.cache.get(rec.Topic); ok {
		rec.Topic = topic
		return true, nil
	}
	topic := rec.Topic
	if m := r.re.FindStringSubmatchIndex(rec.Topic); m != nil {
		topic = string(r.re.ExpandString(nil, r.replacement, rec.Topic, m))
		if topic == "" {
			return false, errorf("topic %s: replacement %q gives an empty topic", rec.Topic, r.replacement)
		}
	}
	r.cache.put(rec.Topic, topic)
	rec.Topic = topic
	return true, nil
}

// TimestampRouteConfig configures timestamp_route, Kafka Connect's
// TimestampRouter:
//
//	transforms:
//	  - type: timestamp_route
//	    topic_format: "${topic}-${timestamp}"   # the default
//	    timestamp_format: "20060102"            # Go layout; the default (yyyyMMdd)
//
// The topic becomes topic_format with ${topic} replaced by the current
// topic and ${timestamp} by the record's time in UTC formatted with
// timestamp_format. The time is the Kafka message timestamp on the sink
// side; on the source side it is the commit time at the source
// (source.ts_ms), which is the same when the change is read again after a
// restart, falling back to the envelope ts_ms.
type TimestampRouteConfig struct {
	Common          `yaml:",inline"`
	TopicFormat     string `yaml:"topic_format"`
	TimestampFormat string `yaml:"timestamp_format"`
}

type timestampRoute struct{ topicFormat, timestampFormat string }

func newTimestampRoute(dec cdc.ConfigDecoder) (InPlacer, error) {
	var c TimestampRouteConfig
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	if c.TopicFormat == "" {
		c.TopicFormat = "{topic}-{timestamp}"
	}
	if c.TimestampFormat == "" {
		c.TimestampFormat = "20060102"
	}
	if !strings.Contains(c.TopicFormat, "{topic}") && !strings.Contains(c.TopicFormat, "{timestamp}") {
		return nil, dec.Errorf("topic_format", "topic_format %q uses neither {topic} nor {timestamp}: every record would go to one topic", c.TopicFormat)
	}
	return &timestampRoute{topicFormat: c.TopicFormat, timestampFormat: c.TimestampFormat}, nil
}

func (r *timestampRoute) ApplyInPlace(rec *cdc.Record) (bool, error) {
	ts := recordTime(rec)
	if ts.IsZero() {
		return false, errorf("topic %s: record has no timestamp", rec.Topic)
	}
	topic := expand(r.topicFormat, "topic", rec.Topic)
	rec.Topic = expand(topic, "timestamp", ts.UTC().Format(r.timestampFormat))
	return true, nil
}

// recordTime is the record's timestamp as Kafka Connect sees it: the
// message timestamp on the sink side, the source commit time (else the
// envelope time) on the source side.
func recordTime(rec *cdc.Record) time.Time {
	if rec.Kafka != nil && !rec.Kafka.Timestamp.IsZero() {
		return rec.Kafka.Timestamp
	}
	if rec.Source.TsMs != 0 {
		return time.UnixMilli(rec.Source.TsMs)
	}
	return rec.Time
}

// InsertHeaderConfig configures insert_header, Kafka Connect's
// InsertHeader:
//
//	transforms:
//	  - type: insert_header
//	    header: origin
//	    value: shop-eu
//
// The header is added to every record (tombstones included); existing
// headers with the same key are kept, as Kafka allows repeated keys.
type InsertHeaderConfig struct {
	Common `yaml:",inline"`
	Header string `yaml:"header"`
	Value  string `yaml:"value"`
}

type insertHeader struct {
	h cdc.Header
}

func newInsertHeader(dec cdc.ConfigDecoder) (InPlacer, error) {
	var c InsertHeaderConfig
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	if err := required(dec, "header", c.Header, "header: origin"); err != nil {
		return nil, err
	}
	return &insertHeader{h: cdc.Header{Key: c.Header, Value: []byte(c.Value)}}, nil
}

func (t *insertHeader) ApplyInPlace(rec *cdc.Record) (bool, error) {
	h := make([]cdc.Header, len(rec.Headers), len(rec.Headers)+1)
	copy(h, rec.Headers)
	rec.Headers = append(h, t.h)
	return true, nil
}

// DropHeadersConfig configures drop_headers, Kafka Connect's DropHeaders:
//
//	transforms:
//	  - type: drop_headers
//	    headers: [trace-id, debug]
//
// Every header with one of these keys is removed.
type DropHeadersConfig struct {
	Common  `yaml:",inline"`
	Headers []string `yaml:"headers"`
}

type dropHeaders struct{ keys map[string]bool }

func newDropHeaders(dec cdc.ConfigDecoder) (InPlacer, error) {
	var c DropHeadersConfig
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	if err := requiredList(dec, "headers", c.Headers, "headers: [trace-id]"); err != nil {
		return nil, err
	}
	return &dropHeaders{keys: setOf(c.Headers)}, nil
}

func (t *dropHeaders) ApplyInPlace(rec *cdc.Record) (bool, error) {
	var h []cdc.Header
	for _, x := range rec.Headers {
		if !t.keys[x.Key] {
			h = append(h, x)
		}
	}
	rec.Headers = h
	return true, nil
}

// expand replaces {name} and ${name} in format by value.
func expand(format, name, value string) string {
	format = strings.ReplaceAll(format, "${"+name+"}", value)
	return strings.ReplaceAll(format, "{"+name+"}", value)
}
