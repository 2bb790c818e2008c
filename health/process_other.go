//go:build !linux

package health

import "errors"

// procReader has only a Linux implementation: the init serves metrics on
// Linux only, and the package builds elsewhere for the CLI's sake.
func procReader() func(pid int) (procSample, error) {
	return func(int) (procSample, error) {
		return procSample{}, errors.New("health: process metrics need Linux /proc")
	}
}
