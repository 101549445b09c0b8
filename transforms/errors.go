package transforms

import (
	"errors"
	"fmt"
)

// ErrNoKafkaCoordinates means a transform needs where a record sits in
// Kafka (partition, offset) but the record has not been written yet: the
// transform runs on a source connector. Every record fails alike: the
// configuration is wrong, not the record.
var ErrNoKafkaCoordinates = errors.New("no Kafka partition or offset on the source side")

// ErrBadValue means a record cannot be transformed as configured (a cast
// that cannot convert a value, a missing field, a payload that is not an
// object, an expression that fails on it). The record is the problem:
// retrying cannot help, so the runtime's error policy decides (stop or
// dead letter).
var ErrBadValue = errors.New("bad value")

// errorf returns an error wrapping ErrBadValue.
func errorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadValue, fmt.Sprintf(format, args...))
}
