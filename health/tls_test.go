package health

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/entrypoint/entrypoint/status/statustest"
)

// selfSigned returns a PEM certificate and key for 127.0.0.1 named cn.
func selfSigned(t *testing.T, cn string) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), cert
}

// secretDir lays out files the way the kubelet writes a Secret volume:
// tls.crt -> ..data/tls.crt, ..data -> a timestamped directory, and a
// rotation that swaps the ..data symlink atomically.
type secretDir struct {
	t   *testing.T
	dir string
	n   int
}

func (s *secretDir) write(files map[string][]byte) {
	s.t.Helper()
	s.n++
	ts := filepath.Join(s.dir, "..2026_01_01_00_00_0"+string(rune('0'+s.n)))
	if err := os.Mkdir(ts, 0o755); err != nil {
		s.t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(ts, name), b, 0o600); err != nil {
			s.t.Fatal(err)
		}
	}
	tmp := filepath.Join(s.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "..data")); err != nil {
		s.t.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(s.dir, name)
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				s.t.Fatal(err)
			}
		}
	}
}

func TestTLSServesAndReloadsRotatedSecret(t *testing.T) {
	sd := &secretDir{t: t, dir: t.TempDir()}
	c1, k1, x1 := selfSigned(t, "first")
	c2, k2, x2 := selfSigned(t, "second")
	sd.write(map[string][]byte{"tls.crt": c1, "tls.key": k1})

	_, base, logs := start(t, Options{
		Controller: statustest.New(statustest.Running("web", 1)),
		TLSCert:    filepath.Join(sd.dir, "tls.crt"),
		TLSKey:     filepath.Join(sd.dir, "tls.key"),
	})
	roots := x509.NewCertPool()
	roots.AddCert(x1)
	roots.AddCert(x2)
	// No keep-alive: every request is a new handshake, as kubelet probes are.
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		DisableKeepAlives: true,
	}}
	served := func() string {
		t.Helper()
		res, err := client.Get(base + "/readyz")
		if err != nil {
			t.Fatalf("GET over TLS: %v", err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("readyz over TLS = %d", res.StatusCode)
		}
		return res.TLS.PeerCertificates[0].Subject.CommonName
	}

	if cn := served(); cn != "first" {
		t.Fatalf("serves %q, want first", cn)
	}
	if res, err := http.Get(base + "/readyz"); err == nil {
		res.Body.Close()
		t.Error("plain HTTP client succeeded against the TLS listener")
	}

	// Half a rotation (new cert, old key) must not break the listener.
	sd.write(map[string][]byte{"tls.crt": c2, "tls.key": k1})
	if cn := served(); cn != "first" {
		t.Fatalf("mid-rotation serves %q, want the last good (first)", cn)
	}
	sd.write(map[string][]byte{"tls.crt": c2, "tls.key": k2})
	if cn := served(); cn != "second" {
		t.Fatalf("after rotation serves %q, want second", cn)
	}
	if cn := served(); cn != "second" {
		t.Fatalf("second handshake after rotation serves %q", cn)
	}
	// A plain rewrite in place (no symlink swap) is picked up too.
	if err := os.WriteFile(filepath.Join(sd.dir, "tls.crt"), c1, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sd.dir, "tls.key"), k1, 0o600); err != nil {
		t.Fatal(err)
	}
	if cn := served(); cn != "first" {
		t.Fatalf("after rewrite in place serves %q, want first", cn)
	}
	if testing.Verbose() {
		t.Log(logs)
	}
}

func TestTLSRefusesUnloadableCertAtStart(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	c1, _, _ := selfSigned(t, "a")
	_, k2, _ := selfSigned(t, "b")
	if err := os.WriteFile(cert, c1, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, k2, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Listen: "127.0.0.1:0", Controller: statustest.New(), TLSCert: cert, TLSKey: key}); err == nil {
		t.Fatal("New accepted a certificate with the wrong key")
	}
	if _, err := New(Options{Listen: "127.0.0.1:0", Controller: statustest.New(), TLSCert: cert + ".missing", TLSKey: key}); err == nil {
		t.Fatal("New accepted a missing certificate file")
	}
}
