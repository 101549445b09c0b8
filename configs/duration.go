package configs

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// durationHint ends every message about a value that is not a duration.
const durationHint = "write a duration such as 10s"

// Duration is a time.Duration written in YAML as a Go duration string such as
// "10s" or "1m30s". A plain number is rejected because its unit would be a
// guess.
type Duration time.Duration

// String formats d like time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML decodes d from a duration string. It lets plain yaml.v3 decode
// a Duration too; Section.Decode handles Duration itself and reports problems
// with their position.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, ok := parseDuration(n)
	if !ok {
		return fmt.Errorf("cannot use %s as a duration; %s", describeKind(n), durationHint)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML encodes d as a duration string, so a Pipeline round-trips.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// parseDuration reads a duration from a scalar node.
func parseDuration(n *yaml.Node) (time.Duration, bool) {
	if n.Kind != yaml.ScalarNode {
		return 0, false
	}
	v, err := time.ParseDuration(strings.TrimSpace(n.Value))
	return v, err == nil
}
