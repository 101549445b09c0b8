package main

import (
	"github.com/connectd/connectd/runtime"
	"github.com/connectd/connectd/transforms"
)

// registerTransforms registers every transform type of package transforms.
func registerTransforms(reg *runtime.Registry) {
	for name, f := range transforms.Factories() {
		reg.Transform(name, f)
	}
}
