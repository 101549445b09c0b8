package configs

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Pos is a place in a YAML file. Line and Col are 1-based; zero means unknown.
type Pos struct {
	File      string
	Line, Col int
}

// String formats p as "file:line:col". Unknown parts are left out: "file:line"
// when the column is unknown, "file" when the line is unknown too.
func (p Pos) String() string {
	s := p.File
	if p.Line <= 0 {
		return s
	}
	if s != "" {
		s += ":"
	}
	s += strconv.Itoa(p.Line)
	if p.Col > 0 {
		s += ":" + strconv.Itoa(p.Col)
	}
	return s
}

// Error is one problem in a config, at a place, under a key path such as
// "sources[0].config.rate".
type Error struct {
	Pos  Pos
	Path string // key path of the offending value; empty for the whole document
	Msg  string

	cause error // wrapped error, when Msg was built with %w
}

// Error formats e as "<pos>: <path>: <msg>", leaving out empty parts.
func (e *Error) Error() string {
	s := e.Pos.String()
	for _, part := range []string{e.Path, e.Msg} {
		if part == "" {
			continue
		}
		if s != "" {
			s += ": "
		}
		s += part
	}
	return s
}

// Unwrap returns the error wrapped with %w in the message, if any.
func (e *Error) Unwrap() error { return e.cause }

// Errorf makes an *Error at pos under path. The format may use %w: the
// wrapped errors stay reachable through errors.Is and errors.As.
func Errorf(pos Pos, path, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	e := &Error{Pos: pos, Path: path, Msg: err.Error()}
	switch err.(type) {
	case interface{ Unwrap() error }, interface{ Unwrap() []error }:
		e.cause = err
	}
	return e
}

// Problems returns every *Error inside err, walking errors.Join trees and
// single wrappers, in the order they were joined. It returns nil when err
// holds no *Error (an I/O error from Load, for instance).
func Problems(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *Error:
			out = append(out, e)
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return out
}

// join orders problems by position (keeping the order of problems at the same
// place), drops exact duplicates, which aliases can cause, and joins them.
func join(problems []*Error) error {
	if len(problems) == 0 {
		return nil
	}
	sorted := slices.Clone(problems)
	slices.SortStableFunc(sorted, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Pos.Line, b.Pos.Line), cmp.Compare(a.Pos.Col, b.Pos.Col))
	})
	errs := make([]error, 0, len(sorted))
	seen := make(map[string]bool, len(sorted))
	for _, p := range sorted {
		if key := p.Error(); !seen[key] {
			seen[key] = true
			errs = append(errs, p)
		}
	}
	return errors.Join(errs...)
}
