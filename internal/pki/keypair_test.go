package pki_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/pki"
)

// TestKeyPairReload: Reload serves the renewed certificate from the next
// handshake on; a file that does not parse, a pair the prepare function
// refuses, or a certificate not valid now leaves the one in use.
func TestKeyPairReload(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ca, _, err := pki.LoadOrCreateCA(dir, "chat.test", now.Add(-72*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "n.pem"), filepath.Join(dir, "n.key")
	issue := func(at time.Time, validity time.Duration) {
		t.Helper()
		chain, key, err := ca.Issue(pki.Request{Service: "chat.test", Validity: validity}, at)
		if err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string][]byte{certFile: chain, keyFile: key} {
			if err := os.WriteFile(name, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	issue(now, 0)
	refuse := false
	kp, err := pki.LoadKeyPair(certFile, keyFile, func(c *tls.Certificate) error {
		if refuse {
			return errors.New("refused")
		}
		c.Certificate = c.Certificate[:1] // the leaf alone
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	served := func() *x509.Certificate {
		t.Helper()
		c, err := kp.GetCertificate(nil)
		if err != nil || c == nil || len(c.Certificate) != 1 {
			t.Fatalf("GetCertificate: %v, %v (the prepared chain has the leaf alone)", c, err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf
	}
	first := served()

	if changed, err := kp.Reload(now); err != nil || changed {
		t.Errorf("Reload of the same files: changed %v, %v; want false, nil", changed, err)
	}
	if err := kp.ValidAt(now); err != nil {
		t.Errorf("ValidAt(now) = %v", err)
	}
	for _, at := range []time.Time{now.Add(-2 * time.Hour), now.Add(pki.CertValidity + time.Hour)} {
		if err := kp.ValidAt(at); !errors.Is(err, pki.ErrNotValidNow) {
			t.Errorf("ValidAt(%v) = %v, want ErrNotValidNow", at, err)
		}
	}
	issue(now, 0)
	if changed, err := kp.Reload(now); err != nil || !changed {
		t.Fatalf("Reload of a renewed certificate: changed %v, %v; want true, nil", changed, err)
	}
	renewed := served()
	if renewed.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("the renewed certificate is not served")
	}
	if c, _ := kp.GetClientCertificate(nil); c != kp.Current() {
		t.Error("GetClientCertificate does not present the current pair")
	}

	for _, tt := range []struct {
		name  string
		write func()
		want  error
	}{
		{"a half-written file", func() { _ = os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nMII"), 0o600) }, nil},
		{"an expired certificate", func() { issue(now.Add(-48*time.Hour), 24*time.Hour) }, pki.ErrNotValidNow},
		{"refused by prepare", func() { issue(now, 0); refuse = true }, nil},
	} {
		tt.write()
		changed, err := kp.Reload(now)
		if err == nil || changed || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s: Reload = %v, %v; want an error (%v) and no change", tt.name, changed, err, tt.want)
		}
		if got := served(); got.SerialNumber.Cmp(renewed.SerialNumber) != 0 {
			t.Errorf("%s: the certificate in use changed", tt.name)
		}
	}
}
