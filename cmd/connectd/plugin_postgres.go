package main

import (
	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/runtime"
	"github.com/connectd/connectd/sources/postgres"
)

// registerPostgres registers the postgres connector types.
func registerPostgres(reg *runtime.Registry) {
	reg.Source("postgres", func(c cdc.ConfigDecoder, env runtime.Env) (cdc.Source, error) {
		s, err := postgres.New(c, env.Name, env.Logger)
		if err != nil {
			return nil, err
		}
		return s, nil
	})
}
