package configs

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// substitution is one ${VAR} replaced inside a scalar.
type substitution struct {
	name   string
	value  string // the text put in place of ${VAR}
	secret bool   // value came from the environment (not from a :-default)
}

// envInfo is what interpolation learned about a tree. It is written once,
// while parsing, and only read afterwards, so Sections sharing it can be
// decoded concurrently.
type envInfo struct {
	subs   map[*yaml.Node][]substitution // scalars whose value came (partly) from ${...}
	failed map[*yaml.Node]bool           // scalars whose interpolation failed; already reported
}

// fromEnv returns the substitutions made in n; nil when n was written literally.
func (e *envInfo) fromEnv(n *yaml.Node) []substitution {
	if e == nil {
		return nil
	}
	return e.subs[n]
}

// hasFailed reports whether interpolating n failed.
func (e *envInfo) hasFailed(n *yaml.Node) bool {
	return e != nil && e.failed[n]
}

// interpolate replaces ${VAR} and ${VAR:-default} in every scalar value of the
// tree under root, in place, and turns $${ into a literal ${. Mapping keys are
// left alone. Working on the node tree keeps every position exact.
func interpolate(file string, root *yaml.Node, lookupEnv func(string) (string, bool)) (*envInfo, []*Error) {
	in := &interpolator{
		file:   file,
		lookup: lookupEnv,
		info: &envInfo{
			subs:   make(map[*yaml.Node][]substitution),
			failed: make(map[*yaml.Node]bool),
		},
		seen: make(map[*yaml.Node]bool),
	}
	in.walk(root, "")
	return in.info, in.errs
}

type interpolator struct {
	file   string
	lookup func(string) (string, bool)
	info   *envInfo
	seen   map[*yaml.Node]bool // each node is expanded once, even when anchors repeat it
	errs   []*Error
}

func (in *interpolator) walk(n *yaml.Node, path string) {
	if n == nil || in.seen[n] {
		return
	}
	in.seen[n] = true
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			in.walk(c, path)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			in.walk(c, indexPath(path, i))
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			in.walk(n.Content[i+1], keyPath(path, n.Content[i].Value))
		}
	case yaml.ScalarNode:
		in.scalar(n, path)
	}
	// Alias nodes are not followed: their anchor is expanded where it is written.
}

func (in *interpolator) scalar(n *yaml.Node, path string) {
	if !strings.Contains(n.Value, "$") {
		return
	}
	value, subs, problems := expand(n.Value, in.lookup)
	if len(problems) > 0 {
		for _, msg := range problems {
			in.errs = append(in.errs, Errorf(Pos{File: in.file, Line: n.Line, Col: n.Column}, path, "%s", msg))
		}
		in.info.failed[n] = true
		return
	}
	if value == n.Value {
		return
	}
	n.Value = value
	if len(subs) > 0 {
		in.info.subs[n] = subs
	}
	// A plain scalar is re-typed from its new text, as if the value had been
	// written in the file: `rate: ${RATE:-100}` is an integer. Quoted, block and
	// explicitly tagged scalars keep their type.
	const typed = yaml.TaggedStyle | yaml.DoubleQuotedStyle | yaml.SingleQuotedStyle | yaml.LiteralStyle | yaml.FoldedStyle
	if n.Style&typed == 0 {
		n.Tag = ""
	}
}

// expand interpolates one string. It returns the result, the substitutions
// made and, when it cannot expand s, the messages saying why. ${VAR:-default}
// uses default when VAR is unset or empty, as the shell does.
func expand(s string, lookupEnv func(string) (string, bool)) (string, []substitution, []string) {
	var (
		b        strings.Builder
		subs     []substitution
		problems []string
	)
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				problems = append(problems, `unterminated "${": close it with "}", or write "$${" for a literal "${"`)
				return s, nil, problems
			}
			expr := s[i+2 : i+2+end]
			i += 2 + end + 1
			name, def, hasDefault := strings.Cut(expr, ":-")
			switch {
			case !isEnvName(name):
				problems = append(problems, fmt.Sprintf("invalid environment variable name %q in ${%s}", name, expr))
				continue
			case strings.Contains(def, "${"):
				problems = append(problems, fmt.Sprintf("nested ${...} in the default of ${%s:-...} is not supported", name))
				continue
			}
			value, ok := "", false
			if lookupEnv != nil {
				value, ok = lookupEnv(name)
			}
			switch {
			case ok && (value != "" || !hasDefault):
				subs = append(subs, substitution{name: name, value: value, secret: true})
			case hasDefault:
				value = def
				subs = append(subs, substitution{name: name, value: value})
			default:
				problems = append(problems, fmt.Sprintf("environment variable %s is not set; export it or write ${%s:-default}", name, name))
				continue
			}
			b.WriteString(value)
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), subs, problems
}

// isEnvName reports whether s is a shell variable name.
func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', 'A' <= r && r <= 'Z', 'a' <= r && r <= 'z':
		case '0' <= r && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
