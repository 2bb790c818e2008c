//go:build !linux

package control

import (
	"fmt"
	"strings"

	"github.com/entrypoint/entrypoint/config"
)

// abstractNames: "@name" is a plain file name off Linux.
const abstractNames = false

// Expand returns name unchanged; a name with config.NamespaceToken is an
// error, because PID and mount namespaces, which make the name unique
// per container, exist only on Linux.
func Expand(name string) (string, error) {
	if !strings.Contains(name, config.NamespaceToken) {
		return name, nil
	}
	return "", fmt.Errorf("control socket %s: %s names Linux namespaces, and this build is not for Linux; give a socket path", name, config.NamespaceToken)
}
