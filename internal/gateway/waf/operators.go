package waf

import "sync"

var registerOnce sync.Once

// registerOperators replaces Coraza's operators with faster ones where
// Rampart has them (once per process: Coraza's operator table is global).
func registerOperators() {
	registerOnce.Do(func() {})
}
