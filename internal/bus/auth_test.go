package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/switchboard/switchboard/internal/pki"
)

const testSecret = "0123456789abcdef-test-secret"

// waitFor polls cond until it returns nil or 10 s pass.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	waitWithin(t, 10*time.Second, what, cond)
}

// waitWithin polls cond every few milliseconds until it returns nil, or
// fails the test with its last error once d has passed.
func waitWithin(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logWatch is a slog handler that hands every record's message to the
// test, so that it can wait for the server to say it refused someone.
type logWatch struct {
	mu    sync.Mutex
	lines []string
}

func (w *logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w *logWatch) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	w.lines = append(w.lines, r.Message)
	w.mu.Unlock()
	return nil
}
func (w *logWatch) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *logWatch) WithGroup(string) slog.Handler      { return w }

// saw reports whether a logged line contains any of subs.
func (w *logWatch) saw(subs ...string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lines {
		for _, s := range subs {
			if strings.Contains(strings.ToLower(l), strings.ToLower(s)) {
				return nil
			}
		}
	}
	return fmt.Errorf("no log line with any of %q (%d lines)", subs, len(w.lines))
}

func openBus(t *testing.T, cfg Config) *Bus {
	t.Helper()
	if cfg.ClusterName == "" {
		cfg.ClusterName = "auth.test"
	}
	b, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("opening %s: %v", cfg.Name, err)
	}
	t.Cleanup(b.Close)
	return b
}

// rogue starts a stock nats-server with the cluster's name, routed to
// seed, with no credentials (or with the given route TLS).
func rogue(t *testing.T, seed string, configure func(*server.Options)) *server.Server {
	t.Helper()
	opts := &server.Options{
		ServerName: "rogue",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		NoSigs:     true,
		NoLog:      true,
		Cluster: server.ClusterOpts{
			Name:           "auth_test",
			Host:           "127.0.0.1",
			Port:           server.RANDOM_PORT,
			ConnectRetries: -1,
		},
		Routes: []*url.URL{{Scheme: "nats", Host: seed}},
	}
	if configure != nil {
		configure(opts)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("rogue server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func TestOpenRefusesAnOpenCluster(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		want error
	}{
		{name: "no credentials", cfg: Config{Name: "a", Cluster: "127.0.0.1:0"}, want: ErrInsecureCluster},
		{name: "short secret", cfg: Config{Name: "a", Cluster: "127.0.0.1:0", Secret: "short"}, want: ErrWeakSecret},
		{name: "cert without CA", cfg: Config{Name: "a", Cluster: "127.0.0.1:0", TLSCert: "c.pem", TLSKey: "c.key"}, want: ErrTLSIncomplete},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Open(context.Background(), tt.cfg)
			if err == nil {
				b.Close()
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
		})
	}
	// Insecure says so and runs.
	w := &logWatch{}
	b := openBus(t, Config{Name: "a", Cluster: "127.0.0.1:0", Insecure: true, Logger: slog.New(w)})
	if b.ClusterAddr() == nil {
		t.Fatal("no cluster listener")
	}
	if err := w.saw("cluster is OPEN"); err != nil {
		t.Error(err)
	}
}

// A stock nats-server with the cluster's name but not its secret forms no
// route, while two nodes with the secret route to each other.
func TestRogueServerFormsNoRoute(t *testing.T) {
	w := &logWatch{}
	a := openBus(t, Config{Name: "a", Cluster: "127.0.0.1:0", Secret: testSecret, Logger: slog.New(w)})
	b := openBus(t, Config{Name: "b", Cluster: "127.0.0.1:0", Secret: testSecret, Join: []string{a.ClusterAddr().String()}})
	waitFor(t, "a and b route", func() error {
		if a.Routes() < 1 || b.Routes() < 1 {
			return fmt.Errorf("routes a=%d b=%d", a.Routes(), b.Routes())
		}
		return nil
	})
	r := rogue(t, a.ClusterAddr().String(), nil)
	waitFor(t, "a refuses the rogue", func() error { return w.saw("authorization", "authentication") })
	// The rogue keeps retrying, and counts a route of its own from the
	// moment it has sent its CONNECT until a closes it; what matters is
	// that a and b never register it, and that it holds none once
	// refused.
	waitFor(t, "the rogue holds no route", func() error {
		if n := r.NumRoutes(); n != 0 {
			return fmt.Errorf("the rogue has %d routes", n)
		}
		return nil
	})
	if got := a.RoutePeers(); !slices.Equal(got, []string{"b"}) {
		t.Errorf("a routes to %q, want only b", got)
	}
}

// The embedded server's client port admits nobody without a password:
// not an anonymous client, not a guessed user; the operator with the
// cluster secret gets in.
func TestClientPortNeedsCredentials(t *testing.T) {
	a := openBus(t, Config{Name: "a", Cluster: "127.0.0.1:0", Secret: testSecret})
	u := a.server.ClientURL()
	if nc, err := nats.Connect(u, nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("an anonymous client connected to the embedded server")
	}
	if nc, err := nats.Connect(u, nats.UserInfo(userNode, testSecret), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("the node user connected with the secret as its password")
	}
	nc, err := nats.Connect(u, nats.UserInfo(OperatorUser, testSecret), nats.MaxReconnects(0))
	if err != nil {
		t.Fatalf("the operator with the secret: %v", err)
	}
	nc.Close()
}

// The node's connections may not publish another node's entry: the
// general one none at all, the directory one only its own.
func TestDirectoryFence(t *testing.T) {
	dir := DirSubjects{Entries: "switchboard.svc.dir.entry", Own: "switchboard.svc.dir.entry." + Token("n1"), Direct: "switchboard.svc.dir.entry.*.to." + Token("n1"), Sync: "switchboard.svc.dir.sync"}
	b := openBus(t, Config{Name: "n1", Dir: dir})
	listener, err := b.connect("listener", OperatorUser, "") // no operator without a secret
	if err == nil {
		listener.Close()
		t.Fatal("an operator connected to a bus without a secret")
	}
	watch, err := b.connectDir("watch")
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	got := make(chan string, 16)
	sub, err := watch.Subscribe(dir.Entries+".*", func(m *nats.Msg) { got <- m.Subject + " " + string(m.Data) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := watch.Flush(); err != nil {
		t.Fatal(err)
	}
	denied := make(chan error, 4)
	onErr := nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { denied <- err })
	general, err := b.connect("general", userNode, b.nodePassword, onErr)
	if err != nil {
		t.Fatal(err)
	}
	defer general.Close()
	dirConn, err := b.connect("dir", userDir, b.dirPassword, onErr)
	if err != nil {
		t.Fatal(err)
	}
	defer dirConn.Close()

	forged := dir.Entries + "." + Token("n2")
	for _, p := range []struct {
		nc      *nats.Conn
		subject string
	}{{general, forged}, {general, dir.Own}, {dirConn, forged}, {dirConn, forged + ".to." + Token("n1")}, {general, dir.Own + ".to." + Token("n2")}} {
		if err := p.nc.Publish(p.subject, []byte("forged")); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-denied:
			if !strings.Contains(err.Error(), "Permissions Violation") {
				t.Fatalf("publishing %s: %v, want a permissions violation", p.subject, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("publishing %s: no permissions violation", p.subject)
		}
	}
	if err := dirConn.Publish(dir.Own, []byte("own")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != dir.Own+" own" {
			t.Fatalf("the first entry delivered is %q, want n1's own", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("n1's own entry never arrived")
	}
	// An answer to one peer alone goes on the node's own subject's
	// ".to." branch, which only the peer's Direct subscription matches.
	direct, err := watch.Subscribe(dir.Direct, func(m *nats.Msg) { got <- m.Subject + " " + string(m.Data) })
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Unsubscribe()
	if err := watch.Flush(); err != nil {
		t.Fatal(err)
	}
	answer := dir.Own + ".to." + Token("n1")
	if err := dirConn.Publish(answer, []byte("answer")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != answer+" answer" {
			t.Fatalf("delivered %q, want the answer on %s", m, answer)
		}
	case err := <-denied:
		t.Fatalf("publishing an answer on %s: %v", answer, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the answer never arrived")
	}
}

// Routes with TLS: nodes with certificates from the cluster's CA route to
// each other without a secret; a server with a certificate from another
// CA, or with none, forms no route.
func TestRouteTLS(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	files := func(ca *pki.CA, name string) (cert, key string) {
		return issueFiles(t, dir, ca, name, pki.Request{Service: "auth.test", Hosts: []string{"127.0.0.1", "localhost"}}, now)
	}
	ca, caFile := newCAFile(t, dir, "ca.pem", now)
	other, otherCA := newCAFile(t, dir, "other-ca.pem", now)

	w := &logWatch{}
	aCert, aKey := files(ca, "a")
	bCert, bKey := files(ca, "b")
	a := openBus(t, Config{Name: "a", Cluster: "127.0.0.1:0", TLSCert: aCert, TLSKey: aKey, TLSCA: caFile, Logger: slog.New(w)})
	b := openBus(t, Config{Name: "b", Cluster: "127.0.0.1:0", TLSCert: bCert, TLSKey: bKey, TLSCA: caFile, Join: []string{a.ClusterAddr().String()}})
	waitFor(t, "a and b route over TLS", func() error {
		if a.Routes() < 1 || b.Routes() < 1 {
			return fmt.Errorf("routes a=%d b=%d", a.Routes(), b.Routes())
		}
		return nil
	})

	t.Run("plain", func(t *testing.T) {
		r := rogue(t, a.ClusterAddr().String(), nil)
		waitFor(t, "a refuses the plain rogue", func() error { return w.saw("tls", "handshake") })
		waitFor(t, "the rogue holds no route", func() error {
			if n := r.NumRoutes(); n != 0 {
				return fmt.Errorf("the rogue has %d routes", n)
			}
			return nil
		})
	})
	t.Run("other CA", func(t *testing.T) {
		w.mu.Lock()
		w.lines = nil
		w.mu.Unlock()
		rCert, rKey := files(other, "rogue")
		r := rogue(t, a.ClusterAddr().String(), func(o *server.Options) {
			tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: rCert, KeyFile: rKey, CaFile: otherCA, Verify: true})
			if err != nil {
				t.Fatal(err)
			}
			tc.RootCAs = tc.ClientCAs
			o.Cluster.TLSConfig = tc
			o.Cluster.TLSTimeout = 2
		})
		waitFor(t, "a refuses the rogue's certificate", func() error { return w.saw("tls", "certificate") })
		waitFor(t, "the rogue holds no route", func() error {
			if n := r.NumRoutes(); n != 0 {
				return fmt.Errorf("the rogue has %d routes", n)
			}
			return nil
		})
	})
	if got := a.RoutePeers(); !slices.Equal(got, []string{"b"}) {
		t.Errorf("a routes to %q, want only b", got)
	}
}

func TestToken(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"n1", "n1"},
		{"127.0.0.2:7070", "127%2E0%2E0%2E2:7070"},
		{"a b", "a%20b"},
		{"*", "%2A"},
		{">", "%3E"},
		{"%2E", "%252E"},
		{"", "%"},
		{"é", "%C3%A9"},
	} {
		if got := Token(tt.in); got != tt.want {
			t.Errorf("Token(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// Distinct IDs never share a token.
	seen := map[string]string{}
	for _, id := range []string{"a.b", "a-b", "a_b", "a%2Eb", "a%b", "a b", "a*b", ""} {
		tok := Token(id)
		if prev, ok := seen[tok]; ok {
			t.Errorf("Token(%q) = Token(%q) = %q", id, prev, tok)
		}
		seen[tok] = id
	}
}

// The routes' certificate must verify against the cluster CA, but its
// dates are the KeyPair's to judge: a node restarted with an expired
// certificate starts (and logs it), so routeTLS takes one from the CA
// that has expired, and refuses one from another CA whatever its dates.
func TestRouteTLSVerifiesTheCertificateNotItsDates(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ca, caFile := newCAFile(t, dir, "ca.pem", now.Add(-72*time.Hour))
	other, _ := newCAFile(t, dir, "other-ca.pem", now.Add(-72*time.Hour))
	files := func(ca *pki.CA, name string) (cert, key string) {
		t.Helper()
		// Valid for a day, two days ago: expired now.
		return issueFiles(t, dir, ca, name, pki.Request{Service: "auth.test", Hosts: []string{"127.0.0.1"}, Validity: 24 * time.Hour}, now.Add(-48*time.Hour))
	}
	cert, key := files(ca, "expired")
	if _, kp, err := routeTLS(Config{TLSCert: cert, TLSKey: key, TLSCA: caFile}); err != nil {
		t.Errorf("routeTLS with an expired certificate from the CA: %v, want it taken", err)
	} else if _, err := kp.Reload(now); !errors.Is(err, pki.ErrNotValidNow) {
		t.Errorf("Reload of the expired certificate: %v, want ErrNotValidNow", err)
	}
	cert, key = files(other, "stranger")
	if err := CheckRouteTLS(cert, key, caFile); err == nil || !strings.Contains(err.Error(), "does not verify against the cluster CA") {
		t.Errorf("CheckRouteTLS with a certificate from another CA: %v, want it refused", err)
	}
}

// issueFiles has ca issue a certificate for req at the time at, and writes
// it and its key to dir as NAME.pem and NAME.key.
// newCAFile makes a CA valid from at and writes its certificate to
// dir/name.
func newCAFile(t *testing.T, dir, name string, at time.Time) (*pki.CA, string) {
	t.Helper()
	ca, _, err := pki.NewCA("auth.test", at)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return ca, file
}

func issueFiles(t *testing.T, dir string, ca *pki.CA, name string, req pki.Request, at time.Time) (cert, key string) {
	t.Helper()
	chain, keyPEM, err := ca.Issue(req, at)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(cert, chain, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// A node's --cluster host is what peers learn of it by gossip: an IP, or
// with route TLS a name. Left to nats-server, a peer learns the IP a route came from and
// dials it verifying the certificate against the name of its own first
// seed: a node whose certificate names only its own host (n2.example)
// would then be unreachable to every node that joined through another.
func TestClusterAddressIsAdvertised(t *testing.T) {
	dir := t.TempDir()
	ca, caFile := newCAFile(t, dir, "ca.pem", time.Now())
	cert, key := issueFiles(t, dir, ca, "n2", pki.Request{Service: "auth.test", Hosts: []string{"n2.example"}}, time.Now())
	for _, tt := range []struct {
		cluster string
		tls     bool
		want    string
	}{
		{"n2.example:6222", true, "n2.example:6222"},
		{"n2.example:6222", false, ""}, // a name peers may not resolve: they use the route's IP
		{"10.0.0.2:6222", false, "10.0.0.2:6222"},
		{"[fd00::2]:6222", true, "[fd00::2]:6222"},
		{"0.0.0.0:6222", true, ""}, // no one address to give: peers use the route's
		{":6222", false, ""},
		{"n2.example:0", true, ""}, // the port is drawn when nats-server binds it
	} {
		cfg := Config{Name: "n2", Cluster: tt.cluster, Join: []string{"n1.example:6222"}}
		if tt.tls {
			cfg.TLSCert, cfg.TLSKey, cfg.TLSCA = cert, key, caFile
		}
		opts, _, err := serverOptions(cfg)
		if err != nil {
			t.Fatalf("%s: %v", tt.cluster, err)
		}
		if opts.Cluster.Advertise != tt.want {
			t.Errorf("--cluster %s (route TLS %v) advertised %q, want %q", tt.cluster, tt.tls, opts.Cluster.Advertise, tt.want)
		}
	}
}

// Nodes whose --cluster names a host by DNS, with route certificates that
// name only that host: a node that joins through one seed routes to the
// others it learns of by gossip, by name.
func TestRouteTLSByNameReachesGossipedPeers(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ca, caFile := newCAFile(t, dir, "ca.pem", now)
	open := func(name string, join ...string) *Bus {
		cert, key := issueFiles(t, dir, ca, name, pki.Request{Service: "auth.test", Hosts: []string{"localhost"}}, now)
		// A port below the ephemeral range: one freePort drew could be
		// taken by another test's connection or listener before the
		// route listener binds it, and an explicit port is not drawn
		// again.
		_, port, _ := net.SplitHostPort(lowPort(t))
		return openBus(t, Config{Name: name, Cluster: "localhost:" + port, Join: join,
			TLSCert: cert, TLSKey: key, TLSCA: caFile})
	}
	seed := func(b *Bus) string { return fmt.Sprintf("localhost:%d", b.ClusterAddr().Port) }
	a := open("a")
	b := open("b", seed(a))
	c := open("c", seed(a))
	for _, n := range []struct {
		bus  *Bus
		want []string
	}{{a, []string{"b", "c"}}, {b, []string{"a", "c"}}, {c, []string{"a", "b"}}} {
		waitFor(t, "a full mesh of routes", func() error {
			if got := n.bus.RoutePeers(); !slices.Equal(got, n.want) {
				return fmt.Errorf("%s routes to %q, want %q", n.bus.cfg.Name, got, n.want)
			}
			return nil
		})
	}
}
