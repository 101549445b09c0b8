package runtime

import (
	"slices"
	"sync"
	"time"
)

// State is a connector's lifecycle state, named as in Kafka Connect.
type State string

// Connector states.
const (
	StateUnassigned State = "UNASSIGNED" // built, not started yet
	StateRunning    State = "RUNNING"
	StateRestarting State = "RESTARTING" // failed with a retryable error; waiting to restart
	StateFailed     State = "FAILED"     // stopped for good: terminal error or retries used up
	StateStopped    State = "STOPPED"    // stopped by shutdown
)

var allStates = []State{StateUnassigned, StateRunning, StateRestarting, StateFailed, StateStopped}

// Status is a connector's state as reported by /healthz and the CLI.
type Status struct {
	Name     string    `json:"name"`
	Type     string    `json:"type"` // "source" or "sink"
	State    State     `json:"state"`
	Error    string    `json:"error,omitempty"`
	Restarts int       `json:"restarts"`
	Since    time.Time `json:"since"`
}

// statusBoard holds every connector's status.
type statusBoard struct {
	mu sync.Mutex
	m  map[string]*Status
	mx *metrics
}

func newStatusBoard(mx *metrics) *statusBoard {
	return &statusBoard{m: map[string]*Status{}, mx: mx}
}

func (b *statusBoard) add(name, typ string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[name] = &Status{Name: name, Type: typ, State: StateUnassigned, Since: time.Now()}
	b.exportLocked(name)
}

func (b *statusBoard) set(name string, st State, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.m[name]
	if st == StateRestarting {
		s.Restarts++
	}
	s.State, s.Since, s.Error = st, time.Now(), ""
	if err != nil {
		s.Error = err.Error()
	}
	b.exportLocked(name)
}

func (b *statusBoard) exportLocked(name string) {
	for _, st := range allStates {
		v := 0.0
		if b.m[name].State == st {
			v = 1
		}
		b.mx.state.WithLabelValues(name, string(st)).Set(v)
	}
}

// list returns a copy of every status, sorted by name.
func (b *statusBoard) list() []Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Status, 0, len(b.m))
	for _, s := range b.m {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b Status) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}
