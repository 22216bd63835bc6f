package bus

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// startExternal runs a nats-server in this process, listening on
// loopback, as an external NATS with two accounts: the system account
// SYS (user sys) and APP, which takes connections without credentials.
func startExternal(t *testing.T) (clientURL string, port int) {
	t.Helper()
	sys, app := server.NewAccount("SYS"), server.NewAccount("APP")
	opts := &server.Options{
		Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		Accounts:      []*server.Account{sys, app},
		SystemAccount: "SYS",
		Users: []*server.User{
			{Username: "sys", Password: "sys-secret", Account: sys},
			{Username: "app", Password: "app-secret", Account: app},
		},
		NoAuthUser: "app",
	}
	s := runNATS(t, opts)
	u, err := url.Parse(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Sscan(u.Port(), &port)
	return s.ClientURL(), port
}

// A node watching with a user of the system account hears of another
// connection's close, named as that connection names itself (ConnName),
// and its own directory connection has such a name too.
func TestWatchDisconnects(t *testing.T) {
	clientURL, port := startExternal(t)
	b, err := Open(context.Background(), Config{Name: "w1", External: clientURL,
		ExternalSystem: fmt.Sprintf("nats://sys:sys-secret@127.0.0.1:%d", port)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	closed := make(chan string, 16)
	if err := b.WatchDisconnects(func(conn string) { closed <- conn }); err != nil {
		t.Fatal(err)
	}
	if c := b.DirConn(); !strings.Contains(c, "/") {
		t.Errorf("DirConn() = %q, want SERVER_ID/CLIENT_ID", c)
	}
	peer, err := nats.Connect(clientURL, nats.Name("w2-dir"))
	if err != nil {
		t.Fatal(err)
	}
	name := ConnName(peer)
	if name == "" {
		t.Fatal("ConnName of a connected peer is empty")
	}
	peer.Close()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case c := <-closed:
			if c == name {
				return
			}
		case <-timeout:
			t.Fatalf("no disconnect event for %s within 30 s", name)
		}
	}
}

// A --bus-system user outside the system account would hear nothing: it
// is refused at once with ErrNotSystem, its password not repeated.
func TestWatchDisconnectsNeedsTheSystemAccount(t *testing.T) {
	clientURL, port := startExternal(t)
	b, err := Open(context.Background(), Config{Name: "w1", External: clientURL,
		ExternalSystem: fmt.Sprintf("nats://app:app-secret@127.0.0.1:%d", port)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.WatchDisconnects(func(string) {})
	if !errors.Is(err, ErrNotSystem) {
		t.Fatalf("WatchDisconnects as a user of APP: %v, want ErrNotSystem", err)
	}
	if strings.Contains(err.Error(), "app-secret") {
		t.Errorf("the error repeats the password: %v", err)
	}
	if err := (&Bus{cfg: Config{External: clientURL}}).WatchDisconnects(func(string) {}); !errors.Is(err, ErrNoSystem) {
		t.Errorf("WatchDisconnects without ExternalSystem: %v, want ErrNoSystem", err)
	}
}

// A --bus-system URL may carry a NATS token in the user's place
// (nats://TOKEN@HOST): the refusal names the URL with the token hidden,
// as RedactURLs prints it, not the token.
func TestWatchDisconnectsHidesAToken(t *testing.T) {
	const token = "s3cr3t-token"
	s := runNATS(t, &server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true, Authorization: token})
	withToken := fmt.Sprintf("nats://%s@%s", token, s.Addr())
	b, err := Open(context.Background(), Config{Name: "w1", External: withToken, ExternalSystem: withToken})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.WatchDisconnects(func(string) {})
	if !errors.Is(err, ErrNotSystem) {
		t.Fatalf("WatchDisconnects as a token user of the global account: %v, want ErrNotSystem", err)
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("the error repeats the token: %v", err)
	}
	if want := RedactURLs(withToken); !strings.Contains(err.Error(), want) {
		t.Errorf("the error %q does not name the URL as %q", err, want)
	}
}

// runNATS starts a nats-server with opts, stopped when t ends.
func runNATS(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return s
}
