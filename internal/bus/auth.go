package bus

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/switchboard/switchboard/internal/pki"
)

// Errors Open returns for a cluster that would be open to strangers or is
// half configured.
var (
	// ErrInsecureCluster: a cluster listener without a secret or TLS
	// certificate would let any server that reaches it join. Give
	// Config.Secret or Config.TLSCert, or set Config.Insecure to run it
	// open on purpose.
	ErrInsecureCluster = errors.New("bus: a cluster listener needs a cluster secret or a TLS certificate (or Insecure to leave it open)")
	// ErrWeakSecret: the cluster secret is shorter than MinSecret bytes.
	ErrWeakSecret = fmt.Errorf("bus: the cluster secret is shorter than %d bytes", MinSecret)
	// ErrTLSIncomplete: route TLS needs a certificate, its key and the CA
	// that signed the peers' certificates, all three.
	ErrTLSIncomplete = errors.New("bus: cluster TLS needs a certificate, its key and a CA, all three")
)

// MinSecret is the shortest cluster secret Open accepts, in bytes.
const MinSecret = 16

// The users of the embedded server's client side. Nothing but this
// process knows the passwords of the first two: Open draws them at random.
const (
	// userNode is the node's general connections (rooms, JetStream): they
	// may publish anything but directory entries.
	userNode = "node"
	// userDir is the directory connection: it may publish only this node's
	// own entry and sync requests, and subscribe only to the directory.
	userDir = "dir"
	// OperatorUser is the user an operator's tool (the nats CLI, a bench)
	// connects as on the embedded server's loopback client port. Its
	// password is the cluster secret; it exists only when there is one,
	// and it may not publish directory entries either.
	OperatorUser = "operator"
	// routeUser is the user routes authenticate as; the password is
	// derived from the secret, so that the secret itself never travels.
	routeUser = "route"
)

// DirSubjects names the directory exchange's subjects, which Open fences:
// only the connection Bus.Dir may publish under Entries, and only on Own.
// The zero value fences nothing (Bus.Dir may then publish nothing).
type DirSubjects struct {
	// Entries is the prefix of every node's entry subject, without a
	// trailing dot or wildcard: node X publishes on Entries + "." +
	// Token(X).
	Entries string
	// Own is this node's entry subject. Bus.Dir may also publish on
	// Own + ".to.*": its entry for one peer alone (an answer to that
	// peer's sync request), which only that peer subscribes to.
	Own string
	// Direct is where the peers' answers to this node alone arrive:
	// Entries + ".*.to." + Token(this node's ID).
	Direct string
	// Sync is the subject on which a node asks its peers for their entries.
	Sync string
}

// routePassword derives the routes' password from the cluster secret and
// the cluster's name.
func routePassword(secret, cluster string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("switchboard route password\x00" + cluster))
	return hex.EncodeToString(m.Sum(nil))
}

// randomPassword draws a password nobody can guess.
func randomPassword() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("bus: drawing a password: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// checkSecurity rejects an embedded cluster that would be open without
// Insecure, a weak secret and half a TLS configuration.
func checkSecurity(cfg Config) error {
	if cfg.Secret != "" && len(cfg.Secret) < MinSecret {
		return ErrWeakSecret
	}
	set := 0
	for _, f := range []string{cfg.TLSCert, cfg.TLSKey, cfg.TLSCA} {
		if f != "" {
			set++
		}
	}
	if set != 0 && set != 3 {
		return ErrTLSIncomplete
	}
	if cfg.Cluster != "" && cfg.Secret == "" && cfg.TLSCert == "" && !cfg.Insecure {
		return ErrInsecureCluster
	}
	return nil
}

// users are the embedded server's client users: the node's general
// connections, its directory connection and, with a secret, the operator.
func users(cfg Config, nodePassword, dirPassword string) []*server.User {
	var fence []string
	if cfg.Dir.Entries != "" {
		fence = []string{cfg.Dir.Entries + ".>"}
	}
	dirPerms := &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: nonEmpty(cfg.Dir.Own, answers(cfg.Dir.Own), cfg.Dir.Sync)},
		Subscribe: &server.SubjectPermission{Allow: nonEmpty(wildcard(cfg.Dir.Entries), cfg.Dir.Direct, cfg.Dir.Sync)},
	}
	if len(dirPerms.Publish.Allow) == 0 {
		// Nothing to publish: deny everything rather than allow it.
		dirPerms.Publish = &server.SubjectPermission{Deny: []string{">"}}
	}
	if len(dirPerms.Subscribe.Allow) == 0 {
		dirPerms.Subscribe = &server.SubjectPermission{Deny: []string{">"}}
	}
	us := []*server.User{
		{Username: userNode, Password: nodePassword, Permissions: &server.Permissions{Publish: &server.SubjectPermission{Deny: fence}}},
		{Username: userDir, Password: dirPassword, Permissions: dirPerms},
	}
	if cfg.Secret != "" {
		deny := append(append([]string(nil), fence...), operatorJetStreamDeny...)
		us = append(us, &server.User{Username: OperatorUser, Password: cfg.Secret, Permissions: &server.Permissions{Publish: &server.SubjectPermission{Deny: deny}}})
	}
	return us
}

// operatorJetStreamDeny are the JetStream API requests the operator may
// not make: each has the server itself publish a message of the caller's
// choosing on a subject of the caller's choosing, past the publish fence
// on directory entries, which holds only for what a client publishes. A
// stream's RePublish (created, updated or restored with one) sends every
// message stored to its destination; a direct get sends the stored
// message to the request's reply subject, without headers if asked; a
// snapshot sends its chunks, bytes of the stored messages among them,
// without headers to the deliver subject the request names. The
// operator needs none of them: it inspects the streams the node manages
// (stream ls, info, reading messages through a consumer), and a stream
// it changed the node would not expect. Consumers stay allowed: a push
// consumer delivers a message under the subject it was stored on, never
// an entry's (without a stream change, nothing is stored under one).
var operatorJetStreamDeny = []string{
	"$JS.API.STREAM.CREATE.>",
	"$JS.API.STREAM.UPDATE.>",
	"$JS.API.STREAM.RESTORE.>",
	"$JS.API.STREAM.SNAPSHOT.>",
	"$JS.API.DIRECT.GET.>",
}

// answers is the subject pattern of a node's entries for one peer alone.
func answers(own string) string {
	if own == "" {
		return ""
	}
	return own + ".to.*"
}

func wildcard(prefix string) string {
	if prefix == "" {
		return ""
	}
	return prefix + ".*"
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// routeTLS is the routes' TLS configuration: this node's certificate,
// offered as server and as client, and the CA that must have signed every
// peer's, verified both ways. The certificate is read at each handshake
// from the KeyPair returned, whose Reload renews it; a certificate the
// CA does not verify for both uses is refused, at start and at Reload
// (verifyRouteCert).
func routeTLS(cfg Config) (*tls.Config, *pki.KeyPair, error) {
	// The CA and nats-server's TLS defaults; the pair is served from kp.
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CaFile: cfg.TLSCA, Verify: true})
	if err != nil {
		return nil, nil, fmt.Errorf("bus: cluster TLS: %w", err)
	}
	if tc == nil || tc.ClientCAs == nil {
		return nil, nil, fmt.Errorf("bus: cluster TLS: reading the CA %s: %w", cfg.TLSCA, ErrTLSIncomplete)
	}
	kp, err := pki.LoadKeyPair(cfg.TLSCert, cfg.TLSKey, func(pair *tls.Certificate) error {
		return verifyRouteCert(pair, tc.ClientCAs, cfg.TLSCert, cfg.TLSCA)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("bus: cluster TLS: %w", err)
	}
	// A soliciting route verifies its peer's certificate with RootCAs.
	tc.RootCAs = tc.ClientCAs
	// nats-server clones this configuration for each route, callbacks
	// included (its own OCSP stapling serves certificates the same way).
	tc.GetCertificate = kp.GetCertificate
	tc.GetClientCertificate = kp.GetClientCertificate
	return tc, kp, nil
}

// verifyRouteCert checks pair, read from certFile, as the peers will:
// against the CA (pool, read from caFile) as a server, when a peer
// solicits a route, and as a client, when this node does. A certificate
// from another CA, or without one of the two uses, would be taken and
// every new route would then fail its handshake, told only in the
// nats-server log. The dates are not judged here: the chain is checked
// at now moved into the certificate's validity, since pki.KeyPair
// refuses a pair not valid now at Reload but takes one at start (whose
// caller logs it), so that a node whose certificate lapsed still starts.
func verifyRouteCert(pair *tls.Certificate, pool *x509.CertPool, certFile, caFile string) error {
	leaf := pair.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return fmt.Errorf("reading the certificate %s: %w", certFile, err)
		}
	}
	intermediates := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			intermediates.AddCert(c)
		}
	}
	at := time.Now()
	if at.Before(leaf.NotBefore) {
		at = leaf.NotBefore
	}
	if at.After(leaf.NotAfter) {
		at = leaf.NotAfter
	}
	for _, use := range []struct {
		name  string
		usage x509.ExtKeyUsage
	}{{"server", x509.ExtKeyUsageServerAuth}, {"client", x509.ExtKeyUsageClientAuth}} {
		opts := x509.VerifyOptions{Roots: pool, Intermediates: intermediates, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{use.usage}}
		if _, err := leaf.Verify(opts); err != nil {
			return fmt.Errorf("the certificate %s does not verify against the cluster CA %s for %s authentication, which routes need: %w", certFile, caFile, use.name, err)
		}
	}
	return nil
}

// CheckRouteTLS reads the routes' certificate, key and CA as Open does,
// and returns why Open would refuse them; nil when it would take them.
func CheckRouteTLS(certFile, keyFile, caFile string) error {
	_, _, err := routeTLS(Config{TLSCert: certFile, TLSKey: keyFile, TLSCA: caFile})
	return err
}

// externalOptions are the TLS and credential options of a connection to an
// external NATS.
func externalOptions(cfg Config) ([]nats.Option, error) {
	var opts []nats.Option
	if cfg.ExternalCA != "" {
		opts = append(opts, nats.RootCAs(cfg.ExternalCA))
	}
	switch {
	case cfg.ExternalCert != "" && cfg.ExternalKey != "":
		opts = append(opts, nats.ClientCert(cfg.ExternalCert, cfg.ExternalKey))
	case cfg.ExternalCert != "" || cfg.ExternalKey != "":
		return nil, errors.New("bus: a client certificate for the external NATS needs both the certificate and its key")
	}
	if cfg.ExternalCreds != "" {
		opts = append(opts, nats.UserCredentials(cfg.ExternalCreds))
	}
	return opts, nil
}

// Token turns s (a node ID) into one subject token, injectively: bytes
// that NATS gives a meaning to ('.', '*', '>', whitespace), '%' itself and
// anything outside printable ASCII become %XX, so that two IDs never share
// a subject.
func Token(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	if b.Len() == 0 {
		return "%"
	}
	return b.String()
}
