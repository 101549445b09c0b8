package cdc

import "errors"

// Sentinel errors shared by every connector.
var (
	// ErrBadEvent means a message is not a change event connectd can read.
	ErrBadEvent = errors.New("bad change event")
	// ErrBadConfig means a connector's configuration is invalid.
	ErrBadConfig = errors.New("bad config")
)

// TerminalError marks an error that retrying cannot fix (bad credentials,
// a missing privilege, a purged binlog). Errors are retryable unless marked.
type TerminalError struct {
	Err error
}

func (e *TerminalError) Error() string { return e.Err.Error() }
func (e *TerminalError) Unwrap() error { return e.Err }

// Terminal marks err as not retryable. It returns nil for a nil err.
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return &TerminalError{Err: err}
}

// IsTerminal reports whether err, or any error it wraps, is terminal.
func IsTerminal(err error) bool {
	var t *TerminalError
	return errors.As(err, &t)
}
