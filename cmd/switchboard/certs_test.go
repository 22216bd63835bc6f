package main

import (
	"path/filepath"
	"testing"
)

// certs for a service named by its IP address makes a certificate the
// node takes for that service: the address went into a DNS SAN, and serve
// refused the certificate as not naming the service.
func TestCertsForAnIPService(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	dir := t.TempDir()
	for _, service := range []string{"127.0.0.1", "::1"} {
		if code, _, stderr := runArgs(t, "certs", "--dir", filepath.Join(dir, service), "--service", service, "--node", "n1"); code != exitOK {
			t.Fatalf("certs --service %s: exit %d\n%s", service, code, stderr)
		}
		f := func(name string) string { return filepath.Join(dir, service, name) }
		if code, stdout, stderr := runArgs(t, "serve", "--check", "--service", service, "--tls-cert", f("n1.pem"), "--tls-key", f("n1.key")); code != exitOK {
			t.Errorf("serve --check with the certificate for %s: exit %d\n%s%s", service, code, stdout, stderr)
		}
	}
}
