package control

import (
	"fmt"
	"os"
	"strings"

	"github.com/entrypoint/entrypoint/config"
)

// abstractNames: unix(7) abstract socket names ("@name") are Linux-only.
const abstractNames = true

// Expand replaces config.NamespaceToken in a control socket name with
// this process's PID and mount namespace inodes. The init and a CLI run
// in its container (kubectl exec, docker exec, nsenter --all) compute the
// same name; the containers of a pod, which share one network namespace
// and so one set of abstract socket names, differ in both namespaces
// (in the mount namespace even with shareProcessNamespace).
func Expand(name string) (string, error) {
	if !strings.Contains(name, config.NamespaceToken) {
		return name, nil
	}
	var ids []string
	for _, ns := range []string{"pid", "mnt"} {
		// "pid:[4026532412]"; readlink needs no privilege for our own.
		link, err := os.Readlink("/proc/self/ns/" + ns)
		if err != nil {
			return "", fmt.Errorf("control socket %s: read our %s namespace (is /proc mounted?): %w", name, ns, err)
		}
		id := strings.TrimSuffix(strings.TrimPrefix(link, ns+":["), "]")
		if id == link || id == "" {
			return "", fmt.Errorf("control socket %s: unexpected namespace link %q", name, link)
		}
		ids = append(ids, id)
	}
	return strings.ReplaceAll(name, config.NamespaceToken, strings.Join(ids, "-")), nil
}
