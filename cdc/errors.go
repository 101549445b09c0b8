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

// BadRecordError says that one record cannot be processed, whatever the
// retries: a value a sink's store rejects, a message that is not a change
// event. A sink returns it from Write with n equal to the index of the bad
// message in the batch. The runtime then applies the connector's error
// policy: stop there (errors.tolerance: none) or send that record to the
// dead letter topic and go on (errors.tolerance: all). Errors about the
// store itself (a wrong password, a lost connection) must not be marked
// so: they would dead-letter every record.
type BadRecordError struct {
	Err error
}

func (e *BadRecordError) Error() string { return e.Err.Error() }
func (e *BadRecordError) Unwrap() error { return e.Err }

// BadRecord marks err as caused by one record. It returns nil for a nil
// err.
func BadRecord(err error) error {
	if err == nil {
		return nil
	}
	return &BadRecordError{Err: err}
}

// IsBadRecord reports whether err, or any error it wraps, is a
// BadRecordError.
func IsBadRecord(err error) bool {
	var b *BadRecordError
	return errors.As(err, &b)
}
