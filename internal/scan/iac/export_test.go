package iac

import (
	"context"
	"sync"
)

// SharedScanner is a Scanner with the built-in checks, compiled once per
// test binary for the tests of both packages: compiling every check costs
// more than running them.
var SharedScanner = sync.OnceValues(func() (*Scanner, error) {
	return New(context.Background(), Options{})
})
