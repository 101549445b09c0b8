package main

import (
	"github.com/connectd/connectd/cdc"
	"github.com/connectd/connectd/runtime"
	"github.com/connectd/connectd/sinks/redis"
)

// registerRedis registers the redis sink.
func registerRedis(reg *runtime.Registry) {
	reg.Sink("redis", func(c cdc.ConfigDecoder, env runtime.Env) (cdc.Sink, error) {
		s, err := redis.New(c, env.Name, env.Logger)
		if err != nil {
			return nil, err
		}
		return s, nil
	})
}
