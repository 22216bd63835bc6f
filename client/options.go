package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/switchboard/switchboard/failover"
	"github.com/switchboard/switchboard/pick"
)

// Option configures Dial.
type Option func(*options) error

type options struct {
	policy      pick.Policy
	group       string
	user        string
	retry       failover.Config
	dialer      Dialer
	logger      *slog.Logger
	rand        pick.Rand
	tracker     *pick.Tracker
	resolvers   []string
	plainDNS    bool
	defaultPort int
	attempt     time.Duration
	stagger     time.Duration
	clientName  string
	heartbeat   Heartbeat
	reconnect   time.Duration
	events      int
	tls         *tls.Config
	serviceName string
	token       func(context.Context) (string, error)
	device      *string // nil: a random name, drawn at Dial
	// ignoreLimits sends as if the nodes said no limits (nodes older
	// than them); set only by tests (export_test.go).
	ignoreLimits bool
	// keepAlive is the writer's ping after silence; 0: DefaultKeepAlive.
	// Set only by tests (export_test.go).
	keepAlive time.Duration
}

func defaultOptions() options {
	return options{
		retry:       DefaultRetry(),
		logger:      slog.New(slog.DiscardHandler),
		defaultPort: 7070,
		attempt:     2 * time.Second,
		stagger:     DefaultHelloStagger,
		clientName:  UserAgent,
		heartbeat:   DefaultHeartbeat(),
		events:      DefaultEventBuffer,
	}
}

// WithPolicy sets how the node is picked (default pick.Default).
func WithPolicy(p pick.Policy) Option {
	return func(o *options) error {
		if p == nil {
			return fmt.Errorf("client: nil policy")
		}
		o.policy = p
		return nil
	}
}

// WithGroup sets the client's own "region/zone", preferred when picking.
func WithGroup(group string) Option {
	return func(o *options) error { o.group = group; return nil }
}

// WithUser sets the user name the session attaches as (required).
func WithUser(user string) Option {
	return func(o *options) error { o.user = user; return nil }
}

// WithDevice sets the device name the session attaches with, the same
// on every node it moves to (docs/protocol.md, "Attach"). By default
// Dial draws a random one, so that two sessions of one user typing into
// one room at the same moment never lose a chunk to each other; set it
// only to keep one name across restarts of a program that keeps its
// unacknowledged text across them too. "" attaches without a device, as
// clients did before devices: then such a chunk can be lost.
func WithDevice(name string) Option {
	return func(o *options) error {
		if len(name) > 64 {
			return fmt.Errorf("client: device name of %d bytes; at most 64", len(name))
		}
		o.device = &name
		return nil
	}
}

// DefaultDropBase bounds the client's random wait after its session
// dropped, before it asks the common address again
// (failover.Config.DropBase): 20 ms, where the failover package's own
// default is 250 ms. The wait no longer keeps the survivors of a dead
// node balanced (pick.Balanced's margin and a shared pick.Tracker do that,
// however fast the sessions come back); it only spreads a little the
// arrivals that the kernel's closing of the dead node's connections
// already spreads over tens of milliseconds. Sessions that keep dropping
// still wait longer each time (failover.Config.Stable).
const DefaultDropBase = 20 * time.Millisecond

// DefaultRetry returns the retry settings Dial uses unless WithRetry is
// given: failover.DefaultConfig with DropBase DefaultDropBase.
func DefaultRetry() failover.Config {
	cfg := failover.DefaultConfig()
	cfg.DropBase = DefaultDropBase
	return cfg
}

// WithRetry sets the retry, backoff and cool-down settings (default
// DefaultRetry).
func WithRetry(cfg failover.Config) Option {
	return func(o *options) error {
		if err := cfg.Validate(); err != nil {
			return err
		}
		o.retry = cfg
		return nil
	}
}

// WithDialer sets how connections are opened (default a *net.Dialer);
// tests pass dialers that inject faults.
func WithDialer(d Dialer) Option {
	return func(o *options) error { o.dialer = d; return nil }
}

// WithLogger sets where the session logs its failovers.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error { o.logger = l; return nil }
}

// WithRand sets the randomness of picks, address order and backoff jitter
// (default: a concurrency-safe global source).
func WithRand(r pick.Rand) Option {
	return func(o *options) error { o.rand = r; return nil }
}

// WithTracker shares a pick.Tracker between the sessions of one process, so
// that picks made from the same directory spread out.
func WithTracker(t *pick.Tracker) Option {
	return func(o *options) error { o.tracker = t; return nil }
}

// WithResolver sets the DNS server (HOST:PORT) asked for every name: the
// service of dns: targets, the SRV targets it lists, and the HOST of
// HOST:PORT targets. An empty addr means the system resolver; a comma
// list of servers is WithResolvers with them.
func WithResolver(addr string) Option {
	var addrs []string
	for _, a := range strings.Split(addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	return WithResolvers(addrs...)
}

// WithPlainDNS makes the session look its service name up (dns: targets,
// and host names of HOST:PORT targets) as plain A/AAAA records, in random
// order, without asking for SRV records first: the round robin a plain DNS
// front gives, which the benchmarks' dns-only baseline measures. Without
// it the SRV records come first (resolve.Lookup).
func WithPlainDNS() Option {
	return func(o *options) error { o.plainDNS = true; return nil }
}

// WithResolvers sets the DNS servers (HOST:PORT each) asked for every
// name, as WithResolver, tried in turn: when one does not answer (dead,
// timed out, or failing), the next is asked. A dns://RESOLVER/SERVICE
// target's RESOLVER comes first. None means the system resolver.
func WithResolvers(addrs ...string) Option {
	return func(o *options) error {
		o.resolvers = nil
		for _, a := range addrs {
			if a == "" {
				return fmt.Errorf("client: empty resolver address")
			}
			if !slices.Contains(o.resolvers, a) {
				o.resolvers = append(o.resolvers, a)
			}
		}
		return nil
	}
}

// WithDefaultPort sets the port used with addresses from A/AAAA records
// (default 7070).
func WithDefaultPort(port int) Option {
	return func(o *options) error {
		if port <= 0 || port > 65535 {
			return fmt.Errorf("client: bad default port %d", port)
		}
		o.defaultPort = port
		return nil
	}
}

// WithAttemptTimeout bounds one connect+hello or connect+hello+attach
// (default 2 s): a node that does not answer in time counts as timed out.
func WithAttemptTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("client: attempt timeout must be positive")
		}
		o.attempt = d
		return nil
	}
}

// DefaultHelloStagger is how long a bootstrap waits for the connection
// to an address before connecting to the next address too: RFC 8305's
// recommended Connection Attempt Delay.
const DefaultHelloStagger = 250 * time.Millisecond

// WithHelloStagger sets how long a bootstrap (asking the common address,
// or the nodes of the last directory, for the directory) waits for the
// TCP connection to one address before connecting to the next one as
// well (default DefaultHelloStagger); a hello that fails starts the next
// at once, and one whose connection is made has its attempt timeout.
// The first address to answer is used and the other hellos are
// abandoned.
func WithHelloStagger(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("client: hello stagger must be positive")
		}
		o.stagger = d
		return nil
	}
}

// WithClientName sets the NAME/VERSION sent in hello.
func WithClientName(name string) Option {
	return func(o *options) error { o.clientName = name; return nil }
}

// Heartbeat says how an attached session notices a node that vanished
// without closing its connection (a paused process, a partition, a host
// that lost power), and how it tells such a node from one that is merely
// busy.
//
// Every message the node sends counts as a sign of life. After Interval
// without one the session pings the node; the node's reader answers at
// once, after the lines it is handling. After Timeout-Interval without
// one the session asks for a second opinion: it opens a second
// connection to the same node, at the address its directory entry lists
// (not the common address, which a load balancer may hand to another
// node), and pings there (before any hello). After Timeout without a
// sign of life on the session the node is taken for gone, unless the
// second connection got its pong: then the node is alive and only this
// session's reader is busy (waiting for storage, say), and the session
// waits another Timeout, and after each further verdict that
// finds it busy a growing pause more (Timeout, then 3, 7... Timeouts, up
// to 15 s), so that a long storage stall under thousands of sessions does
// not become a storm of second connections. A node that vanished is
// therefore noticed at most Timeout after the last message it sent
// (unless it was busy just before). A busy one is left once it has sent
// the session nothing for MaxBusy: a storage stall ends a node's requests
// within its store timeout (15 s by default), while a connection that a
// middlebox lost, or a reader wedged on the node, would never recover.
// On Linux a lost flow goes sooner: the session's connection carries a
// TCP_USER_TIMEOUT of 10 Timeouts, at most MaxBusy, after which the
// kernel ends a connection whose data goes unacknowledged.
type Heartbeat struct {
	// Interval is how long a session waits for a message before it pings
	// (default 500 ms). Zero disables the heartbeat: a node that vanishes
	// is then noticed only when the operating system gives up on the
	// connection, which can take many minutes.
	Interval time.Duration
	// Timeout is how long a session waits for a message before it takes
	// the node for gone (default 1.5 s). It is at least 2*Interval, so
	// that a ping has Interval to be answered before the second opinion
	// and the second opinion Interval at least.
	Timeout time.Duration
	// MaxBusy is the longest a session waits for a message from a node
	// whose second connections are answered; above Timeout (0: the
	// larger of 60 s, four times a node's default store timeout, and 4
	// Timeouts). It is checked at each verdict, so a drop comes up to one
	// busy pause (15 s) after it.
	MaxBusy time.Duration
}

// maxBusy is h.MaxBusy, or its default when that is 0.
func (h Heartbeat) maxBusy() time.Duration {
	if h.MaxBusy > 0 {
		return h.MaxBusy
	}
	return max(60*time.Second, 4*h.Timeout)
}

// DefaultHeartbeat is a ping after 500 ms of silence and a node taken for
// gone after 1.5 s: a vanished node is noticed within 1.5 s of its last
// message, and an idle session sends two pings a second.
func DefaultHeartbeat() Heartbeat {
	return Heartbeat{Interval: 500 * time.Millisecond, Timeout: 1500 * time.Millisecond}
}

// validate rejects a heartbeat that cannot work.
func (h Heartbeat) validate() error {
	switch {
	case h.Interval < 0 || h.Timeout < 0:
		return fmt.Errorf("client: heartbeat: negative interval %v or timeout %v", h.Interval, h.Timeout)
	case h.Interval > 0 && h.Timeout < 2*h.Interval:
		return fmt.Errorf("client: heartbeat: timeout %v is below twice the interval %v", h.Timeout, h.Interval)
	case h.MaxBusy < 0 || h.MaxBusy > 0 && h.MaxBusy <= h.Timeout:
		return fmt.Errorf("client: heartbeat: max busy %v is negative or not above the timeout %v", h.MaxBusy, h.Timeout)
	}
	return nil
}

// WithHeartbeat sets how a session notices a node that vanished (default
// DefaultHeartbeat: ping after 500 ms of silence, gone after 1.5 s).
func WithHeartbeat(h Heartbeat) Option {
	return func(o *options) error {
		if err := h.validate(); err != nil {
			return err
		}
		o.heartbeat = h
		return nil
	}
}

// WithPingInterval sets the heartbeat's interval to d and its timeout to
// 3*d (0 disables the heartbeat). WithHeartbeat sets both.
func WithPingInterval(d time.Duration) Option {
	return WithHeartbeat(Heartbeat{Interval: d, Timeout: 3 * d})
}

// WithReconnectTimeout bounds how long a session that lost its node tries
// to attach again before it gives up (default 0: until Close). A session
// that gives up ends: Err returns why (matching ErrGaveUp and ErrClosed)
// and every method fails with that error.
func WithReconnectTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("client: negative reconnect timeout %v", d)
		}
		o.reconnect = d
		return nil
	}
}

// DefaultEventBuffer is how many events a session holds for its reader
// unless WithEventBuffer says otherwise.
const DefaultEventBuffer = 256

// WithEventBuffer sets how many events the session's Events channel holds
// before the session stops reading from its node (default
// DefaultEventBuffer). The buffer is allocated whole when the session is
// made, about half a kilobyte an event, so a process that holds
// thousands of sessions and reads their events promptly (a gateway, a
// load generator) saves memory with a small one; n must be at least 1.
func WithEventBuffer(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("client: event buffer of %d: must be at least 1", n)
		}
		o.events = n
		return nil
	}
}

// WithTLS makes every connection, to the common address and to the node
// picked, speak TLS with cfg (its RootCAs: the CAs to trust, the system's
// when nil). Each node must prove the service name: the name given with
// WithServiceName, or cfg.ServerName, or else the name in the target
// (dns:SERVICE, or the HOST of HOST:PORT when it is a name, not an IP).
// The address the directory lists for a node is never what is verified:
// a forged entry that points at a host without the service's certificate
// fails its handshake, and the client picks another node. With
// WithServiceName, the directory each node answers with must name that
// service too (ErrWrongService).
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) error {
		if cfg == nil {
			return fmt.Errorf("client: nil TLS config")
		}
		o.tls = cfg.Clone()
		if o.tls.ClientSessionCache == nil {
			// The nodes of a service share their session ticket keys, so the
			// attach resumes the TLS session of the hello before it: one full
			// handshake per dial.
			o.tls.ClientSessionCache = tls.NewLRUClientSessionCache(16)
		}
		return nil
	}
}

// WithServiceName sets the service's common name. The directory a node
// answers a hello with must name it (docs/protocol.md, "Hello and the
// directory"): a node of another service is not attached to, nor are the
// nodes its directory lists, and the session asks elsewhere (the error
// matches ErrWrongService). When WithTLS is used, a node's certificate
// must carry it too (as a DNS SAN); it overrides the name derived from
// the target, and is needed when the target is an IP address. Without
// it the service a directory names is not checked: a name taken from
// the target (a node's own host name, an alias its certificate carries)
// need not be the service's. When it is set, a token goes to a node only
// once its directory has named the service.
func WithServiceName(name string) Option {
	return func(o *options) error { o.serviceName = name; return nil }
}

// WithToken sets the signed token sent with every attach, for services
// that authenticate users. It must name the user given with WithUser.
func WithToken(token string) Option {
	return func(o *options) error {
		o.token = func(context.Context) (string, error) { return token, nil }
		return nil
	}
}

// WithTokenFunc sets a function that returns the token to send with each
// attach (the first and every reattachment, a move's included), so that
// a long session can present a fresh token after a failover. It is called
// with no connection of the session's attach open: before the attach's
// connection is opened, or, when the session asks the common address for
// a directory first, just before that hello (so that the attach can go
// on the hello's connection; a token fetched so is used for that attach
// only, and dropped when no address answers). It may block until ctx
// ends: Dial's context; then the session's, which ends at Close or at the
// reconnect deadline (WithReconnectTimeout), and for a move after 10 s.
// The attempt timeout (WithAttemptTimeout) does not bound it. It should
// return when ctx ends: the session stops waiting for it then all the
// same (so that Close never waits for it), leaves a call that does not
// return to finish on a goroutine of its own and drops its answer, and
// may call f again meanwhile. An error it returns counts as a failed
// attempt on the node picked, which is retried as a node that refused
// the connection.
func WithTokenFunc(f func(ctx context.Context) (string, error)) Option {
	return func(o *options) error {
		if f == nil {
			return fmt.Errorf("client: nil token function")
		}
		o.token = f
		return nil
	}
}
