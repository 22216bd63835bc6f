package pki

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// ErrNotValidNow is returned by KeyPair.Reload for a certificate that is
// expired or not valid yet: the pair in use is kept.
var ErrNotValidNow = errors.New("pki: the certificate is not valid now")

// KeyPair is a TLS certificate and its key read from two PEM files, which
// Reload reads again: a renewed certificate is served from the next
// handshake on, without a restart, while the connections already made
// keep theirs. Its GetCertificate and GetClientCertificate methods go in
// a tls.Config in place of Certificates. It is safe for concurrent use.
type KeyPair struct {
	certFile, keyFile string
	prepare           func(*tls.Certificate) error
	cur               atomic.Pointer[tls.Certificate]
}

// LoadKeyPair reads certFile and keyFile. prepare, when not nil, checks
// each pair read (at this load and at every Reload) and may change it
// (trim the chain it sends, say); an error from it refuses the pair.
func LoadKeyPair(certFile, keyFile string, prepare func(*tls.Certificate) error) (*KeyPair, error) {
	kp := &KeyPair{certFile: certFile, keyFile: keyFile, prepare: prepare}
	pair, err := kp.read()
	if err != nil {
		return nil, err
	}
	kp.cur.Store(pair)
	return kp, nil
}

func (kp *KeyPair) read() (*tls.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(kp.certFile, kp.keyFile)
	if err != nil {
		return nil, fmt.Errorf("pki: reading %s and %s: %w", kp.certFile, kp.keyFile, err)
	}
	if kp.prepare != nil {
		if err := kp.prepare(&pair); err != nil {
			return nil, err
		}
	}
	return &pair, nil
}

// Reload reads the files again and serves the pair they hold from the
// next handshake on, if it is valid at now; otherwise it returns why and
// the pair in use stays. changed reports whether the certificate differs
// from the one it replaces.
func (kp *KeyPair) Reload(now time.Time) (changed bool, err error) {
	pair, err := kp.read()
	if err != nil {
		return false, err
	}
	if err := kp.validAt(pair, now); err != nil {
		return false, err
	}
	old := kp.cur.Swap(pair)
	return old == nil || len(old.Certificate) == 0 || string(old.Certificate[0]) != string(pair.Certificate[0]), nil
}

// ValidAt returns nil if the pair served now is valid at now, and an
// error wrapping ErrNotValidNow that gives its dates if it is expired or
// not valid yet. LoadKeyPair takes such a pair all the same (a node
// restarted with an expired certificate still starts, and a renewed one
// is loaded on Reload); its caller says so.
func (kp *KeyPair) ValidAt(now time.Time) error { return kp.validAt(kp.cur.Load(), now) }

func (kp *KeyPair) validAt(pair *tls.Certificate, now time.Time) error {
	if leaf := pair.Leaf; leaf != nil && (now.Before(leaf.NotBefore) || now.After(leaf.NotAfter)) {
		return fmt.Errorf("pki: %s: valid from %s to %s: %w", kp.certFile,
			leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339), ErrNotValidNow)
	}
	return nil
}

// Current is the pair served now.
func (kp *KeyPair) Current() *tls.Certificate { return kp.cur.Load() }

// GetCertificate serves the current pair to a TLS client
// (tls.Config.GetCertificate).
func (kp *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return kp.cur.Load(), nil
}

// GetClientCertificate presents the current pair to a TLS server that
// asks for one (tls.Config.GetClientCertificate).
func (kp *KeyPair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return kp.cur.Load(), nil
}
