//go:build !amd64 && !arm64

package shim

// The takeover filter is written for little-endian amd64 and arm64 only;
// elsewhere the shim reports it unavailable and the app still starts.
const (
	supported  = false
	auditArch  = 0
	sysSeccomp = 0
)
