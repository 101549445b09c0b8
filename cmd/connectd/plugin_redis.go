package main

import "github.com/connectd/connectd/runtime"

// registerRedis registers the redis connector types. (Filled in when the
// connector lands.)
func registerRedis(reg *runtime.Registry) {}
