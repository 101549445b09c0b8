package main

import (
	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/runtime"
	pgsink "github.com/connectd/connectd/sinks/postgres"
)

// registerPostgresSink registers the PostgreSQL view sink.
func registerPostgresSink(reg *runtime.Registry) {
	reg.Sink("postgres", func(c cdc.ConfigDecoder, env runtime.Env) (cdc.Sink, error) {
		s, err := pgsink.New(c, env.Name, env.Logger)
		if err != nil {
			return nil, err
		}
		return s, nil
	})
}
