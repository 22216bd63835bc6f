package pki_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/pki"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestIssueNamesTheServiceAndTheHosts(t *testing.T) {
	dir := t.TempDir()
	ca, created, err := pki.LoadOrCreateCA(dir, "chat.test", now)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateCA: created %v, %v", created, err)
	}
	chain, keyPEM, err := ca.Issue(pki.Request{Service: "chat.test", Hosts: []string{"127.0.0.1", "n1.example", ""}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(chain, keyPEM); err != nil {
		t.Fatalf("the chain and key do not make a pair: %v", err)
	}
	cert, err := pki.ParseCertificate(chain)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pki.LoadPool(filepath.Join(dir, pki.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, host string
		ok         bool
	}{
		{"service name", "chat.test", true},
		{"node host name", "n1.example", true},
		{"node address", "127.0.0.1", true},
		{"another service", "evil.test", false},
		{"another address", "127.0.0.2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cert.Verify(x509.VerifyOptions{DNSName: tt.host, Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			if (err == nil) != tt.ok {
				t.Errorf("verify for %s: %v, want ok %v", tt.host, err, tt.ok)
			}
		})
	}
	// A second call loads the same CA rather than making another.
	again, created, err := pki.LoadOrCreateCA(dir, "chat.test", now)
	if err != nil || created || !again.Cert.Equal(ca.Cert) {
		t.Fatalf("second LoadOrCreateCA: created %v, same %v, %v", created, err == nil && again.Cert.Equal(ca.Cert), err)
	}
}

// A real TLS handshake: a client that expects the service name accepts
// the node; one that expects another name refuses it.
func TestHandshakeAgainstTheServiceName(t *testing.T) {
	ca, _, err := pki.NewCA("chat.test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	chain, keyPEM, err := ca.Issue(pki.Request{Service: "chat.test", Hosts: []string{"127.0.0.1"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(chain, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	for _, tt := range []struct {
		name string
		ok   bool
	}{{"chat.test", true}, {"evil.test", false}} {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: tt.name})
		if (err == nil) != tt.ok {
			t.Errorf("handshake as %s: %v, want ok %v", tt.name, err, tt.ok)
		}
		if c != nil {
			c.Close()
		}
	}
	ln.Close()
	<-done
}

func TestBadRequests(t *testing.T) {
	ca, _, err := pki.NewCA("chat.test", now)
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []pki.Request{
		{Service: ""}, {Service: "a b"}, {Service: "ok.test", Hosts: []string{"host:7070"}},
		{Service: "ok.test", Validity: -time.Hour},
		// A port is no part of a name, and a certificate valid for less
		// than an hour lapses before it is renewed.
		{Service: "chat.local:7070"}, {Service: "[::1]:7070"},
		{Service: "ok.test", Validity: time.Nanosecond}, {Service: "ok.test", Validity: pki.MinValidity - time.Second},
		// Past the CA's end: clients would refuse it from then on.
		{Service: "ok.test", Validity: pki.CAValidity + 24*time.Hour},
	} {
		if _, _, err := ca.Issue(req, now); !errors.Is(err, pki.ErrBadRequest) {
			t.Errorf("Issue(%+v): %v, want ErrBadRequest", req, err)
		}
	}
	// A CA past its end issues nothing.
	if _, _, err := ca.Issue(pki.Request{Service: "ok.test", Validity: time.Hour}, ca.Cert.NotAfter.Add(time.Hour)); !errors.Is(err, pki.ErrBadRequest) || !strings.Contains(err.Error(), "make a new CA") {
		t.Errorf("Issue by an expired CA: %v, want ErrBadRequest saying to make a new CA", err)
	}
	// Up to the CA's end is fine.
	if _, _, err := ca.Issue(pki.Request{Service: "ok.test", Validity: ca.Cert.NotAfter.Sub(now)}, now); err != nil {
		t.Errorf("Issue up to the CA's end: %v", err)
	}
}

func TestSigningKeyRoundTrip(t *testing.T) {
	dir := t.TempDir()
	privPEM, pubPEM, err := pki.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	priv, pub := filepath.Join(dir, "token.key"), filepath.Join(dir, "token.pub")
	if err := pki.WriteNew(priv, privPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteNew(pub, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteNew(priv, pubPEM, 0o600); !errors.Is(err, pki.ErrExists) {
		t.Errorf("overwriting a key: %v, want ErrExists", err)
	}
	sk, err := pki.LoadSigningKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pks, err := pki.LoadVerifyKeys(pub)
	if err != nil || len(pks) != 1 {
		t.Fatalf("LoadVerifyKeys of one key: %d keys, %v", len(pks), err)
	}
	pk := pks[0]
	if !pk.Equal(sk.Public().(ed25519.PublicKey)) {
		t.Error("the public key does not match the private key")
	}
	if _, err := pki.LoadVerifyKeys(priv); !errors.Is(err, pki.ErrKeyType) || !strings.Contains(err.Error(), "the nodes hold only public keys") {
		t.Errorf("a private key read as a public one: %v, want ErrKeyType saying the nodes hold only public keys", err)
	}
	// A file of two public keys (the issuer's next beside its current)
	// gives both, in order.
	_, nextPEM, err := pki.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	both := filepath.Join(dir, "both.pub")
	if err := os.WriteFile(both, append(append([]byte{}, pubPEM...), nextPEM...), 0o644); err != nil {
		t.Fatal(err)
	}
	keys, err := pki.LoadVerifyKeys(both)
	if err != nil || len(keys) != 2 || !keys[0].Equal(pk) {
		t.Errorf("LoadVerifyKeys of two keys: %d keys, %v; want 2, the first the current", len(keys), err)
	}
	// An ECDSA key is not a token signing key.
	ca, keyPEM, err := pki.NewCA("x.test", now)
	if err != nil || ca == nil {
		t.Fatal(err)
	}
	ecdsaFile := filepath.Join(dir, "ca.key")
	if err := os.WriteFile(ecdsaFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.LoadSigningKey(ecdsaFile); !errors.Is(err, pki.ErrKeyType) {
		t.Errorf("an ECDSA key as a signing key: %v, want ErrKeyType", err)
	}
}

// Files that belong together are written all or none: when one exists,
// the others are not left behind (a fresh key beside an old certificate
// that it does not match), and the one there is untouched.
func TestWriteNewFilesAllOrNone(t *testing.T) {
	dir := t.TempDir()
	key, cert := filepath.Join(dir, "n1.key"), filepath.Join(dir, "n1.pem")
	if err := os.WriteFile(cert, []byte("old certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := pki.WriteNewFiles(pki.NewFile{Name: key, Data: []byte("new key"), Perm: 0o600}, pki.NewFile{Name: cert, Data: []byte("new certificate"), Perm: 0o644})
	if !errors.Is(err, pki.ErrExists) || !strings.Contains(err.Error(), cert) {
		t.Errorf("WriteNewFiles beside an existing %s: %v, want ErrExists naming it", cert, err)
	}
	// It says so once, and what to do (docs/security.md).
	if want := "pki: " + cert + " exists, so nothing was written (move it away to make new ones)"; err == nil || err.Error() != want {
		t.Errorf("WriteNewFiles beside an existing %s says %q, want %q", cert, err, want)
	}
	if _, err := os.Stat(key); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the key was left behind: %v", err)
	}
	if data, _ := os.ReadFile(cert); string(data) != "old certificate" {
		t.Errorf("the existing certificate now holds %q", data)
	}
	if err := os.Remove(cert); err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteNewFiles(pki.NewFile{Name: key, Data: []byte("new key"), Perm: 0o600}, pki.NewFile{Name: cert, Data: []byte("new certificate"), Perm: 0o644}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(key)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the key: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	if data, _ := os.ReadFile(cert); string(data) != "new certificate" {
		t.Errorf("the certificate holds %q", data)
	}
}

// A token key file that is half written (a key being appended during a
// rotation) or holds a private key is refused, never read for the keys it
// has whole: the nodes hold only public keys.
func TestLoadVerifyKeysRefusesDamagedFiles(t *testing.T) {
	privPEM, pubPEM, err := pki.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	_, nextPEM, err := pki.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	half := nextPEM[:len(nextPEM)/2]
	tests := []struct {
		name string
		data []byte
		want error // nil: taken
		why  string
	}{
		{"two whole keys", cat(pubPEM, nextPEM), nil, ""},
		{"white space after the last key", cat(pubPEM, []byte("\n \t\n")), nil, ""},
		{"a comment before the first key", cat([]byte("# the current key\n"), pubPEM), nil, ""},
		{"the second key half written", cat(pubPEM, half), pki.ErrNoPEM, "after PEM block 1, text that is not a whole PEM block"},
		{"the second key without its end line", cat(pubPEM, nextPEM[:len(nextPEM)-len("-----END PUBLIC KEY-----\n")]), pki.ErrNoPEM, "after PEM block 1"},
		{"a broken key before a whole one", cat(pubPEM, half, []byte("\n"), nextPEM), pki.ErrNoPEM, "before PEM block 2, a block that is not whole"},
		{"a private key after a public one", cat(pubPEM, privPEM), pki.ErrKeyType, "PEM block 2 is a private key (PRIVATE KEY): the nodes hold only public keys"},
		{"a private key before a public one", cat(privPEM, pubPEM), pki.ErrKeyType, "PEM block 1 is a private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "token.pub")
			if err := os.WriteFile(file, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			keys, err := pki.LoadVerifyKeys(file)
			switch {
			case tt.want == nil && err != nil:
				t.Errorf("LoadVerifyKeys: %v; want the keys", err)
			case tt.want == nil && len(keys) == 0:
				t.Error("LoadVerifyKeys: no keys")
			case tt.want != nil && (!errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.why) || !strings.Contains(err.Error(), file)):
				t.Errorf("LoadVerifyKeys: %d keys, %v; want %v naming %s and saying %q", len(keys), err, tt.want, file, tt.why)
			}
		})
	}
}

// A service named by its IP address is proved in an IP SAN, where the
// node (VerifyHostname) and clients look for it: as a DNS SAN the node
// refused its own certificate.
func TestIssueForAnIPService(t *testing.T) {
	ca, _, err := pki.NewCA("10.0.0.7", now)
	if err != nil {
		t.Fatal(err)
	}
	for _, service := range []string{"10.0.0.7", "2001:db8::7"} {
		chain, _, err := ca.Issue(pki.Request{Service: service}, now)
		if err != nil {
			t.Fatalf("Issue for %s: %v", service, err)
		}
		cert, err := pki.ParseCertificate(chain)
		if err != nil {
			t.Fatal(err)
		}
		if err := cert.VerifyHostname(service); err != nil || len(cert.DNSNames) != 0 {
			t.Errorf("%s: VerifyHostname: %v; DNS SANs %q, IP SANs %v", service, err, cert.DNSNames, cert.IPAddresses)
		}
	}
}
