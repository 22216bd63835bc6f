package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/pki"
	"github.com/switchboard/switchboard/pick"
	"github.com/switchboard/switchboard/wire"
)

// startLoggedCluster starts three node processes of service, stopped when
// t ends, and returns their log, which t's output shows if it failed.
func startLoggedCluster(ctx context.Context, t *testing.T, service string) (*localcluster.Cluster, *nodetest.LockedBuffer) {
	t.Helper()
	return startLogged(ctx, t, localcluster.Config{Binary: binary, Nodes: 3, Service: service})
}

// startLogged starts the cluster cfg describes, its nodes' logs in the
// buffer returned, printed if the test fails, and stopped when it ends.
func startLogged(ctx context.Context, t *testing.T, cfg localcluster.Config) (*localcluster.Cluster, *nodetest.LockedBuffer) {
	t.Helper()
	logs := new(nodetest.LockedBuffer)
	cfg.Output = logs
	c, err := localcluster.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the nodes' log:\n%s", logs.String())
		}
	})
	return c, logs
}

// homeNode picks node id while it is available, else the default policy.
func homeNode(id string) pick.Policy {
	fallback := pick.Default(pick.DefaultRand())
	return pick.PolicyFunc(func(nodes []directory.Node, req pick.Request) (pick.Result, error) {
		for _, n := range nodes {
			if n.ID == id && n.Available() && (req.Exclude == nil || !req.Exclude(id)) {
				return pick.Result{Node: n, Reason: "test: " + id}, nil
			}
		}
		return fallback.Pick(nodes, req)
	})
}

// SIGTERM with a grace (serve's default, --drain-grace 20s) empties the
// node before it exits: its session in a room moves to another node
// without a drop, the member on another node sees no presence change,
// and the text typed before and after the stop is all acknowledged.
func TestSIGTERMMovesSessionsBeforeExit(t *testing.T) {
	// A bound for the whole test, not a wait: on a loaded machine the
	// start, the stop with its drain and the room's loads on the other
	// nodes each take seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, logs := startLoggedCluster(ctx, t, "chat.test")
	const room = "stop"
	dial := func(user, home string) *client.Session {
		t.Helper()
		s, err := client.Dial(ctx, strings.Join(c.Addrs(), ","), client.WithUser(user), client.WithPolicy(homeNode(home)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if s.Node().ID != home {
			t.Fatalf("%s on %s, want %s", user, s.Node().ID, home)
		}
		return s
	}
	ann := dial("ann", "n1")
	bob := dial("bob", "n2")
	// bob's events, read from here on: presence about ann is churn.
	churn := make(chan string, 16)
	bobJoined := make(chan struct{})
	go func() {
		once := sync.OnceFunc(func() { close(bobJoined) })
		for e := range bob.Events() {
			if e.Kind != client.Received {
				continue
			}
			switch m := e.Message; {
			case m.Op == wire.OpRoom && m.Room == room:
				once()
			case m.Op == wire.OpPresence && m.User == "ann":
				churn <- m.Event
			}
		}
	}()
	if err := bob.Join(room); err != nil {
		t.Fatal(err)
	}
	<-bobJoined
	annEvents := make(chan client.Event, 256)
	go func() {
		for e := range ann.Events() {
			if e.Kind != client.Received && e.Kind != client.DirectoryPushed {
				annEvents <- e
			}
		}
		close(annEvents)
	}()
	if _, err := ann.JoinWait(ctx, room); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-churn:
		if ev != "join" {
			t.Fatalf("bob saw ann %s, want join", ev)
		}
	case <-time.After(settle):
		t.Fatal("bob did not see ann join")
	}
	if _, err := ann.SendTextWait(ctx, room, "before the stop\n"); err != nil {
		t.Fatal(err)
	}

	if err := c.Terminate(0); err != nil { // waits for the exit
		t.Fatal(err)
	}
	select {
	case e := <-annEvents:
		if e.Kind != client.Moved || e.Node.ID == "n1" {
			t.Fatalf("ann's first event after the stop: %v to %s (%v); want moved off n1", e.Kind, e.Node.ID, e.Err)
		}
	case <-time.After(settle):
		t.Fatal("ann did not move")
	}
	if _, err := ann.SendTextWait(ctx, room, "after it\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-annEvents:
		t.Errorf("ann had another event: %v %s %v", e.Kind, e.Node.ID, e.Err)
	case ev := <-churn:
		t.Errorf("bob saw ann %s; she only moved", ev)
	default:
	}
	found := false
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "drain ended") && strings.Contains(line, "node=n1") && strings.Contains(line, "reason=empty") {
			found = true
		}
	}
	if !found {
		t.Errorf("n1 did not log that its drain ended empty; the nodes' log:\n%s", logs.String())
	}
}

// switchboard drain NODE --within names the node by its ID (looked up in
// the directory of --via), drains it to empty while a session on it
// moves without a drop, reports the end, and --undo lets the node admit
// sessions again.
func TestDrainCommand(t *testing.T) {
	c := startCluster(t, 2)
	n1, n2 := c.Nodes[0], c.Nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	defer cancel()
	s, err := client.Dial(ctx, n1.Addr, client.WithUser("ann"), client.WithPolicy(homeNode(n2.ID)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Node().ID != n2.ID {
		t.Fatalf("ann on %s, want %s", s.Node().ID, n2.ID)
	}
	code, stdout, stderr := runArgs(t, "drain", n2.ID, "--via", n1.Addr, "--within", "20s")
	if code != 0 || !strings.Contains(stdout, "draining n2 within 20s: 1 sessions") || !strings.Contains(stdout, "n2: drain ended (empty)") {
		t.Fatalf("drain: exit %d\n%s%s", code, stdout, stderr)
	}
	for e := range s.Events() {
		if e.Kind == client.Disconnected {
			t.Fatalf("ann dropped: %v", e.Err)
		}
		if e.Kind == client.Moved {
			if e.Node.ID != n1.ID {
				t.Errorf("ann moved to %s, want %s", e.Node.ID, n1.ID)
			}
			break
		}
	}
	if st, _ := n1.Status(ctx, n2.ID); st != directory.Draining {
		t.Errorf("n1 lists n2 %s after the drain, want draining", st)
	}
	// By its client address (a node's ID by default): what answers there
	// is no HTTP API, and the node's own directory says where that is.
	if code, stdout, stderr := runArgs(t, "drain", n2.Addr, "--undo"); code != 0 || !strings.Contains(stdout, n2.Addr+" admits sessions again") {
		t.Fatalf("drain CLIENT-ADDRESS --undo: exit %d\n%s%s", code, stdout, stderr)
	}
	if err := localcluster.Await(ctx, settle, func(ctx context.Context) error {
		if st, err := n1.Status(ctx, n2.ID); err != nil || st != directory.Up {
			return fmt.Errorf("n1 lists n2 %s (%v)", st, err)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if code, _, stderr := runArgs(t, "drain", "n9", "--via", n1.Addr); code != 1 || !strings.Contains(stderr, `no node "n9"`) {
		t.Errorf("drain of an unknown node: exit %d, stderr %q; want 1 and the reason", code, stderr)
	}
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tokenFile, []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runArgs(t, "drain", n2.ID, "--via", n1.Addr, "--admin-token", tokenFile); code != 2 || !strings.Contains(stderr, "in clear") {
		t.Errorf("drain of a node by ID with an admin token over plain HTTP: exit %d, stderr %q; want 2 and why", code, stderr)
	}
	if code, _, stderr := runArgs(t, "drain", n2.Addr, "--admin-token", tokenFile); code != 2 || !strings.Contains(stderr, "in clear") {
		t.Errorf("drain of a node by its client address with an admin token over plain HTTP: exit %d, stderr %q; want 2 and why", code, stderr)
	}
}

// TestDrainCommandOverTLS: a node serving its HTTP API with --http-tls
// and its client listener with TLS is drained with --https, trusting the
// CA of --ca and verifying the service name; looked up by ID, its
// directory is asked over TLS too. Plain HTTP, and a certificate that
// does not prove the name asked for, get a clear failure.
func TestDrainCommandOverTLS(t *testing.T) {
	dir := t.TempDir()
	if code, _, stderr := runArgs(t, "certs", "--dir", dir, "--service", "chat.test", "--node", "n1", "--host", "127.0.0.1"); code != exitOK {
		t.Fatalf("certs: exit %d\n%s", code, stderr)
	}
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.Service = "chat.test"
		cfg.TLSCert, cfg.TLSKey = filepath.Join(dir, "n1.pem"), filepath.Join(dir, "n1.key")
		cfg.HTTPTLS = true
	}})
	n1 := c.Nodes[0]
	ca := filepath.Join(dir, pki.CAFile)

	code, stdout, stderr := runArgs(t, "drain", n1.HTTPAddr(), "--https", "--ca", ca, "--tls-name", "chat.test", "--within", "1s")
	if code != exitOK || !strings.Contains(stdout, "n1: drain ended (empty)") {
		t.Fatalf("drain --https: exit %d\n%s%s", code, stdout, stderr)
	}
	if st := n1.Status(); st != directory.Draining {
		t.Errorf("n1 is %s after the drain, want draining", st)
	}
	// By ID: the directory of --via is asked over TLS with the same trust.
	if code, stdout, stderr := runArgs(t, "drain", "n1", "--via", n1.Addr(), "--https", "--ca", ca, "--tls-name", "chat.test", "--undo"); code != exitOK {
		t.Fatalf("drain n1 --https --undo: exit %d\n%s%s", code, stdout, stderr)
	}
	if st := n1.Status(); st != directory.Up {
		t.Errorf("n1 is %s after --undo, want up", st)
	}
	// By its client address, over TLS too.
	if code, stdout, stderr := runArgs(t, "drain", n1.Addr(), "--https", "--ca", ca, "--tls-name", "chat.test", "--within", "1s"); code != exitOK || !strings.Contains(stdout, "n1: drain ended (empty)") {
		t.Fatalf("drain CLIENT-ADDRESS --https: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := runArgs(t, "drain", n1.HTTPAddr(), "--https", "--ca", ca, "--tls-name", "chat.test", "--undo"); code != exitOK {
		t.Fatalf("drain --https --undo: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := runArgs(t, "probe", "--http", n1.HTTPAddr(), "--https", "--ca", ca, "--tls-name", "chat.test"); code != exitOK {
		t.Errorf("probe --https: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"plain HTTP to HTTPS", []string{"drain", n1.HTTPAddr(), "--undo"}, "add --https"},
		{"another name", []string{"drain", n1.HTTPAddr(), "--https", "--ca", ca, "--tls-name", "other.test", "--undo"}, "certificate is valid for"},
		{"no name for an IP", []string{"drain", n1.HTTPAddr(), "--https", "--ca", ca, "--undo"}, "--tls-name"},
	} {
		code, _, stderr := runArgs(t, tt.args...)
		if code == exitOK || !strings.Contains(stderr, tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want a failure naming %q", tt.name, code, stderr, tt.want)
		}
	}
}

// Go's HTTPS server answers a plain POST or GET with 400 "Client sent an
// HTTP request to an HTTPS server.": drain (also where it reads a whole
// directory) and probe say to add --https, and how to trust the node's
// certificate.
func TestPlainHTTPToHTTPSSaysAddHTTPS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("a plain request was served")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // its TLS handshake errors, expected
	srv.StartTLS()
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	for _, args := range [][]string{
		{"drain", addr, "--within", "2s"},
		{"probe", "--http", addr},
		{"probe", "--http", addr, "--live"},
	} {
		code, _, stderr := runArgs(t, args...)
		if code == exitOK || !strings.Contains(stderr, "add --https, with --ca and --tls-name") {
			t.Errorf("%v: exit %d, stderr %q; want a failure saying to add --https", args, code, stderr)
		}
	}
	// The whole directory drain reads from the HTTP API of the node that
	// sent a sample without the ID asked for.
	_, err := nodeWeb{hc: srv.Client(), scheme: "http://"}.directory(t.Context(), addr)
	if err == nil || !strings.Contains(err.Error(), "add --https, with --ca and --tls-name") {
		t.Errorf("drain reading the whole directory over plain HTTP from HTTPS: %v; want a failure saying to add --https", err)
	}
}

// A node's reads answer 421 under a name the service does not publish
// (docs/web.md); its POST /v1/drain needs the admin credential only. A
// drain that could not be followed is not started: before, the drain
// began and the command then failed, leaving the node draining. probe
// says what the node answered.
func TestMisdirectedNameChangesNothing(t *testing.T) {
	const why = `this node does not answer under the name "vm:7071"`
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"node":"n1","status":"draining","draining":true,"paced":true}`)
			return
		}
		http.Error(w, why, http.StatusMisdirectedRequest)
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	code, _, stderr := runArgs(t, "drain", addr, "--within", "2s")
	if code == exitOK || !strings.Contains(stderr, "421") || !strings.Contains(stderr, why) || !strings.Contains(stderr, "nothing was changed") {
		t.Errorf("drain of a node that answers 421: exit %d, stderr %q; want a failure saying why and that nothing changed", code, stderr)
	}
	if n := posts.Load(); n != 0 {
		t.Errorf("drain posted %d times to a node whose drain it could not follow, want none", n)
	}
	for _, args := range [][]string{{"probe", "--http", addr}, {"probe", "--caught-up", addr}} {
		code, _, stderr := runArgs(t, args...)
		if code == exitOK || !strings.Contains(stderr, why) {
			t.Errorf("%v against a node that answers 421: exit %d, stderr %q; want a failure saying why", args, code, stderr)
		}
	}
}

// A drain called off or cut short by the node's stop is a failure of the
// command: roll.sh restarts the node after a drain that succeeded.
func TestDrainEnd(t *testing.T) {
	for reason, ok := range map[string]bool{"empty": true, "deadline": true, "alone": true, "cancelled": false, "stopped": false, "": false} {
		if err := drainEnd(reason); (err == nil) != ok {
			t.Errorf("drainEnd(%q) = %v, want success %v", reason, err, ok)
		}
	}
}

// A hello's directory in a large cluster is a sample: an ID it leaves out
// is looked up in the whole directory, read from the HTTP API of the node
// that answered. The sample here comes from a responder that stands for
// such a node (a real cluster past the sample's size is a benchmark's);
// the whole directory is a real node's.
func TestDrainLooksUpAnIDPastTheSample(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{})
	n1 := c.Nodes[0]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sample := wire.DirectoryMessage(&wire.Directory{Service: "s", Self: "big",
		Nodes: []directory.Node{{ID: "big", Addr: ln.Addr().String(), HTTP: n1.HTTPAddr(), Status: directory.Up}}, Total: 500})
	line, err := json.Marshal(sample)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
			return
		}
		_, _ = conn.Write(append(line, '\n'))
	}()
	if code, stdout, stderr := runArgs(t, "drain", n1.ID(), "--via", ln.Addr().String(), "--undo"); code != exitOK || !strings.Contains(stdout, "n1 admits sessions again") {
		t.Errorf("drain of an ID the sample leaves out: exit %d\n%s%s", code, stdout, stderr)
	}
}

// drain HOST:PORT with an admin token finds out first, with no token,
// whether HOST:PORT is an HTTP API: a client port (which answers with a
// protocol line) sees no token before the command refuses to send it in
// clear to the address a directory gives.
func TestDrainSendsNoTokenToFindTheAPI(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- ""
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		var head strings.Builder
		for {
			line, err := r.ReadString('\n')
			head.WriteString(line)
			if err != nil || line == "\r\n" {
				break
			}
		}
		_, _ = conn.Write([]byte(`{"op":"error","code":"bad_request","message":"is this a hello?"}` + "\n"))
		got <- head.String()
	}()
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tokenFile, []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runArgs(t, "drain", ln.Addr().String(), "--admin-token", tokenFile)
	if code != 2 || !strings.Contains(stderr, "in clear") {
		t.Errorf("drain of a client address with an admin token over plain HTTP: exit %d, stderr %q; want 2 and why", code, stderr)
	}
	if head := <-got; strings.Contains(head, "0123456789abcdef") || strings.Contains(strings.ToLower(head), "authorization") {
		t.Errorf("the client port was sent the token:\n%s", head)
	}
}

// An --admin-token file with no token in it is refused before anything
// is asked of the node: it used to send no token, and the node's 401
// blamed a token that was never sent.
func TestDrainRefusesAnEmptyAdminToken(t *testing.T) {
	for _, text := range []string{"", "\n", " \t\n"} {
		file := filepath.Join(t.TempDir(), "admin.token")
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := runArgs(t, "drain", "127.0.0.1:1", "--admin-token", file)
		if want := "drain: the admin token file " + file + " (--admin-token) is empty"; code != exitFailure || stdout != "" || !strings.Contains(stderr, want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 1 and %q", text, code, stdout, stderr, want)
		}
	}
}

// A node whose drain never ends (its status says draining long after
// its window, as a node whose drain loop no longer runs would): drain
// stops following it once the window and drainFollowGrace have passed,
// and exits 1 (it followed for ever).
func TestDrainStopsFollowingAStuckDrain(t *testing.T) {
	defer func(g time.Duration) { drainFollowGrace = g }(drainFollowGrace)
	drainFollowGrace = 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now().Add(-time.Hour) // the node's clock, an hour behind the window's end
		st := node.DrainStatus{Node: "n1", Status: directory.Draining, Draining: true, Paced: true,
			Started: start, Deadline: start.Add(time.Second), Total: 1, Sessions: 1}
		_ = json.NewEncoder(w).Encode(st)
	}))
	defer srv.Close()
	code, stdout, stderr := runArgs(t, "drain", strings.TrimPrefix(srv.URL, "http://"), "--within", "1s")
	if code != exitFailure || !strings.Contains(stderr, "stopped following") || !strings.Contains(stdout, "draining n1") {
		t.Errorf("drain of a node whose drain never ends: exit %d, stdout %q, stderr %q; want 1 and why", code, stdout, stderr)
	}
}
