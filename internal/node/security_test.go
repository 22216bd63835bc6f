package node_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/pki"
	"github.com/switchboard/switchboard/internal/token"
	"github.com/switchboard/switchboard/wire"
)

// secrets are the files of a secured test service.
type secrets struct {
	service          string
	caPool           *x509.CertPool
	cert, key        string // node certificate and key
	tokenPub         string
	tokenKey         ed25519.PrivateKey
	adminFile, admin string
}

func newSecrets(t *testing.T, service string) secrets {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	ca, _, err := pki.LoadOrCreateCA(dir, service, now)
	if err != nil {
		t.Fatal(err)
	}
	chain, key, err := ca.Issue(pki.Request{Service: service, Hosts: []string{"127.0.0.1"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	s := secrets{service: service, caPool: x509.NewCertPool(), cert: filepath.Join(dir, "n.pem"), key: filepath.Join(dir, "n.key"),
		tokenPub: filepath.Join(dir, "token.pub"), adminFile: filepath.Join(dir, "admin.token"), admin: "admin-secret-0123456789"}
	s.caPool.AddCert(ca.Cert)
	privPEM, pubPEM, err := pki.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{s.cert: chain, s.key: key, s.tokenPub: pubPEM, s.adminFile: []byte(s.admin + "\n")} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	priv, err := pki.ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	s.tokenKey = priv.(ed25519.PrivateKey)
	return s
}

// configure makes cfg a node of s's service, with its certificate, token
// key and admin secret.
func (s secrets) configure(_ int, cfg *node.Config) {
	cfg.Service = s.service
	cfg.TLSCert, cfg.TLSKey, cfg.TokenKey, cfg.AdminToken = s.cert, s.key, s.tokenPub, s.adminFile
}

func (s secrets) mint(t *testing.T, c token.Claims) string {
	t.Helper()
	if c.Service == "" {
		c.Service = s.service
	}
	if c.Expires.IsZero() {
		c.Expires = time.Now().Add(time.Hour)
	}
	tok, err := token.Mint(s.tokenKey, c, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func dialTLS(t *testing.T, addr string, cfg *tls.Config) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.DialConnTLS(ctx, nil, addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Hello(ctx, "test/1", ""); err != nil {
		t.Fatal(err)
	}
	return c
}

// maxRefused is the node's maxRefusedAttaches: the refusals that close a
// connection.
const maxRefused = 3

// Tokens: each bad one gets unauthorized and nothing else; the session
// stays and can attach with a good one, unless it was refused three
// times; rooms the token does not name are refused at join.
func TestTokens(t *testing.T) {
	sec := newSecrets(t, "tokens.test")
	c := nodetest.Start(t, 1, nodetest.Options{Configure: sec.configure})
	n := c.Nodes[0]
	tlsCfg := &tls.Config{RootCAs: sec.caPool, ServerName: sec.service}
	_, otherKey, _ := ed25519.GenerateKey(nil)
	forged, err := token.Mint(otherKey, token.Claims{User: "alice", Service: sec.service, Expires: time.Now().Add(time.Hour)}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Minted an hour ago: Mint refuses past expiries.
	expired, err := token.Mint(sec.tokenKey, token.Claims{User: "alice", Service: sec.service, Expires: time.Now().Add(-time.Minute - token.Leeway)}, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name, user, token, want string
	}{
		{"no token", "alice", "", "requires a token"},
		{"expired", "alice", expired, "expired"},
		{"forged", "alice", forged, "not signed by this service's key"},
		{"malformed", "alice", "not.a.token", "malformed"},
		{"another service", "alice", sec.mint(t, token.Claims{User: "alice", Service: "other.test"}), "another service"},
		{"wrong user", "bob", sec.mint(t, token.Claims{User: "alice"}), `another user than "bob"`},
	}
	for _, tt := range bad {
		conn := dialTLS(t, n.Addr(), tlsCfg)
		send(t, conn, wire.Message{Op: wire.OpAttach, User: tt.user, Token: tt.token})
		m := recvReply(t, conn)
		if m.Op != wire.OpError || m.Code != wire.CodeUnauthorized || !strings.Contains(m.Message, tt.want) || m.Dir != nil || m.Session != "" {
			t.Errorf("%s: got %+v, want only unauthorized %q", tt.name, m, tt.want)
		}
	}
	// A user name of 30,000 quotes fits an attach line (each escaped as
	// two bytes), but quoted twice in the refusal it would not fit a line
	// a client can read: the refusal quotes its first characters only.
	long := dialTLS(t, n.Addr(), tlsCfg)
	send(t, long, wire.Message{Op: wire.OpAttach, User: strings.Repeat(`"`, 30000), Token: sec.mint(t, token.Claims{User: "alice"})})
	if m := recvReply(t, long); m.Code != wire.CodeUnauthorized || !strings.Contains(m.Message, "another user than") || len(m.Message) > 1000 {
		t.Errorf("a token for another user and a long name: got %.200q (%d bytes), want a short unauthorized", m.Message, len(m.Message))
	}
	if n.Users() != 0 {
		t.Fatalf("%d users after refused attaches", n.Users())
	}
	// A connection may have two attaches refused; the third refusal
	// closes it.
	closing := dialTLS(t, n.Addr(), tlsCfg)
	for i := range maxRefused {
		send(t, closing, wire.Message{Op: wire.OpAttach, User: "alice", Token: forged})
		if m := recvReply(t, closing); m.Op != wire.OpError || m.Code != wire.CodeUnauthorized {
			t.Fatalf("refusal %d: %+v, want unauthorized", i+1, m)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if m, err := closing.Recv(ctx); !errors.Is(err, io.EOF) {
		t.Errorf("after %d refused attaches the connection gave %+v, %v, want it closed", maxRefused, m, err)
	}
	// A session with fewer refusals is unaffected: it still answers, and
	// a good token attaches it, as the token's user even when attach
	// names none.
	conn := dialTLS(t, n.Addr(), tlsCfg)
	for range maxRefused - 1 {
		send(t, conn, wire.Message{Op: wire.OpAttach, User: "alice", Token: forged})
		if m := recvReply(t, conn); m.Code != wire.CodeUnauthorized {
			t.Fatalf("a forged token: %+v, want unauthorized", m)
		}
	}
	send(t, conn, wire.Message{Op: wire.OpPing})
	if m := recvReply(t, conn); m.Op != wire.OpPong {
		t.Fatalf("ping after refusals: %+v", m)
	}
	send(t, conn, wire.Message{Op: wire.OpAttach, Token: sec.mint(t, token.Claims{User: "alice", Rooms: []string{"lobby"}})})
	if m := recvReply(t, conn); m.Op != wire.OpAttached || m.User != "alice" {
		t.Fatalf("attach with a good token: %+v", m)
	}
	send(t, conn, wire.Message{Op: wire.OpJoin, Room: "ops"})
	if m := recvReply(t, conn); m.Op != wire.OpError || m.Code != wire.CodeUnauthorized || m.Room != "ops" {
		t.Errorf("join a room the token does not name: %+v, want unauthorized", m)
	}
	send(t, conn, wire.Message{Op: wire.OpText, Room: "ops", Seq: 1, T: "x"})
	if m := recvReply(t, conn); m.Op != wire.OpError || m.Code != wire.CodeBadRequest {
		t.Errorf("text to the refused room: %+v, want bad_request", m)
	}
	send(t, conn, wire.Message{Op: wire.OpJoin, Room: "lobby"})
	if m := recvReply(t, conn); m.Op != wire.OpRoom || m.State == nil || !strings.Contains(strings.Join(m.State.Users, ","), "alice") {
		t.Errorf("join a room the token names: %+v", m)
	}
	send(t, conn, wire.Message{Op: wire.OpText, Room: "lobby", Seq: 1, T: "hi"})
	for {
		m := recvReply(t, conn)
		if m.Op == wire.OpAck && m.Seq == 1 {
			break
		}
		if m.Op == wire.OpError {
			t.Fatalf("text in the allowed room: %+v", m)
		}
	}
}

// A plain TCP client gets nothing from a TLS listener; a TLS client that
// expects another name refuses the node.
func TestTLSListener(t *testing.T) {
	sec := newSecrets(t, "tls.test")
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.Service = sec.service
		cfg.TLSCert, cfg.TLSKey = sec.cert, sec.key
	}})
	n := c.Nodes[0]
	conn := dialTLS(t, n.Addr(), &tls.Config{RootCAs: sec.caPool, ServerName: sec.service})
	if m := attach(t, conn, "ann"); m.User != "ann" {
		t.Errorf("attached as %q", m.User)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := client.FetchDirectoryTLS(ctx, nil, n.Addr(), &tls.Config{RootCAs: sec.caPool, ServerName: "evil.test"}); err == nil || !strings.Contains(err.Error(), "does not prove the service name") {
		t.Errorf("a client expecting another name: %v, want a refusal", err)
	}
	if _, err := client.FetchDirectory(ctx, nil, n.Addr()); err == nil {
		t.Error("a plain client got a directory from a TLS listener")
	}
}

// A certificate that does not name the service is refused at New, and so
// is half a key pair, and settings that cannot go together.
func TestTLSConfigErrors(t *testing.T) {
	sec := newSecrets(t, "right.test")
	for _, tt := range []struct {
		name string
		edit func(*node.Config)
		want string
	}{
		{"wrong service", func(c *node.Config) { c.Service = "wrong.test"; c.TLSCert, c.TLSKey = sec.cert, sec.key }, `does not name the service "wrong.test"`},
		{"cert without key", func(c *node.Config) { c.TLSCert = sec.cert }, "both a certificate and its key"},
		{"https without cert", func(c *node.Config) { c.HTTPTLS = true }, "needs a TLS certificate"},
		{"short admin token", func(c *node.Config) {
			f := filepath.Join(t.TempDir(), "a")
			_ = os.WriteFile(f, []byte("short\n"), 0o600)
			c.AdminToken = f
		}, "shorter than 16 bytes"},
		// A certificate or public key named by mistake: handed out
		// freely, it is no secret.
		{"admin token a certificate", func(c *node.Config) { c.AdminToken = sec.cert }, "holds a PEM block"},
		{"cluster secret a certificate", func(c *node.Config) {
			c.Cluster, c.ClusterSecret, c.ClusterSecretFile = "127.0.0.1:0", "", sec.cert
		}, "holds a PEM block"},
		{"token key not a public key", func(c *node.Config) { c.TokenKey = sec.cert }, "token key"},
		{"NATS monitor with an external bus", func(c *node.Config) {
			c.Bus, c.NATSMonitor = "nats://127.0.0.1:4222", "127.0.0.1:8222"
		}, "nats-monitor"},
		// The embedded bus refuses it at start: serve --check must too.
		{"join without a cluster listener", func(c *node.Config) { c.Join = []string{"127.0.0.2:7072"} }, "needs a cluster listener"},
	} {
		cfg := nodetest.Config("right.test", 0)
		cfg.Cluster = "" // alone: only the settings under test
		tt.edit(&cfg)
		if _, err := node.New(cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New: %v, want %q", tt.name, err, tt.want)
		}
	}
}

// The drain switch and forget need the admin token once one is set;
// reads stay open.
func TestAdminToken(t *testing.T) {
	sec := newSecrets(t, "admin.test")
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.AdminToken = sec.adminFile
	}})
	n := c.Nodes[0]
	do := func(method, path, bearer string) int {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+n.HTTPAddr()+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := do("GET", "/v1/directory", ""); code != 200 {
		t.Errorf("GET /v1/directory = %d", code)
	}
	if code := do("POST", "/v1/drain", ""); code != http.StatusUnauthorized || n.Status() == "draining" {
		t.Errorf("POST /v1/drain without the token = %d, status %s", code, n.Status())
	}
	// The window is read only after the credential: a stranger's bad
	// window gets 401 like any other, not a 400 that answers it.
	if code := do("POST", "/v1/drain?within=soon", ""); code != http.StatusUnauthorized {
		t.Errorf("POST /v1/drain?within=soon without the token = %d, want 401", code)
	}
	if code := do("POST", "/v1/drain?within=soon", sec.admin); code != http.StatusBadRequest {
		t.Errorf("POST /v1/drain?within=soon with the token = %d, want 400", code)
	}
	if code := do("POST", "/v1/drain", "wrong-wrong-wrong"); code != http.StatusUnauthorized || n.Status() == "draining" {
		t.Errorf("POST /v1/drain with a wrong token = %d, status %s", code, n.Status())
	}
	if code := do("POST", "/v1/drain", sec.admin); code != 200 || n.Status() != "draining" {
		t.Errorf("POST /v1/drain with the token = %d, status %s", code, n.Status())
	}
	if code := do("DELETE", "/v1/drain", sec.admin); code != 200 || n.Status() == "draining" {
		t.Errorf("DELETE /v1/drain with the token = %d, status %s", code, n.Status())
	}
	// forget answers a stranger 401 before it looks at the node named;
	// with the token, a node alone has no storage cluster to forget in.
	for _, tc := range []struct {
		path, bearer string
		want         int
	}{
		{"/v1/forget?node=n9", "", http.StatusUnauthorized},
		{"/v1/forget?node=" + n.ID(), "", http.StatusUnauthorized},
		{"/v1/forget?node=n9", sec.admin, http.StatusBadRequest},
		{"/v1/forget?node=" + n.ID(), sec.admin, http.StatusConflict},
		{"/v1/forget", sec.admin, http.StatusBadRequest},
	} {
		if code := do("POST", tc.path, tc.bearer); code != tc.want {
			t.Errorf("POST %s (token %v) = %d, want %d", tc.path, tc.bearer != "", code, tc.want)
		}
	}
}

// The nodes of a cluster share their TLS session ticket keys (derived from
// the cluster secret): a client resumes at one node the session another
// node gave it, so a dial through the common address costs one full
// handshake, not two. A node of another cluster cannot open the ticket.
func TestTLSSessionResumesAcrossNodes(t *testing.T) {
	sec := newSecrets(t, "resume.test")
	tlsNodes := func(i int, cfg *node.Config) {
		cfg.Service = sec.service
		cfg.TLSCert, cfg.TLSKey = sec.cert, sec.key
	}
	c := nodetest.Start(t, 2, nodetest.Options{Configure: tlsNodes})
	other := nodetest.Start(t, 1, nodetest.Options{Configure: tlsNodes})
	cfg := &tls.Config{RootCAs: sec.caPool, ServerName: sec.service, ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	// hello says hello at addr over TLS, reads the directory (and with it
	// the ticket the node sent after the handshake) and reports whether
	// the session was resumed.
	hello := func(addr string) bool {
		t.Helper()
		conn, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Write([]byte(`{"op":"hello","v":1}` + "\n")); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(settle))
		if _, err := bufio.NewReader(conn).ReadBytes('\n'); err != nil {
			t.Fatal(err)
		}
		return conn.ConnectionState().DidResume
	}
	if hello(c.Nodes[0].Addr()) {
		t.Fatal("the first handshake resumed a session")
	}
	if !hello(c.Nodes[1].Addr()) {
		t.Error("n2 did not resume the session n1 gave")
	}
	if hello(other.Nodes[0].Addr()) {
		t.Error("a node of another cluster resumed the session")
	}
}

// A TLS 1.2 session ticket seals the session's master secret, and its
// resumption runs no fresh key exchange: with ticket keys derived from
// the cluster secret, whoever holds the secret could decrypt recorded
// TLS 1.2 sessions. A node with a secret issues no ticket to a client
// that does not offer TLS 1.3, whose resumptions do run one, and which
// still resumes.
func TestTLS12SessionIsNotResumed(t *testing.T) {
	sec := newSecrets(t, "tls12.test")
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) {
		cfg.Service = sec.service
		cfg.TLSCert, cfg.TLSKey = sec.cert, sec.key
		if cfg.ClusterSecret == "" {
			t.Fatal("the test node has no cluster secret: its ticket keys are Go's own")
		}
	}})
	addr := c.Nodes[0].Addr()
	// resumed says hello twice over TLS with one session cache, reading
	// the directory each time (and with it a TLS 1.3 ticket, which comes
	// after the handshake), and reports the version of the second and
	// whether it resumed the session of the first.
	resumed := func(maxVersion uint16) (uint16, bool) {
		t.Helper()
		cfg := &tls.Config{RootCAs: sec.caPool, ServerName: sec.service, MaxVersion: maxVersion, ClientSessionCache: tls.NewLRUClientSessionCache(4)}
		var state tls.ConnectionState
		for range 2 {
			conn, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write([]byte(`{"op":"hello","v":1}` + "\n")); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(settle))
			if _, err := bufio.NewReader(conn).ReadBytes('\n'); err != nil {
				t.Fatal(err)
			}
			state = conn.ConnectionState()
			conn.Close()
		}
		return state.Version, state.DidResume
	}
	if v, ok := resumed(tls.VersionTLS12); v != tls.VersionTLS12 || ok {
		t.Errorf("a TLS 1.2 client: version %s, resumed %v; want TLS 1.2 and a full handshake", tls.VersionName(v), ok)
	}
	if v, ok := resumed(0); v != tls.VersionTLS13 || !ok {
		t.Errorf("a TLS 1.3 client: version %s, resumed %v; want TLS 1.3 and a resumption", tls.VersionName(v), ok)
	}
}

// A node restarted with an expired certificate starts (a renewed one can
// be loaded on SIGHUP), and says at start, in an error line, that clients
// will refuse it.
func TestExpiredCertificateIsLogged(t *testing.T) {
	sec := newSecrets(t, "expired.test")
	dir := t.TempDir()
	now := time.Now()
	ca, _, err := pki.LoadOrCreateCA(dir, sec.service, now.Add(-72*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	chain, key, err := ca.Issue(pki.Request{Service: sec.service, Hosts: []string{"127.0.0.1"}, Validity: 24 * time.Hour}, now.Add(-48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	expired, expiredKey := filepath.Join(dir, "old.pem"), filepath.Join(dir, "old.key")
	if err := pki.WriteNewFiles(pki.NewFile{Name: expired, Data: chain, Perm: 0o644}, pki.NewFile{Name: expiredKey, Data: key, Perm: 0o600}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		cert, key string
		logged    bool
	}{
		{"valid", sec.cert, sec.key, false},
		{"expired", expired, expiredKey, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := startLogged(t, func(cfg *node.Config) {
				cfg.Service = sec.service
				cfg.TLSCert, cfg.TLSKey = tc.cert, tc.key
			})
			logs.check(t, "the TLS certificate is not valid now", tc.logged)
		})
	}
}
