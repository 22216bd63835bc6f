package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
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
	resolver    string
	defaultPort int
	attempt     time.Duration
	clientName  string
	ping        time.Duration
	events      int
	tls         *tls.Config
	serviceName string
	token       func(context.Context) (string, error)
}

func defaultOptions() options {
	return options{
		retry:       failover.DefaultConfig(),
		logger:      slog.New(slog.DiscardHandler),
		defaultPort: 7070,
		attempt:     2 * time.Second,
		clientName:  UserAgent,
		ping:        15 * time.Second,
		events:      256,
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

// WithRetry sets the retry, backoff and cool-down settings.
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

// WithResolver sets the DNS server (HOST:PORT) asked for dns: targets that
// name none.
func WithResolver(addr string) Option {
	return func(o *options) error { o.resolver = addr; return nil }
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

// WithClientName sets the NAME/VERSION sent in hello.
func WithClientName(name string) Option {
	return func(o *options) error { o.clientName = name; return nil }
}

// WithPingInterval sets how often an idle session pings its node to notice
// a dead connection (default 15 s; 0 disables pings).
func WithPingInterval(d time.Duration) Option {
	return func(o *options) error { o.ping = d; return nil }
}

// WithTLS makes every connection, to the common address and to the node
// picked, speak TLS with cfg (its RootCAs: the CAs to trust, the system's
// when nil). Each node must prove the service name: cfg.ServerName, or
// the name given with WithServiceName, or else the name in the target
// (dns:SERVICE, or the HOST of HOST:PORT when it is a name, not an IP).
// The address the directory lists for a node is never what is verified:
// a forged entry that points at a host without the service's certificate
// fails its handshake, and the client picks another node.
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

// WithServiceName sets the service's common name, which a node's TLS
// certificate must carry (as a DNS SAN) when WithTLS is used. It overrides
// the name derived from the target, and is needed when the target is an
// IP address.
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
// attach (the first and every reattachment), so that a long session can
// present a fresh token after a failover. It is called from the
// session's own goroutine and may block until ctx ends.
func WithTokenFunc(f func(ctx context.Context) (string, error)) Option {
	return func(o *options) error {
		if f == nil {
			return fmt.Errorf("client: nil token function")
		}
		o.token = f
		return nil
	}
}
