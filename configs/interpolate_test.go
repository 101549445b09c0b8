package configs

import (
	"slices"
	"testing"
)

func TestExpand(t *testing.T) {
	t.Parallel()
	env := envOf(map[string]string{"HOST": "db", "PW": "s3cret", "EMPTY": ""})
	tests := []struct {
		name         string
		in           string
		want         string
		wantVars     []string
		wantProblems []string
	}{
		{name: "no variables", in: "plain $5 text", want: "plain $5 text"},
		{name: "set", in: "${HOST}", want: "db", wantVars: []string{"HOST"}},
		{name: "several in one string", in: "postgres://u:${PW}@${HOST:-127.0.0.1}/db", want: "postgres://u:s3cret@db/db", wantVars: []string{"PW", "HOST"}},
		{name: "default when unset", in: "${PORT:-5432}", want: "5432", wantVars: []string{"PORT"}},
		{name: "default when empty", in: "${EMPTY:-x}", want: "x", wantVars: []string{"EMPTY"}},
		{name: "empty default", in: "a${PORT:-}b", want: "ab", wantVars: []string{"PORT"}},
		{name: "set but empty without default", in: "a${EMPTY}b", want: "ab", wantVars: []string{"EMPTY"}},
		{name: "default with special characters", in: "${URL:-http://h:1/p?q=1}", want: "http://h:1/p?q=1", wantVars: []string{"URL"}},
		{name: "escape", in: "$${HOST} is ${HOST}", want: "${HOST} is db", wantVars: []string{"HOST"}},
		{name: "dollar dollar without brace", in: "$$HOST", want: "$$HOST"},
		{
			name:         "unset",
			in:           "${PG_PASSWORD}",
			wantProblems: []string{"environment variable PG_PASSWORD is not set; export it or write ${PG_PASSWORD:-default}"},
		},
		{
			name: "two unset",
			in:   "${A}:${B}",
			wantProblems: []string{
				"environment variable A is not set; export it or write ${A:-default}",
				"environment variable B is not set; export it or write ${B:-default}",
			},
		},
		{
			name:         "unterminated",
			in:           "x ${HOST",
			wantProblems: []string{`unterminated "${": close it with "}", or write "$${" for a literal "${"`},
		},
		{
			name:         "invalid name",
			in:           "${1X}",
			wantProblems: []string{`invalid environment variable name "1X" in ${1X}`},
		},
		{
			name:         "nested default",
			in:           "${A:-${B}}",
			wantProblems: []string{"nested ${...} in the default of ${A:-...} is not supported"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, subs, problems := expand(tt.in, env)
			if !slices.Equal(problems, tt.wantProblems) {
				t.Fatalf("problems = %q; want %q", problems, tt.wantProblems)
			}
			if len(problems) > 0 {
				return
			}
			if got != tt.want {
				t.Errorf("expand(%q) = %q; want %q", tt.in, got, tt.want)
			}
			var vars []string
			for _, s := range subs {
				vars = append(vars, s.name)
			}
			if !slices.Equal(vars, tt.wantVars) {
				t.Errorf("variables = %q; want %q", vars, tt.wantVars)
			}
		})
	}
}

func TestExpandNilLookup(t *testing.T) {
	t.Parallel()
	if got, _, problems := expand("${A:-x}", nil); got != "x" || problems != nil {
		t.Errorf("expand with nil lookup = %q, %q; want the default", got, problems)
	}
}
