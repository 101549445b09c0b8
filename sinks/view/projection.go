package view

import (
	"errors"
	"slices"

	"github.com/connectd/connectd/cdc"
)

// Select is the projection part of a sink's config: which fields of a row
// the view keeps and under which names. Sinks embed it with
// `yaml:",inline"` so the keys sit beside their own.
type Select struct {
	// Fields lists the fields to keep, in the source's names; empty keeps
	// every field not excluded.
	Fields []string `yaml:"fields"`
	// ExcludeFields lists fields to drop; it cannot be combined with Fields.
	ExcludeFields []string `yaml:"exclude_fields"`
	// Rename maps a source field name to the name it has in the view.
	Rename map[string]string `yaml:"rename"`
}

// Errorf reports a problem with the value of a config key, positioned where
// the key is written (cdc.ConfigDecoder.Errorf has this shape).
type Errorf func(key, format string, args ...any) error

// Projection keeps and renames the fields of rows as a Select says.
type Projection struct {
	keep    map[string]string // source name → view name; nil keeps all
	exclude map[string]bool
	rename  map[string]string
	all     bool // no fields, no exclusions, no renames: rows pass as they are
}

// Compile checks s and returns its Projection. Every problem is reported
// (errors.Join), each positioned through errorf at the key it concerns.
func (s Select) Compile(errorf Errorf) (*Projection, error) {
	var errs []error
	p := &Projection{rename: s.Rename}
	if len(s.Fields) > 0 && len(s.ExcludeFields) > 0 {
		errs = append(errs, errorf("exclude_fields", "set either fields (the fields to keep) or exclude_fields (the fields to drop), not both"))
	}
	if len(s.Fields) > 0 {
		p.keep = make(map[string]string, len(s.Fields))
		for i, f := range s.Fields {
			if f == "" {
				errs = append(errs, errorf("fields", "fields[%d] is empty", i))
				continue
			}
			if _, dup := p.keep[f]; dup {
				errs = append(errs, errorf("fields", "fields lists %q twice", f))
			}
			p.keep[f] = f
		}
	}
	if len(s.ExcludeFields) > 0 {
		p.exclude = make(map[string]bool, len(s.ExcludeFields))
		for _, f := range s.ExcludeFields {
			p.exclude[f] = true
		}
	}
	renamed := map[string]string{} // view name → source name
	from := make([]string, 0, len(s.Rename))
	for f := range s.Rename {
		from = append(from, f)
	}
	slices.Sort(from) // deterministic messages
	for _, f := range from {
		to := s.Rename[f]
		switch {
		case to == "":
			errs = append(errs, errorf("rename", "rename: %q is renamed to an empty name", f))
			continue
		case p.keep != nil && p.keep[f] == "":
			errs = append(errs, errorf("rename", "rename: %q is not one of fields, so it never reaches the view", f))
			continue
		case p.exclude[f]:
			errs = append(errs, errorf("rename", "rename: %q is in exclude_fields, so it never reaches the view", f))
			continue
		}
		if other, dup := renamed[to]; dup {
			errs = append(errs, errorf("rename", "rename: %q and %q are both renamed to %q", other, f, to))
		}
		renamed[to] = f
		if p.keep != nil {
			p.keep[f] = to
		}
	}
	if p.keep != nil {
		for _, f := range s.Fields {
			if src, ok := renamed[f]; ok && src != f && s.Rename[f] == "" {
				errs = append(errs, errorf("rename", "rename: %q is renamed to %q, which fields also keeps under its own name", src, f))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	p.all = p.keep == nil && p.exclude == nil && len(p.rename) == 0
	return p, nil
}

// All reports whether the projection keeps every field under its own name.
func (p *Projection) All() bool { return p.all }

// Name returns the view name of the source field name, and false when the
// projection drops it.
func (p *Projection) Name(name string) (string, bool) {
	switch {
	case p.keep != nil:
		to, ok := p.keep[name]
		return to, ok
	case p.exclude[name]:
		return "", false
	}
	if to, ok := p.rename[name]; ok {
		return to, true
	}
	return name, true
}

// Append appends the fields of row that the projection keeps, renamed, to
// dst and returns it. Values, NULLs and unchanged-TOAST markers are copied
// as they are: what to do with them is the sink's business.
func (p *Projection) Append(dst, row cdc.Row) cdc.Row {
	if p.all {
		return append(dst, row...)
	}
	for _, f := range row {
		name, ok := p.Name(f.Name)
		if !ok {
			continue
		}
		f.Name = name
		dst = append(dst, f)
	}
	return dst
}
