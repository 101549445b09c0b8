package main

import (
	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/runtime"
	"github.com/connectd/connectd/sources/mysql"
)

// registerMySQL registers the mysql source (MySQL and MariaDB binlogs).
func registerMySQL(reg *runtime.Registry) {
	reg.Source("mysql", func(c cdc.ConfigDecoder, env runtime.Env) (cdc.Source, error) {
		s, err := mysql.New(c, env.Name, env.Logger)
		if err != nil {
			return nil, err
		}
		return s, nil
	})
}
