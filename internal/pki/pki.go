// Package pki makes and loads the keys and certificates of a Switchboard
// service: a development certificate authority, node certificates that
// carry the service's common name, and the Ed25519 key pair that signs
// user tokens. Everything is stored in PEM files.
//
// A node certificate names the service (the common name users dial) as a
// DNS subject alternative name (an IP subject alternative name when the
// service is an IP address), and the node's own host names and addresses
// too. Clients verify a node against the service name only,
// never against the address a directory gave them: the directory says
// where, the certificate says who.
//
// The CA made here is for development and small private deployments: its
// key sits in a file next to its certificate. Production services would
// rather issue node certificates from the operator's own CA and give
// clients that CA (or use a public one).
//
// Typical use, as `switchboard certs` does it:
//
//	ca, created, err := pki.LoadOrCreateCA(dir, "chat.local", now)
//	cert, key, err := ca.Issue(pki.Request{Service: "chat.local", Hosts: []string{"127.0.0.1"}}, now)
//	err = pki.WriteNewFiles(
//		pki.NewFile{Name: filepath.Join(dir, "n1.pem"), Data: cert, Perm: 0o644},
//		pki.NewFile{Name: filepath.Join(dir, "n1.key"), Data: key, Perm: 0o600})
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names in a certificate directory.
const (
	CAFile    = "ca.pem" // the CA's certificate: what clients and nodes trust
	CAKeyFile = "ca.key" // the CA's private key: keep it off the nodes
)

// Validity of what this package makes.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	CertValidity = 365 * 24 * time.Hour
)

// Errors callers can test with errors.Is.
var (
	// ErrNoPEM: a file holds no PEM block of the kind wanted.
	ErrNoPEM = errors.New("pki: no PEM block of the expected type")
	// ErrKeyType: a key is not of the type wanted (ECDSA, Ed25519).
	ErrKeyType = errors.New("pki: unexpected key type")
	// ErrBadRequest: a certificate request names no service or a bad host.
	ErrBadRequest = errors.New("pki: bad certificate request")
	// ErrExists: WriteNew or WriteNewFiles refused to replace a file.
	ErrExists = errors.New("pki: file exists")
)

// CA is a certificate authority: its certificate and its signing key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// CertPEM is Cert in PEM, as written to CAFile.
	CertPEM []byte
}

// NewCA makes a self-signed ECDSA P-256 CA named after the service,
// valid from an hour before now for CAValidity.
func NewCA(service string, now time.Time) (*CA, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generating the CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Switchboard dev CA for " + service, Organization: []string{"Switchboard"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: signing the CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: reading back the CA certificate: %w", err)
	}
	keyPEM, err := privateKeyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: certPEM(der)}, keyPEM, nil
}

// LoadCA reads a CA's certificate and key from PEM files.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certData, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("pki: reading the CA certificate: %w", err)
	}
	cert, err := ParseCertificate(certData)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", certFile, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("pki: %s is not a CA certificate: %w", certFile, ErrBadRequest)
	}
	keyData, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("pki: reading the CA key: %w", err)
	}
	key, err := ParsePrivateKey(keyData)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", keyFile, err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: certData}, nil
}

// LoadOrCreateCA loads the CA in dir (CAFile, CAKeyFile), or makes one
// for service and writes it there when neither file exists. created
// reports which happened.
func LoadOrCreateCA(dir, service string, now time.Time) (ca *CA, created bool, err error) {
	ca, files, err := LoadOrNewCA(dir, service, now)
	if err != nil || len(files) == 0 {
		return ca, false, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, false, fmt.Errorf("pki: making %s: %w", dir, err)
	}
	if err := WriteNewFiles(files...); err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

// LoadOrNewCA loads the CA in dir (CAFile, CAKeyFile), or, when neither
// file exists, makes one for service in memory and returns the files to
// write it to (its key and certificate), for the caller to write with
// what it issues, all or none (WriteNewFiles). files is empty when the
// CA was loaded.
func LoadOrNewCA(dir, service string, now time.Time) (ca *CA, files []NewFile, err error) {
	certFile, keyFile := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	_, certErr := os.Stat(certFile)
	_, keyErr := os.Stat(keyFile)
	if certErr == nil || keyErr == nil {
		ca, err := LoadCA(certFile, keyFile)
		return ca, nil, err
	}
	ca, keyPEM, err := NewCA(service, now)
	if err != nil {
		return nil, nil, err
	}
	return ca, []NewFile{{keyFile, keyPEM, 0o600}, {certFile, ca.CertPEM, 0o644}}, nil
}

// Request is what a node certificate names.
type Request struct {
	// Service is the service's common name, which clients verify (required).
	Service string
	// Hosts are the node's own host names and IP addresses, for operators
	// and tools that reach the node directly.
	Hosts []string
	// Validity is how long the certificate is valid (default CertValidity);
	// it may not run past the CA's own end.
	Validity time.Duration
}

// MinValidity is the shortest validity a Request may ask for: a node
// certificate valid for less would lapse before it could be renewed.
const MinValidity = time.Hour

// Check says what in r a CA would refuse to sign, whatever the CA
// (ErrBadRequest): a service that is neither a DNS name nor an IP
// address (empty, spaces, slashes, wildcards, a port), a host that is
// neither an IP address nor a name (spaces, slashes, a port), a validity
// other than 0 (the default) and below MinValidity. Callers that make
// files check first, so that a refused request makes none.
func (r Request) Check() error {
	if r.Service == "" || net.ParseIP(r.Service) == nil && strings.ContainsAny(r.Service, " /*:") {
		return fmt.Errorf("pki: service name %q: want a DNS name or an IP address (no spaces, slashes, wildcards or ports): %w", r.Service, ErrBadRequest)
	}
	for _, h := range r.Hosts {
		if h = strings.TrimSpace(h); h != "" && net.ParseIP(h) == nil && strings.ContainsAny(h, " /:") {
			return fmt.Errorf("pki: host %q: want a host name or an IP address (no spaces, slashes or ports): %w", h, ErrBadRequest)
		}
	}
	if r.Validity != 0 && r.Validity < MinValidity {
		return fmt.Errorf("pki: validity %v is below 1h, the least: %w", r.Validity, ErrBadRequest)
	}
	return nil
}

// Issue makes a node certificate for req, signed by ca, with a fresh
// ECDSA P-256 key. It returns both in PEM: the certificate followed by
// the CA's (the chain file a node reads; it sends the certificate alone,
// since clients trust the CA already), and the key.
func (ca *CA) Issue(req Request, now time.Time) (chainPEM, keyPEM []byte, err error) {
	if err := req.Check(); err != nil {
		return nil, nil, err
	}
	validity := req.Validity
	if validity == 0 {
		validity = CertValidity
	}
	// A certificate past its CA's validity would be refused by every
	// client from the CA's end on, whatever its own dates say.
	if now.Before(ca.Cert.NotBefore) || !now.Before(ca.Cert.NotAfter) {
		return nil, nil, fmt.Errorf("pki: the CA is valid from %s to %s, not now (%s): make a new CA: %w",
			ca.Cert.NotBefore.UTC().Format(time.DateOnly), ca.Cert.NotAfter.UTC().Format(time.DateOnly), now.UTC().Format(time.DateOnly), ErrBadRequest)
	}
	if end := now.Add(validity); end.After(ca.Cert.NotAfter) {
		return nil, nil, fmt.Errorf("pki: a certificate valid until %s would outlive its CA (valid until %s): ask for less, or make a new CA: %w",
			end.UTC().Format(time.DateOnly), ca.Cert.NotAfter.UTC().Format(time.DateOnly), ErrBadRequest)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: req.Service, Organization: []string{"Switchboard"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// Server for clients; client too, so that the same certificate can
		// prove a node to its peers.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	// A service named by its address is proved as one: clients and the
	// node (VerifyHostname) look for an IP address among the IP SANs.
	if ip := net.ParseIP(req.Service); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{req.Service}
	}
	for _, h := range req.Hosts {
		h = strings.TrimSpace(h)
		switch {
		case h == "":
		case net.ParseIP(h) != nil:
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(h))
		default:
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generating a node key: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: signing the node certificate: %w", err)
	}
	keyPEM, err = privateKeyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	chain := append(certPEM(der), ca.CertPEM...)
	return chain, keyPEM, nil
}

// LoadPool reads the PEM certificates in file into a pool, for a
// tls.Config's RootCAs (clients) or ClientCAs.
func LoadPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("pki: reading CA certificates: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("pki: %s: no certificate: %w", file, ErrNoPEM)
	}
	return pool, nil
}

// ParseCertificate reads the first CERTIFICATE block of PEM data.
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	block := findBlock(data, "CERTIFICATE")
	if block == nil {
		return nil, fmt.Errorf("pki: certificate: %w", ErrNoPEM)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: parsing a certificate: %w", err)
	}
	return cert, nil
}

// ParsePrivateKey reads a PKCS #8 "PRIVATE KEY" block (ECDSA or Ed25519).
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	block := findBlock(data, "PRIVATE KEY")
	if block == nil {
		return nil, fmt.Errorf("pki: private key: %w", ErrNoPEM)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: parsing a private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("pki: %T: %w", key, ErrKeyType)
	}
	return signer, nil
}

// NewSigningKey makes an Ed25519 key pair for signing user tokens and
// returns it in PEM: the private key (PKCS #8, for the token issuer) and
// the public key (PKIX, for the nodes).
func NewSigningKey() (privPEM, pubPEM []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generating a signing key: %w", err)
	}
	privPEM, err = privateKeyPEM(priv)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: encoding a public key: %w", err)
	}
	return privPEM, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// LoadSigningKey reads an Ed25519 private key (PKCS #8 PEM) from file.
func LoadSigningKey(file string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("pki: reading the signing key: %w", err)
	}
	key, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", file, err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("pki: %s holds a %T, not an Ed25519 key: %w", file, key, ErrKeyType)
	}
	return priv, nil
}

// MaxVerifyKeys is the most public keys LoadVerifyKeys takes from a file.
const MaxVerifyKeys = 16

// LoadVerifyKeys reads every Ed25519 public key (PKIX "PUBLIC KEY" PEM
// block) in file, in order: a file holding the new key beside the old one
// lets tokens signed by either be accepted while the issuer changes keys.
// It refuses a file that is half written (anything but white space after
// its last whole block, or a broken block before a whole one), and one
// that holds a private key (ErrKeyType): the nodes hold only public keys.
func LoadVerifyKeys(file string) ([]ed25519.PublicKey, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("pki: reading the token key: %w", err)
	}
	var keys []ed25519.PublicKey
	for rest, n := data, 1; ; n++ {
		var block *pem.Block
		before := rest
		block, rest = pem.Decode(rest)
		if block == nil {
			if n > 1 && len(bytes.TrimSpace(rest)) > 0 {
				return nil, fmt.Errorf("pki: %s: after PEM block %d, text that is not a whole PEM block (a key half written?): %w", file, n-1, ErrNoPEM)
			}
			break
		}
		// pem.Decode skips what is not a whole block, a broken one too.
		if bytes.Count(before[:len(before)-len(rest)], []byte("-----BEGIN")) > 1 {
			return nil, fmt.Errorf("pki: %s: before PEM block %d, a block that is not whole (a key half written?): %w", file, n, ErrNoPEM)
		}
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return nil, fmt.Errorf("pki: %s: PEM block %d is a private key (%s): the nodes hold only public keys (token.pub from keygen): %w", file, n, block.Type, ErrKeyType)
		}
		if block.Type != "PUBLIC KEY" {
			continue
		}
		pub, err := verifyKey(block)
		if err != nil {
			return nil, fmt.Errorf("pki: %s, key %d: %w", file, len(keys)+1, err)
		}
		if len(keys) == MaxVerifyKeys {
			return nil, fmt.Errorf("pki: %s holds more than %d public keys: %w", file, MaxVerifyKeys, ErrKeyType)
		}
		keys = append(keys, pub)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("pki: %s: public key: %w", file, ErrNoPEM)
	}
	return keys, nil
}

// verifyKey reads the Ed25519 public key of a PKIX "PUBLIC KEY" block.
func verifyKey(block *pem.Block) (ed25519.PublicKey, error) {
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: parsing a public key: %w", err)
	}
	pub, ok := key.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("pki: a %T, not an Ed25519 key: %w", key, ErrKeyType)
	}
	return pub, nil
}

// WriteNew writes data to a new file with the given permissions; it
// refuses (ErrExists) to replace one, so that keys are never overwritten
// by mistake.
func WriteNew(name string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("pki: %s: %w", name, ErrExists)
		}
		return fmt.Errorf("pki: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("pki: writing %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pki: writing %s: %w", name, err)
	}
	return nil
}

// NewFile is one file for WriteNewFiles.
type NewFile struct {
	Name string
	Data []byte
	Perm os.FileMode
}

// WriteNewFiles writes files that belong together (a certificate and its
// key, a key pair) all or none: it creates every one of them first,
// refusing (ErrExists) when any exists, and removes the ones it created
// when it cannot finish. WriteNew one after the other would have left a
// fresh key beside an old certificate that it does not match, when only
// the certificate was there (a key deleted, a run interrupted), and a
// second run would then refuse the key.
func WriteNewFiles(files ...NewFile) (err error) {
	created := make([]*os.File, 0, len(files))
	defer func() {
		for _, f := range created {
			if cerr := f.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("pki: writing %s: %w", f.Name(), cerr)
			}
		}
		if err != nil {
			for _, f := range created {
				_ = os.Remove(f.Name())
			}
		}
	}()
	for _, nf := range files {
		f, err := os.OpenFile(nf.Name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, nf.Perm)
		if err != nil {
			if errors.Is(err, os.ErrExist) {
				return &existsError{name: nf.Name}
			}
			return fmt.Errorf("pki: %w", err)
		}
		created = append(created, f)
	}
	for i, nf := range files {
		if _, err := created[i].Write(nf.Data); err != nil {
			return fmt.Errorf("pki: writing %s: %w", nf.Name, err)
		}
	}
	return nil
}

// existsError is WriteNewFiles' refusal: it says what is in the way and
// what to do, once, and matches ErrExists.
type existsError struct{ name string }

func (e *existsError) Error() string {
	return "pki: " + e.name + " exists, so nothing was written (move it away to make new ones)"
}

func (e *existsError) Unwrap() error { return ErrExists }

func findBlock(data []byte, typ string) *pem.Block {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil
		}
		if block.Type == typ {
			return block
		}
		if len(bytes.TrimSpace(data)) == 0 {
			return nil
		}
	}
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func privateKeyPEM(key any) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encoding a private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: drawing a serial number: %w", err)
	}
	return n, nil
}
