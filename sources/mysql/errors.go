package mysql

import "errors"

// Sentinel errors of the MySQL source. All of them are returned wrapped in
// cdc.Terminal: retrying does not fix them.
var (
	// ErrBinlogPurged means the stored position is no longer on the server.
	ErrBinlogPurged = errors.New("binlog position no longer available")
	// ErrServerConfig means a server setting makes row-based CDC impossible.
	ErrServerConfig = errors.New("unsuitable server configuration")
	// ErrPrivileges means the connector's user lacks a needed privilege.
	ErrPrivileges = errors.New("missing privileges")
	// ErrAuth means the server rejected the user or password.
	ErrAuth = errors.New("authentication failed")
	// ErrConvert means a column value could not be converted.
	ErrConvert = errors.New("cannot convert value")
	// ErrSchema means a row event cannot be decoded with the table map's
	// metadata.
	ErrSchema = errors.New("cannot decode row with table map metadata")
	// ErrServerIDCollision means another replica uses the same server_id.
	ErrServerIDCollision = errors.New("server_id collision")
)
