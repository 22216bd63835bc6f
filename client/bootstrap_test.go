package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/failover"
)

// setService makes the fake's directories name the service name.
func (n *fakeNode) setService(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.service = name
}

// attachCount returns how many attaches the fake answered.
func (n *fakeNode) attachCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.attaches
}

// acceptedCount returns how many connections the fake accepted.
func (n *fakeNode) acceptedCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.accepted
}

// awaitNoConns returns once the fake holds no open connection, failing
// the test when settle passes first: it wakes on each connection's end.
func (n *fakeNode) awaitNoConns(t *testing.T, what string) {
	t.Helper()
	deadline := time.After(settle)
	for {
		n.mu.Lock()
		open, gone := len(n.conns), n.connGone
		n.mu.Unlock()
		if open == 0 {
			return
		}
		select {
		case <-gone:
		case <-deadline:
			t.Fatalf("%s: the node still holds %d open connection(s) after %v", what, open, settle)
		}
	}
}

// giveUpAfterOnePass is a retry config whose flow fails as soon as one
// pass at the common address has failed: its backoff would pass any
// test's deadline.
func giveUpAfterOnePass() failover.Config {
	cfg := fastRetry()
	cfg.PassBase, cfg.PassMax = time.Hour, time.Hour
	return cfg
}

// A node of another service at the common address answers the hello with
// that service's directory: the session refuses it, attaches to none of
// the nodes it lists, and asks the common address's next address, whose
// directory is the service's.
func TestDirectoryOfAnotherServiceAtTheCommonAddress(t *testing.T) {
	good, foreign := newFakeNode(t, "good"), newFakeNode(t, "foreign")
	foreign.setService("other.test")
	// recordingRand answers 0, so the shuffle of two addresses swaps
	// them: foreign is asked first (checked below).
	s, err := client.Dial(dialCtx(t), good.Addr()+","+foreign.Addr(), client.WithUser("alice"),
		client.WithServiceName("fake.test"), client.WithRand(&recordingRand{}), client.WithRetry(fastRetry()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if foreign.helloCount() == 0 {
		t.Fatalf("the foreign node was never asked: the test's address order no longer puts it first")
	}
	if id := s.Node().ID; id != "good" {
		t.Errorf("attached to %q, want good: the directory of other.test was taken for fake.test's", id)
	}
	if n := foreign.attachCount(); n != 0 {
		t.Errorf("the foreign node answered %d attach(es), want none", n)
	}
	if dir := s.Directory(); dir.Service != "fake.test" {
		t.Errorf("the session holds the directory of %q, want fake.test", dir.Service)
	}
}

// Service names are DNS names: the check ignores case and a final dot.
func TestServiceNameMatchesWithoutCaseOrFinalDot(t *testing.T) {
	n := newFakeNode(t, "n1")
	s, err := client.Dial(dialCtx(t), n.Addr(), client.WithUser("alice"), client.WithServiceName("FAKE.Test."),
		client.WithRetry(giveUpAfterOnePass()))
	if err != nil {
		t.Fatalf("Dial naming the service FAKE.Test. to a node of fake.test: %v", err)
	}
	s.Close()
}

// With no address but a node of another service, Dial gives up with an
// error that says so (ErrWrongService), having attached nowhere.
func TestDirectoryOfAnotherServiceOnlyGivesUp(t *testing.T) {
	foreign := newFakeNode(t, "foreign")
	foreign.setService("other.test")
	s, err := client.Dial(dialCtx(t), foreign.Addr(), client.WithUser("alice"),
		client.WithServiceName("fake.test"), client.WithRetry(giveUpAfterOnePass()))
	if err == nil {
		s.Close()
		t.Fatalf("Dial attached to %s, a node of other.test, though the session is fake.test's", s.Node().ID)
	}
	if !errors.Is(err, client.ErrWrongService) || !errors.Is(err, client.ErrGaveUp) {
		t.Errorf("Dial: %v; want an error matching ErrWrongService and ErrGaveUp", err)

	}
	if n := foreign.attachCount(); n != 0 {
		t.Errorf("the foreign node answered %d attach(es), want none", n)
	}
}

// A node the directory lists whose address answers for another service
// (hello and attach go there together, but the attach only after the
// directory when it carries a token, which such a node must not get) is
// refused at once, without retries, and the session attaches elsewhere.
func TestListedNodeOfAnotherService(t *testing.T) {
	a, b := newFakeNode(t, "a"), newFakeNode(t, "b")
	b.setService("other.test")
	a.setDirectory(func() []directory.Node { return []directory.Node{a.entry(), b.entry()} })
	s, err := client.Dial(dialCtx(t), a.Addr(), client.WithUser("alice"), client.WithServiceName("fake.test"),
		client.WithToken("alice's-token"), client.WithPolicy(preferring("b", "a")), client.WithRetry(fastRetry()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if id := s.Node().ID; id != "a" {
		t.Fatalf("attached to %q, want a: b's directory names other.test", id)
	}
	if n := b.helloCount(); n != 1 {
		t.Errorf("b was asked %d times, want once: a node of another service is not retried", n)
	}
	if n := b.attachCount(); n != 0 {
		t.Errorf("b, a node of another service, got %d attach(es) with the token, want none", n)
	}
	if dir := s.Directory(); dir.Service != "fake.test" {
		t.Errorf("the session holds the directory of %q, want fake.test", dir.Service)
	}
}

// blockingToken is a token source that reports each call on entered and,
// for the calls fail says, fails at once; the others wait for release
// (or their context).
type blockingToken struct {
	entered chan int // the call's number, from 1
	release chan struct{}
	fail    func(call int) bool
	calls   int // only the session's goroutine calls
}

func newBlockingToken(fail func(int) bool) *blockingToken {
	return &blockingToken{entered: make(chan int, 100), release: make(chan struct{}), fail: fail}
}

func (b *blockingToken) get(ctx context.Context) (string, error) {
	b.calls++
	if b.fail(b.calls) {
		return "", errors.New("token service: try again")
	}
	b.entered <- b.calls
	select {
	case <-b.release:
		return "t", nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// A token source that takes its time is waited for with no connection
// open on the node: not the bootstrap's (whose hello the attach follows),
// not one kept from an attach whose token failed. While the source blocks
// the node has seen every connection of the session closed; the attach
// then goes out once the source answers.
func TestTokenSourceWaitsWithNoConnectionOpen(t *testing.T) {
	for _, tt := range []struct {
		name string
		fail func(call int) bool
		// conns is how many connections the attach takes, the bootstrap
		// included.
		conns int
	}{
		// The token is fetched before the hello, and the attach goes on
		// the hello's connection.
		{"first attach", func(int) bool { return false }, 1},
		// The first token fails: the bootstrap connection is closed
		// before the source is asked again.
		{"after a failed token", func(call int) bool { return call == 1 }, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := newFakeNode(t, "n1")
			tok := newBlockingToken(tt.fail)
			// No deadline: the token's wait ends only at its release (or
			// at the test's end), whatever the node does meanwhile.
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			dialed := async(func() (*client.Session, error) {
				return client.Dial(ctx, n.Addr(), client.WithUser("alice"), client.WithTokenFunc(tok.get),
					client.WithRetry(fastRetry()))
			})
			select {
			case <-tok.entered:
			case <-time.After(settle):
				t.Fatalf("the token source was not asked within %v", settle)
			}
			n.awaitNoConns(t, "while the token source blocks")
			close(tok.release)
			res := awaitResult(t, "Dial", dialed)
			if res.err != nil {
				t.Fatal(res.err)
			}
			defer res.v.Close()
			if c := n.acceptedCount(); c != tt.conns {
				t.Errorf("the node accepted %d connections, want %d", c, tt.conns)
			}
			if c := n.attachCount(); c != 1 {
				t.Errorf("the node answered %d attaches, want 1", c)
			}
		})
	}
}
