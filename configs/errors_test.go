package configs

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"testing"
)

func TestPosString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		pos  Pos
		want string
	}{
		{name: "full", pos: Pos{File: "pipeline.yaml", Line: 12, Col: 7}, want: "pipeline.yaml:12:7"},
		{name: "no column", pos: Pos{File: "pipeline.yaml", Line: 12}, want: "pipeline.yaml:12"},
		{name: "no line", pos: Pos{File: "pipeline.yaml"}, want: "pipeline.yaml"},
		{name: "no file", pos: Pos{Line: 3, Col: 1}, want: "3:1"},
		{name: "zero", pos: Pos{}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.pos.String(); got != tt.want {
				t.Errorf("String() = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestErrorError(t *testing.T) {
	t.Parallel()
	pos := Pos{File: "pipeline.yaml", Line: 12, Col: 7}
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{
			name: "with path",
			err:  Errorf(pos, "sources[0].config.rate", "cannot use %q as a number; write an integer such as %d", "fast", 1000),
			want: `pipeline.yaml:12:7: sources[0].config.rate: cannot use "fast" as a number; write an integer such as 1000`,
		},
		{
			name: "without path",
			err:  Errorf(pos, "", "empty config"),
			want: "pipeline.yaml:12:7: empty config",
		},
		{
			name: "without position",
			err:  Errorf(Pos{}, "kafka", "bad"),
			want: "kafka: bad",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestErrorfWraps(t *testing.T) {
	t.Parallel()
	err := Errorf(Pos{}, "worker.data_dir", "creating it: %w", fs.ErrPermission)
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("errors.Is(%v, fs.ErrPermission) = false; want true", err)
	}
	if err := Errorf(Pos{}, "", "plain"); err.Unwrap() != nil {
		t.Errorf("Unwrap() of a message without %%w = %v; want nil", err.Unwrap())
	}
}

func TestProblems(t *testing.T) {
	t.Parallel()
	a := Errorf(Pos{Line: 1}, "a", "first")
	b := Errorf(Pos{Line: 2}, "b", "second")
	c := Errorf(Pos{Line: 3}, "c", "third")
	tests := []struct {
		name string
		err  error
		want []*Error
	}{
		{name: "nil", err: nil, want: nil},
		{name: "single", err: a, want: []*Error{a}},
		{name: "joined", err: errors.Join(a, b, c), want: []*Error{a, b, c}},
		{name: "nested joins", err: errors.Join(a, errors.Join(b, c)), want: []*Error{a, b, c}},
		{name: "wrapped", err: fmt.Errorf("loading pipeline: %w", errors.Join(b, a)), want: []*Error{b, a}},
		{name: "other errors skipped", err: errors.Join(fs.ErrNotExist, a), want: []*Error{a}},
		{name: "no problems", err: fs.ErrNotExist, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Problems(tt.err); !slices.Equal(got, tt.want) {
				t.Errorf("Problems() = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestJoinOrdersAndDeduplicates(t *testing.T) {
	t.Parallel()
	late := Errorf(Pos{File: "f", Line: 9, Col: 1}, "z", "late")
	early := Errorf(Pos{File: "f", Line: 2, Col: 5}, "a", "early")
	again := Errorf(Pos{File: "f", Line: 2, Col: 5}, "a", "early")
	sameSpot := Errorf(Pos{File: "f", Line: 2, Col: 5}, "a", "second at the same place")
	got := Problems(join([]*Error{late, early, again, sameSpot}))
	if want := []*Error{early, sameSpot, late}; !slices.Equal(got, want) {
		t.Errorf("join order = %v; want %v", got, want)
	}
	if join(nil) != nil {
		t.Error("join(nil) != nil")
	}
}
