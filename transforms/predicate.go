package transforms

import (
	"errors"
	"regexp"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"

	"github.com/connectd/connectd/cdc"
)

// PredicateConfig is the `if:` block of a transform, Kafka Connect's
// predicates. Every condition given must hold (they are ANDed); negate
// inverts the result.
//
//	if: {topic_matches: "shop\\..*"}          # the whole topic matches the regex
//	if: {is_tombstone: true}                  # the record is a tombstone (false: is not)
//	if: {has_header: trace-id}                # a header with this key exists
//	if: {expr: 'record.op == "d"'}            # a CEL expression is true
//	if: {has_header: skip, negate: true}      # none of the above: invert
type PredicateConfig struct {
	TopicMatches string `yaml:"topic_matches"`
	IsTombstone  *bool  `yaml:"is_tombstone"`
	HasHeader    string `yaml:"has_header"`
	Expr         string `yaml:"expr"`
	Negate       bool   `yaml:"negate"`
}

type predicate struct {
	topic       *regexp.Regexp
	isTombstone *bool
	header      string
	expr        *program
	negate      bool
}

// newPredicate compiles c. Its errors are positioned at the `if` key.
func newPredicate(dec cdc.ConfigDecoder, c *PredicateConfig) (*predicate, error) {
	p := &predicate{isTombstone: c.IsTombstone, header: c.HasHeader, negate: c.Negate}
	var errs []error
	if c.TopicMatches == "" && c.IsTombstone == nil && c.HasHeader == "" && c.Expr == "" {
		errs = append(errs, dec.Errorf("if", "if: needs a condition: topic_matches, is_tombstone, has_header or expr"))
	}
	if c.TopicMatches != "" {
		re, err := regexp.Compile(`^(?:` + c.TopicMatches + `)$`)
		if err != nil {
			errs = append(errs, dec.Errorf("if", "topic_matches: invalid regular expression: %v", err))
		}
		p.topic = re
	}
	if c.Expr != "" {
		prg, err := compile(prefixed{dec, "if", "expr: "}, "if", c.Expr, false, cel.BoolType)
		if err != nil {
			errs = append(errs, err)
		}
		p.expr = prg
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// test reports whether the predicate holds for rec.
func (p *predicate) test(rec *cdc.Record) (bool, error) {
	ok, err := p.holds(rec)
	if err != nil {
		return false, err
	}
	return ok != p.negate, nil
}

func (p *predicate) holds(rec *cdc.Record) (bool, error) {
	if p.topic != nil && !p.topic.MatchString(rec.Topic) {
		return false, nil
	}
	if p.isTombstone != nil && rec.Tombstone != *p.isTombstone {
		return false, nil
	}
	if p.header != "" && !hasHeader(rec, p.header) {
		return false, nil
	}
	if p.expr != nil {
		v, err := p.expr.eval(rec, nil)
		if err != nil {
			return false, err
		}
		b, ok := v.(types.Bool)
		if !ok {
			return false, errorf("predicate %q returned %s, not a bool", p.expr.text, v.Type().TypeName())
		}
		return bool(b), nil
	}
	return true, nil
}

func hasHeader(rec *cdc.Record, key string) bool {
	for _, h := range rec.Headers {
		if h.Key == key {
			return true
		}
	}
	return false
}

// prefixed is a ConfigDecoder whose Errorf reports every key at one key,
// with a prefix naming the sub-key (for nested blocks such as `if:`).
type prefixed struct {
	cdc.ConfigDecoder
	key, prefix string
}

func (p prefixed) Errorf(_ string, format string, args ...any) error {
	return p.ConfigDecoder.Errorf(p.key, p.prefix+format, args...)
}
