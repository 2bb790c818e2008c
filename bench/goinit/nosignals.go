//go:build nosignals

package main

// beforeChild has nothing to wait for: no signal is caught, the Go
// runtime's defaults apply.
func beforeChild() {}
