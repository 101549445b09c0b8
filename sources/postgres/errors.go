package postgres

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/connectd/connectd/cdc"
)

// Sentinel errors. Each is wrapped with the names involved and, where
// retrying cannot help, marked terminal.
var (
	// ErrWALLevel means the server's wal_level is not logical.
	ErrWALLevel = errors.New("wal_level is not logical")
	// ErrPrivilege means the role lacks REPLICATION or SELECT.
	ErrPrivilege = errors.New("missing privilege")
	// ErrSlotMissing means the stored position needs a slot that is gone.
	ErrSlotMissing = errors.New("replication slot missing")
	// ErrSlotInvalidated means the slot lost WAL it still needed.
	ErrSlotInvalidated = errors.New("replication slot invalidated")
	// ErrSlotInUse means another connection streams from the slot.
	ErrSlotInUse = errors.New("replication slot in use")
	// ErrPublication means the publication does not cover the tables.
	ErrPublication = errors.New("publication incomplete")
	// ErrBadPosition means a stored position cannot be read.
	ErrBadPosition = errors.New("bad stored position")
)

// pgCode returns the SQLSTATE of err, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// connectError classifies a connection failure: bad credentials, a
// missing database or a pg_hba rejection cannot be fixed by retrying.
func connectError(what, dsn string, err error) error {
	wrapped := fmt.Errorf("connecting %s to %s: %s", what, RedactDSN(dsn), redactErr(err, dsn))
	switch pgCode(err) {
	case "28P01":
		return cdc.Terminal(fmt.Errorf("%w (wrong password)", wrapped))
	case "28000":
		return cdc.Terminal(fmt.Errorf("%w (the role needs LOGIN and REPLICATION, and pg_hba.conf must allow %s connections)", wrapped, what))
	case "3D000":
		return cdc.Terminal(fmt.Errorf("%w (database does not exist)", wrapped))
	case "42501":
		return cdc.Terminal(fmt.Errorf("%w: %w", ErrPrivilege, wrapped))
	}
	return wrapped
}
