package runtime

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/configs"
	"github.com/connectd/connectd/offsets"
)

// Env is what a connector gets from the runtime besides its config.
type Env struct {
	// Name is the connector's name from the pipeline.
	Name string
	// Logger is already annotated with the connector's name.
	Logger *slog.Logger
	// DataDir is a directory the connector may keep local state in.
	DataDir string
}

// SourceFactory builds a source from its config. It must not connect to
// anything: that happens in Open. It returns positioned config errors.
type SourceFactory func(cfg cdc.ConfigDecoder, env Env) (cdc.Source, error)

// SinkFactory builds a sink from its config without connecting.
type SinkFactory func(cfg cdc.ConfigDecoder, env Env) (cdc.Sink, error)

// TransformFactory builds a transform from its config mapping (which
// includes the `type` key).
type TransformFactory func(cfg cdc.ConfigDecoder) (cdc.Transform, error)

// Registry maps connector and transform type names to their factories. The
// binary builds one explicitly; there is no global registration.
type Registry struct {
	sources    map[string]SourceFactory
	sinks      map[string]SinkFactory
	transforms map[string]TransformFactory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		sources:    map[string]SourceFactory{},
		sinks:      map[string]SinkFactory{},
		transforms: map[string]TransformFactory{},
	}
}

// Source registers a source type.
func (r *Registry) Source(typ string, f SourceFactory) { r.sources[typ] = f }

// Sink registers a sink type.
func (r *Registry) Sink(typ string, f SinkFactory) { r.sinks[typ] = f }

// Transform registers a transform type.
func (r *Registry) Transform(typ string, f TransformFactory) { r.transforms[typ] = f }

// SourceTypes returns the registered source types, sorted.
func (r *Registry) SourceTypes() []string { return sortedKeys(r.sources) }

// SinkTypes returns the registered sink types, sorted.
func (r *Registry) SinkTypes() []string { return sortedKeys(r.sinks) }

// TransformTypes returns the registered transform types, sorted.
func (r *Registry) TransformTypes() []string { return sortedKeys(r.transforms) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// section adapts configs.Section to cdc.ConfigDecoder.
type section struct{ s configs.Section }

func (s section) Decode(out any) error { return s.s.Decode(out) }

// Errorf returns an error positioned at key's value in the section.
func (s section) Errorf(key, format string, args ...any) error {
	return s.s.Errorf(key, format, args...)
}

// built holds the connectors of a pipeline, constructed but not opened.
type built struct {
	sources []builtSource
	sinks   []builtSink
}

// builtSource is a validated source. Each run of its task builds a fresh
// instance with newSource, so a restart never reuses a closed connector.
type builtSource struct {
	cfg        configs.Source
	newSource  func() (cdc.Source, error)
	transforms []namedTransform
	policy     errorPolicy
}

type builtSink struct {
	cfg        configs.Sink
	newSink    func() (cdc.Sink, error)
	transforms []namedTransform
	policy     errorPolicy
}

// namedTransform is a built transform and its type, for error reports.
type namedTransform struct {
	typ string
	t   cdc.Transform
	ip  inPlacer // the transform's in-place form, when it has one
}

// inPlacer is the optional fast form of a one-in, at-most-one-out
// transform: it rewrites the caller's copy of the record (never what that
// copy shares with other records) and reports false to drop it.
type inPlacer interface {
	ApplyInPlace(rec *cdc.Record) (keep bool, err error)
}

// runChain runs ts over in, in order. It uses the in-place forms when every
// transform has one, reusing in's memory for the result (no per-record
// slices), Apply otherwise. On an error it returns the failing transform's
// type.
func runChain(ts []namedTransform, in []cdc.Record, allInPlace bool) ([]cdc.Record, string, error) {
	if allInPlace {
		out := in[:0] // filtered in place: out never overtakes the range
		for _, r := range in {
			keep := true
			for _, t := range ts {
				var err error
				if keep, err = t.ip.ApplyInPlace(&r); err != nil {
					return nil, t.typ, err
				}
				if !keep {
					break
				}
			}
			if keep {
				out = append(out, r)
			}
		}
		return out, "", nil
	}
	chain := in
	for _, t := range ts {
		var next []cdc.Record
		for _, r := range chain {
			o, err := t.t.Apply(r)
			if err != nil {
				return nil, t.typ, err
			}
			next = append(next, o...)
		}
		chain = next
	}
	return chain, "", nil
}

// inPlace reports whether every transform has an in-place form.
func inPlace(ts []namedTransform) bool {
	for _, t := range ts {
		if t.ip == nil {
			return false
		}
	}
	return true
}

// Check builds every connector and transform of p without starting any and
// returns every problem found (errors.Join of positioned errors).
func (r *Registry) Check(p *configs.Pipeline, logger *slog.Logger) error {
	_, err := r.build(p, logger)
	return err
}

func (r *Registry) build(p *configs.Pipeline, logger *slog.Logger) (*built, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var errs []error
	b := &built{}
	for _, sc := range p.Sources {
		spec := connectorSpec{"source", sc.Name, sc.Type, sc.Path, sc.TypePos, sc.Config, sc.Errors, sc.Transforms}
		newSource, ts, pol, err := buildConnector(r, spec, r.sources, r.SourceTypes(), connectorEnv(p, logger, sc.Name))
		errs = append(errs, err)
		if newSource != nil {
			b.sources = append(b.sources, builtSource{cfg: sc, newSource: newSource, transforms: ts, policy: pol})
		}
	}
	for _, sc := range p.Sinks {
		spec := connectorSpec{"sink", sc.Name, sc.Type, sc.Path, sc.TypePos, sc.Config, sc.Errors, sc.Transforms}
		newSink, ts, pol, err := buildConnector(r, spec, r.sinks, r.SinkTypes(), connectorEnv(p, logger, sc.Name))
		errs = append(errs, err)
		if newSink != nil {
			b.sinks = append(b.sinks, builtSink{cfg: sc, newSink: newSink, transforms: ts, policy: pol})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return b, nil
}

// connectorSpec is what sources and sinks share in the pipeline file.
type connectorSpec struct {
	kind, name, typ, path string
	typePos               configs.Pos
	config, errors        configs.Section
	transforms            []configs.Transform
}

func connectorEnv(p *configs.Pipeline, logger *slog.Logger, name string) Env {
	return Env{Name: name, Logger: logger.With("connector", name), DataDir: connectorDir(p, name)}
}

// buildConnector checks one connector — its type, its config (by building
// it once), its transforms and its error policy — and returns how to build
// fresh instances of it, with every problem joined in err.
func buildConnector[C any, F ~func(cdc.ConfigDecoder, Env) (C, error)](r *Registry, s connectorSpec, factories map[string]F, known []string, env Env) (func() (C, error), []namedTransform, errorPolicy, error) {
	f, ok := factories[s.typ]
	if !ok {
		return nil, nil, errorPolicy{}, configs.Errorf(s.typePos, s.path+".type", "unknown %s type %q; known %s types: %s", s.kind, s.typ, s.kind, strings.Join(known, ", "))
	}
	var errs []error
	sec := section{s.config}
	_, cerr := f(sec, env)
	if cerr != nil {
		errs = append(errs, annotate(s.config, cerr))
	}
	ts, err := r.buildTransforms(s.transforms)
	errs = append(errs, err)
	pol, err := parseErrors(s.errors)
	errs = append(errs, err)
	if cerr != nil {
		return nil, ts, pol, errors.Join(errs...)
	}
	return func() (C, error) { return f(sec, env) }, ts, pol, errors.Join(errs...)
}

func (r *Registry) buildTransforms(tcs []configs.Transform) ([]namedTransform, error) {
	var errs []error
	var out []namedTransform
	for _, tc := range tcs {
		f, ok := r.transforms[tc.Type]
		if !ok {
			known := "none yet"
			if len(r.transforms) > 0 {
				known = strings.Join(r.TransformTypes(), ", ")
			}
			errs = append(errs, configs.Errorf(tc.TypePos, tc.Path+".type", "unknown transform type %q; known transform types: %s", tc.Type, known))
			continue
		}
		t, err := f(section{tc.Config})
		if err != nil {
			errs = append(errs, annotate(tc.Config, err))
			continue
		}
		nt := namedTransform{typ: tc.Type, t: t}
		nt.ip, _ = t.(inPlacer)
		out = append(out, nt)
	}
	return out, errors.Join(errs...)
}

// annotate gives an unpositioned connector error the position of the
// connector's config block, so every problem printed has a file:line:col.
func annotate(s configs.Section, err error) error {
	if len(configs.Problems(err)) > 0 {
		return err
	}
	return configs.Errorf(s.Pos(), s.Path(), "%v", err)
}

func connectorDir(p *configs.Pipeline, name string) string {
	return p.Worker.DataDir + "/connectors/" + name
}

// ErrUnknownConnector means a name matches no configured connector.
var ErrUnknownConnector = errors.New("unknown connector")

// OffsetKey returns the offset-store key of the source named name in p.
func (r *Registry) OffsetKey(p *configs.Pipeline, name string) (offsets.Key, error) {
	for _, sc := range p.Sources {
		if sc.Name != name {
			continue
		}
		f, ok := r.sources[sc.Type]
		if !ok {
			return offsets.Key{}, fmt.Errorf("source %q has unknown type %q", name, sc.Type)
		}
		src, err := f(section{sc.Config}, Env{Name: name, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return offsets.Key{}, err
		}
		return sourceKey(name, src), nil
	}
	return offsets.Key{}, fmt.Errorf("%w: no source named %q in %s", ErrUnknownConnector, name, p.File)
}

// sourceKey is the offset key of a source: its server name when it has
// one, else the connector name.
func sourceKey(name string, src cdc.Source) offsets.Key {
	key := offsets.Key{Connector: name, Server: name}
	if sn, ok := src.(cdc.ServerNamer); ok && sn.ServerName() != "" {
		key.Server = sn.ServerName()
	}
	return key
}
