//go:build !linux

package health

import "errors"

// readProcess has only a Linux implementation: the init serves metrics on
// Linux only, and the package builds elsewhere for the CLI's sake.
func readProcess(int) (procSample, error) {
	return procSample{}, errors.New("health: process metrics need Linux /proc")
}
