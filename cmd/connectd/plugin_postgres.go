package main

import "github.com/connectd/connectd/runtime"

// registerPostgres registers the postgres connector types. (Filled in when the
// connector lands.)
func registerPostgres(reg *runtime.Registry) {}
