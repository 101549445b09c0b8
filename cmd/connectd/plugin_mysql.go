package main

import "github.com/connectd/connectd/runtime"

// registerMySQL registers the mysql connector types. (Filled in when the
// connector lands.)
func registerMySQL(reg *runtime.Registry) {}
