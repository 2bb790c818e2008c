package health

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"
)

// certReloader serves the certificate of two files and reloads it when
// either file changes. A Kubernetes Secret volume rotates by swapping the
// ..data symlink, so os.Stat (which follows it) sees a new inode; a plain
// rewrite shows as a new mtime or size. One stat pair per handshake is
// cheap next to the handshake itself, and needs no inotify watch that a
// symlink swap could silently break.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu     sync.Mutex
	cert   *tls.Certificate
	seen   [2]fileID
	failed [2]fileID // last pair that did not load, to warn once
}

type fileID struct {
	dev, ino uint64
	size     int64
	mtime    time.Time
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	ids, err := r.stat()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load health TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	r.cert, r.seen = &cert, ids
	return r, nil
}

func (r *certReloader) stat() ([2]fileID, error) {
	var ids [2]fileID
	for i, name := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return ids, fmt.Errorf("stat health TLS file: %w", err)
		}
		ids[i] = fileID{size: fi.Size(), mtime: fi.ModTime()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			ids[i].dev, ids[i].ino = uint64(st.Dev), st.Ino
		}
	}
	return ids, nil
}

// get is tls.Config.GetCertificate. While files are mid-rotation (cert new,
// key old) the pair does not load: keep serving the last good certificate
// and try again on the next handshake.
func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids, err := r.stat()
	if err != nil || ids == r.seen || ids == r.failed {
		// A file missing for a moment is a rotation in progress; a pair
		// that failed to load is retried once either file changes again.
		return r.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		r.failed = ids
		r.log.Warn("keeping the current health TLS certificate: new files do not load yet",
			"cert", r.certFile, "key", r.keyFile, "err", err)
		return r.cert, nil
	}
	r.cert, r.seen = &cert, ids
	r.log.Info("reloaded health TLS certificate", "cert", r.certFile)
	return r.cert, nil
}
