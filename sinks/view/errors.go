package view

import (
	"errors"
	"fmt"
)

// ErrMissingField means a key template names a field that a record lacks
// (or holds NULL). It is wrapped by *MissingFieldError.
var ErrMissingField = errors.New("key template field missing")

// MissingFieldError reports a key template field that is absent or NULL in
// a record's key and rows.
type MissingFieldError struct {
	Template string // the template, e.g. "customer:{id}"
	Field    string // the field it names
	Topic    string // the topic of the record
	Null     bool   // the field is present but NULL
}

func (e *MissingFieldError) Error() string {
	if e.Null {
		return fmt.Sprintf("key template %q: field %q is null in a record of topic %s", e.Template, e.Field, e.Topic)
	}
	return fmt.Sprintf("key template %q: field %q is absent from the key and the row of a record of topic %s", e.Template, e.Field, e.Topic)
}

// Unwrap returns ErrMissingField.
func (e *MissingFieldError) Unwrap() error { return ErrMissingField }
