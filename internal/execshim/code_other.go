//go:build !amd64

package execshim

// No native shim for this architecture yet: Image returns nil and every
// generation with sockets goes through the Go shim.
const (
	machine = 0
	code    = ""
)
