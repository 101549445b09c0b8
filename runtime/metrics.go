package runtime

import "github.com/prometheus/client_golang/prometheus"

// metrics are the worker's Prometheus series, registered on the worker's
// own registry (never the global default).
type metrics struct {
	sourceRecords   *prometheus.CounterVec   // records read from sources (after transforms, incl. tombstones)
	producedRecords *prometheus.CounterVec   // records acknowledged by Kafka
	sinkRecords     *prometheus.CounterVec   // messages a sink reported durable
	errors          *prometheus.CounterVec   // task errors by connector and stage
	deadLetters     *prometheus.CounterVec   // records tolerated (dead-lettered or skipped) by stage
	restarts        *prometheus.CounterVec   // task restarts
	batchSeconds    *prometheus.HistogramVec // time to process one batch, by stage
	uncommitted     *prometheus.GaugeVec     // source records sent but not behind the stored position
	lastCommit      *prometheus.GaugeVec     // unix time of the last stored source position
	sinkLag         *prometheus.GaugeVec     // messages the sink's consumer group is behind
	state           *prometheus.GaugeVec     // 1 for the connector's current state
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		sourceRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "connectd_source_records_total", Help: "Records read from a source, after transforms (tombstones included).",
		}, []string{"connector"}),
		producedRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "connectd_source_records_produced_total", Help: "Source records acknowledged by Kafka.",
		}, []string{"connector"}),
		sinkRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "connectd_sink_records_total", Help: "Messages a sink wrote to its store.",
		}, []string{"connector"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "connectd_errors_total", Help: "Task errors by connector and stage.",
		}, []string{"connector", "stage"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "connectd_dead_letter_records_total", Help: "Records that failed under errors.tolerance: all, sent to the dead letter topic (or logged and skipped without one).",
		}, []string{"connector", "stage"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "connectd_task_restarts_total", Help: "Times a task was restarted after an error.",
		}, []string{"connector"}),
		batchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "connectd_batch_duration_seconds", Help: "Time to process one batch: source read+transform+send, or sink write+commit.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"connector", "stage"}),
		uncommitted: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "connectd_source_uncommitted_records", Help: "Source records sent to Kafka but not yet behind the committed position.",
		}, []string{"connector"}),
		lastCommit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "connectd_source_last_commit_timestamp_seconds", Help: "Unix time at which the source's position was last stored.",
		}, []string{"connector"}),
		sinkLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "connectd_sink_lag_messages", Help: "Messages the sink's consumer group is behind the end of its topics.",
		}, []string{"connector"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "connectd_connector_state", Help: "1 for the connector's current state, 0 otherwise.",
		}, []string{"connector", "state"}),
	}
	reg.MustRegister(m.sourceRecords, m.producedRecords, m.sinkRecords, m.errors, m.deadLetters, m.restarts,
		m.batchSeconds, m.uncommitted, m.lastCommit, m.sinkLag, m.state)
	return m
}
