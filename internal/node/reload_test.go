package node_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/pki"
	"github.com/switchboard/switchboard/internal/token"
	"github.com/switchboard/switchboard/wire"
)

// reissue writes a new certificate for service and its key over the
// files cert and key, signed by ca.
func reissue(t *testing.T, ca *pki.CA, service, cert, key string) {
	t.Helper()
	chain, keyPEM, err := ca.Issue(pki.Request{Service: service, Hosts: []string{"127.0.0.1"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cert, chain, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReloadClientCertificate: a certificate renewed on disk is served
// from the next handshake on once the node reloads it; one that does not
// name the service is refused and the one in use stays. Before, the
// certificate was read at start only, and renewing it meant a restart.
func TestReloadClientCertificate(t *testing.T) {
	sec := newSecrets(t, "reload.test")
	c := nodetest.Start(t, 1, nodetest.Options{Configure: sec.configure})
	n := c.Nodes[0]
	ca, _, err := pki.LoadOrCreateCA(filepath.Dir(sec.cert), sec.service, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	served := func() *big.Int {
		t.Helper()
		// No session cache: a full handshake, which shows the certificate.
		conn, err := tls.Dial("tcp", n.Addr(), &tls.Config{RootCAs: sec.caPool, ServerName: sec.service})
		if err != nil {
			t.Fatalf("dialling the node over TLS: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber
	}
	first := served()
	reissue(t, ca, sec.service, sec.cert, sec.key)
	if err := n.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	renewed := served()
	if renewed.Cmp(first) == 0 {
		t.Fatal("the node serves the old certificate after the reload")
	}
	// The expiry metric follows the certificate served.
	pair, err := tls.LoadX509KeyPair(sec.cert, sec.key)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := certExpiry(t, n, "client"), float64(pair.Leaf.NotAfter.Unix()); got != want {
		t.Errorf("%s{use=client} = %v, want %v", certExpiryMetric, got, want)
	}
	reissue(t, ca, "other.test", sec.cert, sec.key)
	if err := n.Reload(); err == nil {
		t.Error("a certificate for another service was reloaded")
	}
	if got := served(); got.Cmp(renewed) != 0 {
		t.Error("a refused certificate replaced the one in use")
	}
}

// TestReloadClusterCertificate: a node's renewed route certificate is
// presented on its cluster port once reloaded, the routes up stay, and a
// new node forms routes with it in both directions.
func TestReloadClusterCertificate(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := pki.NewCA("routes.test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, pool, withTLS := routesUnder(t, dir, ca)
	c := nodetest.Start(t, 2, nodetest.Options{Configure: withTLS})
	routed := func(peers int) {
		t.Helper()
		nodetest.Eventually(t, settle, func() error {
			for _, n := range c.Nodes {
				if got := n.RoutePeers(); len(got) != peers {
					return fmt.Errorf("%s routes to %q, want %d peers", n.ID(), got, peers)
				}
			}
			return nil
		})
	}
	routed(1)
	// What n0's cluster port presents: nats-server sends its INFO line in
	// clear, then the route's TLS handshake starts.
	clientChain, clientKey, err := ca.Issue(pki.Request{Service: "routes.test", Hosts: []string{"127.0.0.1"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	clientPair, err := tls.X509KeyPair(clientChain, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	presented := func() *big.Int {
		t.Helper()
		// Routes start their TLS handshake at once (nats-server sends its
		// INFO inside it).
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: settle}, "tcp", c.Nodes[0].ClusterAddr(),
			&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{clientPair}})
		if err != nil {
			t.Fatalf("the route's TLS handshake: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber
	}
	first := presented()
	n0 := c.Nodes[0]
	reissue(t, ca, "routes.test", filepath.Join(dir, "n0.pem"), filepath.Join(dir, "n0.key"))
	if err := n0.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if presented().Cmp(first) == 0 {
		t.Fatal("the cluster port presents the old certificate after the reload")
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "n0.pem"), filepath.Join(dir, "n0.key"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := certExpiry(t, n0, "cluster"), float64(pair.Leaf.NotAfter.Unix()); got != want {
		t.Errorf("%s{use=cluster} = %v, want %v", certExpiryMetric, got, want)
	}
	c.Add(withTLS)
	routed(2)
}

// TestReloadRefusesAClusterCertificateTheCADoesNotVerify: a route
// certificate from another CA, or from the right one for server use
// alone, would be taken and every new route would then fail its
// handshake, said only in the NATS log. Reload refuses both and the
// cluster port keeps presenting the certificate in use; New (serve
// --check, start) refuses one from another CA too.
func TestReloadRefusesAClusterCertificateTheCADoesNotVerify(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ca, _, err := pki.NewCA("routes.test", now)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := pki.NewCA("routes.test", now)
	if err != nil {
		t.Fatal(err)
	}
	caFile, pool, withTLS := routesUnder(t, dir, ca)
	// Two nodes: a node alone has no cluster port.
	c := nodetest.Start(t, 2, nodetest.Options{Configure: withTLS})
	n0 := c.Nodes[0]
	certFile, keyFile := filepath.Join(dir, "n0.pem"), filepath.Join(dir, "n0.key")
	clientChain, clientKey, err := ca.Issue(pki.Request{Service: "routes.test", Hosts: []string{"127.0.0.1"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	clientPair, err := tls.X509KeyPair(clientChain, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	// presented is the serial of the certificate n0's cluster port
	// presents in a route's TLS handshake.
	presented := func() *big.Int {
		t.Helper()
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: settle}, "tcp", n0.ClusterAddr(),
			&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{clientPair}})
		if err != nil {
			t.Fatalf("the route's TLS handshake: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber
	}
	first := presented()

	reissue(t, other, "routes.test", certFile, keyFile)
	if err := n0.Reload(); err == nil || !strings.Contains(err.Error(), "does not verify against the cluster CA") {
		t.Errorf("Reload of a certificate from another CA: %v, want it refused", err)
	}
	if presented().Cmp(first) != 0 {
		t.Error("a certificate from another CA replaced the one in use")
	}
	cfg := nodetest.Config("routes.test", 2)
	cfg.ClusterSecret = ""
	cfg.ClusterCert, cfg.ClusterKey, cfg.ClusterCA = certFile, keyFile, caFile
	if _, err := node.New(cfg); err == nil || !strings.Contains(err.Error(), "does not verify against the cluster CA") {
		t.Errorf("New with a certificate from another CA: %v, want it refused", err)
	}

	serverOnly(t, ca, certFile, keyFile)
	if err := n0.Reload(); err == nil || !strings.Contains(err.Error(), "for client authentication") {
		t.Errorf("Reload of a certificate for server authentication alone: %v, want it refused", err)
	}
	if presented().Cmp(first) != 0 {
		t.Error("a certificate for server authentication alone replaced the one in use")
	}
}

// serverOnly writes over cert and key a certificate signed by ca for
// 127.0.0.1 that allows server authentication alone, and its key.
func serverOnly(t *testing.T, ca *pki.CA, cert, key string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "routes.test"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &priv.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReloadTokenKeysAndAdminToken: an issuer moving to a new key puts
// it beside the old in the token key file; once the node reloads, tokens
// signed by either attach. A new admin secret replaces the old at the
// next request. A token key file that does not load leaves the keys in
// use. Before, both were read at start only.
func TestReloadTokenKeysAndAdminToken(t *testing.T) {
	sec := newSecrets(t, "rotate.test")
	c := nodetest.Start(t, 1, nodetest.Options{Configure: sec.configure})
	n := c.Nodes[0]
	tlsCfg := &tls.Config{RootCAs: sec.caPool, ServerName: sec.service}
	nextPriv, nextPub, err := pki.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	next, err := pki.ParsePrivateKey(nextPriv)
	if err != nil {
		t.Fatal(err)
	}
	byNext, err := token.Mint(next.(ed25519.PrivateKey), token.Claims{User: "ann", Service: sec.service, Expires: time.Now().Add(time.Hour)}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	byCurrent := sec.mint(t, token.Claims{User: "bob"})
	attach := func(user, tok string) wire.Message {
		t.Helper()
		conn := dialTLS(t, n.Addr(), tlsCfg)
		send(t, conn, wire.Message{Op: wire.OpAttach, User: user, Token: tok})
		return recvReply(t, conn)
	}
	if m := attach("ann", byNext); m.Code != wire.CodeUnauthorized {
		t.Fatalf("a token of the next key before the reload: %+v, want unauthorized", m)
	}
	current, err := os.ReadFile(sec.tokenPub)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sec.tokenPub, append(current, nextPub...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	for user, tok := range map[string]string{"ann": byNext, "bob": byCurrent} {
		if m := attach(user, tok); m.Op != wire.OpAttached {
			t.Errorf("%s's token after the reload: %+v, want attached", user, m)
		}
	}
	if err := os.WriteFile(sec.tokenPub, []byte("not a key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.Reload(); err == nil {
		t.Error("a token key file without a key was reloaded")
	}
	if m := attach("ann", byNext); m.Op != wire.OpAttached {
		t.Errorf("after a refused reload: %+v, want the keys in use kept", m)
	}

	// The admin secret.
	drain := func(bearer string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodDelete, "http://"+n.HTTPAddr()+"/v1/drain", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	const fresh = "a-fresh-admin-secret-0123456789"
	if err := os.WriteFile(sec.adminFile, []byte(fresh+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := drain(fresh); code != http.StatusUnauthorized {
		t.Errorf("the new admin secret before the reload: %d, want 401", code)
	}
	if err := os.WriteFile(sec.tokenPub, current, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if code := drain(sec.admin); code != http.StatusUnauthorized {
		t.Errorf("the old admin secret after the reload: %d, want 401", code)
	}
	if code := drain(fresh); code != http.StatusOK {
		t.Errorf("the new admin secret after the reload: %d, want 200", code)
	}
}

// certExpiry reads n's certificate expiry metric for use.
func certExpiry(t *testing.T, n *node.Node, use string) float64 {
	t.Helper()
	families, err := n.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != certExpiryMetric {
			continue
		}
		for _, m := range f.GetMetric() {
			if labelIs(m, "use", use) {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no %s{use=%q}", certExpiryMetric, use)
	return 0
}

// routesUnder writes ca to dir for the routes, and returns its file, a
// pool holding it and a Configure that gives node i a route certificate
// of ca's (dir/nI.pem and .key) in place of the cluster secret.
func routesUnder(t *testing.T, dir string, ca *pki.CA) (caFile string, pool *x509.CertPool, withTLS func(int, *node.Config)) {
	t.Helper()
	caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(ca.Cert)
	withTLS = func(i int, cfg *node.Config) {
		cfg.ClusterSecret = ""
		cfg.ClusterCert = filepath.Join(dir, fmt.Sprintf("n%d.pem", i))
		cfg.ClusterKey = filepath.Join(dir, fmt.Sprintf("n%d.key", i))
		cfg.ClusterCA = caFile
		reissue(t, ca, "routes.test", cfg.ClusterCert, cfg.ClusterKey)
	}
	return caFile, pool, withTLS
}

// A token key file that lacks a key whose tokens the node must accept
// (Config.RequiredTokenKeys: the SIP front's signer, which serve reads at
// start only) is refused on reload, and the keys in use stay. Before, the
// reload took it, and the node refused every SIP caller's token.
func TestReloadKeepsARequiredTokenKey(t *testing.T) {
	sec := newSecrets(t, "required.test")
	current, err := pki.LoadVerifyKeys(sec.tokenPub)
	if err != nil {
		t.Fatal(err)
	}
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		sec.configure(i, cfg)
		cfg.RequiredTokenKeys = current
	}})
	n := c.Nodes[0]
	_, nextPub, err := pki.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sec.tokenPub, nextPub, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.Reload(); !errors.Is(err, node.ErrRequiredTokenKeyMissing) {
		t.Errorf("reloading a token key file without the required key: %v, want %v", err, node.ErrRequiredTokenKeyMissing)
	}
	conn := dialTLS(t, n.Addr(), &tls.Config{RootCAs: sec.caPool, ServerName: sec.service})
	send(t, conn, wire.Message{Op: wire.OpAttach, User: "bob", Token: sec.mint(t, token.Claims{User: "bob"})})
	if m := recvReply(t, conn); m.Op != wire.OpAttached {
		t.Errorf("a token of the required key after the refused reload: %+v, want attached", m)
	}
}
