package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Default addresses of `switchboard serve` with no flags.
const (
	DefaultListen  = "127.0.0.1:7070"
	DefaultHTTP    = "127.0.0.1:7071"
	DefaultCluster = "127.0.0.1:7072"
	DefaultService = "switchboard.local"
)

// Config configures one node. DefaultConfig gives working values for every
// field; zero values are filled in by New.
type Config struct {
	// Service is the common service name shared by every node (default
	// "switchboard.local").
	Service string
	// ID names this node within the service; default derived from the
	// advertised client address ("127.0.0.2:7070").
	ID string
	// Listen is the client TCP listener, HOST:PORT (default 127.0.0.1:7070;
	// ":0" picks a free port).
	Listen string
	// Advertise is the client address put in the directory; default the
	// bound Listen address, with the host's name if it listens on all
	// interfaces.
	Advertise string
	// HTTP is the HTTP listener (API, health, metrics), HOST:PORT; empty
	// disables it.
	HTTP string
	// DNS is the DNS responder's listener (UDP and TCP), HOST:PORT; empty
	// disables it.
	DNS string
	// DNSTTL is the TTL of DNS answers (default 5 s).
	DNSTTL time.Duration
	// Cluster is the embedded NATS route listener, HOST:PORT; empty means a
	// one-node cluster.
	Cluster string
	// Join lists seed nodes' cluster addresses.
	Join []string
	// Bus is an external NATS URL; when set no NATS server is embedded and
	// Cluster and Join are ignored.
	Bus string
	// Group is this node's "region/zone".
	Group string
	// Capacity is the most attached sessions this node admits (default
	// 10,000).
	Capacity int
	// Heartbeat is how often the node publishes its entry when nothing
	// changes (default 200 ms). Peers mark it down after three missed
	// heartbeats.
	Heartbeat time.Duration
	// Coalesce is how long a change of users waits for more changes before
	// the entry is published (default 2 ms).
	Coalesce time.Duration
	// PushDelay is how long membership changes are gathered before a fresh
	// directory is pushed to attached clients (default 20 ms).
	PushDelay time.Duration
	// RemoveAfter is how long a down peer stays listed (default 1 min).
	RemoveAfter time.Duration
	// HelloTimeout closes a connection that sends no hello (default 10 s).
	HelloTimeout time.Duration
	// IdleTimeout closes a session that sends nothing, not even a ping, for
	// this long (default 5 min).
	IdleTimeout time.Duration
	// WriteTimeout bounds one write to a client (default 10 s).
	WriteTimeout time.Duration
	// MaxLine is the longest protocol line accepted, in bytes (default 64 KiB).
	MaxLine int
	// MaxQueue is how many bytes may wait for a slow client before its
	// session is closed (default 1 MiB).
	MaxQueue int
	// DataDir holds the engine's stored state (JetStream); default a
	// directory under the system's temporary directory.
	DataDir string
	// Version is the software version reported in the directory.
	Version string
	// Logger receives the node's logs (default: discard).
	Logger *slog.Logger
}

// DefaultConfig returns the configuration of `switchboard serve` with no
// flags: a one-node cluster on loopback.
func DefaultConfig() Config {
	return Config{
		Service:      DefaultService,
		Listen:       DefaultListen,
		HTTP:         DefaultHTTP,
		Capacity:     10000,
		Heartbeat:    200 * time.Millisecond,
		Coalesce:     2 * time.Millisecond,
		PushDelay:    20 * time.Millisecond,
		RemoveAfter:  time.Minute,
		HelloTimeout: 10 * time.Second,
		IdleTimeout:  5 * time.Minute,
		WriteTimeout: 10 * time.Second,
		DNSTTL:       5 * time.Second,
	}
}

// validate fills zero values with defaults and rejects nonsense.
func (c *Config) validate() error {
	d := DefaultConfig()
	if c.Service == "" {
		c.Service = d.Service
	}
	if c.Listen == "" {
		c.Listen = d.Listen
	}
	fill := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	fill(&c.Heartbeat, d.Heartbeat)
	fill(&c.Coalesce, d.Coalesce)
	fill(&c.PushDelay, d.PushDelay)
	fill(&c.RemoveAfter, d.RemoveAfter)
	fill(&c.HelloTimeout, d.HelloTimeout)
	fill(&c.IdleTimeout, d.IdleTimeout)
	fill(&c.WriteTimeout, d.WriteTimeout)
	fill(&c.DNSTTL, d.DNSTTL)
	if c.Capacity == 0 {
		c.Capacity = d.Capacity
	}
	if c.MaxLine == 0 {
		c.MaxLine = 64 << 10
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = 1 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	var errs []error
	if c.Capacity < 0 {
		errs = append(errs, fmt.Errorf("capacity %d is negative", c.Capacity))
	}
	if c.Heartbeat < time.Millisecond || c.Heartbeat > time.Minute {
		errs = append(errs, fmt.Errorf("heartbeat %v outside 1ms..1m", c.Heartbeat))
	}
	if strings.ContainsAny(c.Service, " \t*>") {
		errs = append(errs, fmt.Errorf("service name %q has spaces or wildcards", c.Service))
	}
	if c.Group != "" && (strings.Count(c.Group, "/") > 1 || strings.HasPrefix(c.Group, "/") || strings.HasSuffix(c.Group, "/")) {
		errs = append(errs, fmt.Errorf("group %q is not REGION or REGION/ZONE", c.Group))
	}
	for _, a := range []struct{ name, addr string }{{"listen", c.Listen}, {"http", c.HTTP}, {"dns", c.DNS}, {"cluster", c.Cluster}, {"advertise", c.Advertise}} {
		if a.addr == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s address %q: %v", a.name, a.addr, err))
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("%s address %q: bad port", a.name, a.addr))
		}
	}
	if c.Bus != "" && !strings.HasPrefix(c.Bus, "nats://") && !strings.HasPrefix(c.Bus, "tls://") {
		errs = append(errs, fmt.Errorf("bus %q is not a nats:// URL", c.Bus))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("node: invalid config: %w", err)
	}
	return nil
}

// advertised returns the address to publish for a bound listener.
func advertised(explicit string, bound net.Addr) string {
	if explicit != "" {
		return explicit
	}
	tcp, ok := bound.(*net.TCPAddr)
	if !ok {
		return bound.String()
	}
	if tcp.IP.IsUnspecified() {
		host, err := os.Hostname()
		if err != nil {
			host = "localhost"
		}
		return net.JoinHostPort(host, strconv.Itoa(tcp.Port))
	}
	return tcp.String()
}
