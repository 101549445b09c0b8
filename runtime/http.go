package runtime

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// healthResponse is the body of /healthz.
type healthResponse struct {
	Status     string   `json:"status"` // "ok" or "failing"
	Failing    []string `json:"failing,omitempty"`
	Connectors []Status `json:"connectors"`
}

// Handler returns the worker's HTTP handler: /healthz and /metrics.
func (w *Worker) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", w.serveHealth)
	mux.Handle("GET /metrics", promhttp.HandlerFor(w.gatherer, promhttp.HandlerOpts{Registry: w.registerer}))
	return mux
}

// serveHealth answers 200 when every connector runs and 503 naming the
// ones that do not.
func (w *Worker) serveHealth(rw http.ResponseWriter, _ *http.Request) {
	resp := healthResponse{Status: "ok", Connectors: w.status.list()}
	for _, s := range resp.Connectors {
		if s.State != StateRunning {
			resp.Failing = append(resp.Failing, s.Name+" is "+string(s.State))
		}
	}
	code := http.StatusOK
	if len(resp.Failing) > 0 {
		resp.Status, code = "failing", http.StatusServiceUnavailable
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(code)
	_ = json.NewEncoder(rw).Encode(resp)
}

var _ prometheus.Gatherer = (*prometheus.Registry)(nil)
