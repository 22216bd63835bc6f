package dnsserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard/switchboard/directory"
)

// Defaults used by DefaultConfig and by validation for zero fields.
const (
	// DefaultAddr is where the responder listens when Config.Addr is empty:
	// the DNS port on every interface (binding it needs privileges).
	DefaultAddr = ":53"
	// DefaultTTL is the TTL of every record served when Config.TTL is zero.
	DefaultTTL = 5 * time.Second
	// DefaultMaxUDPSize is the largest UDP reply sent when Config.MaxUDPSize
	// is zero, whatever larger size a client offers in EDNS0: the DNS flag
	// day 2020 size, which fits an Ethernet frame without IP fragments
	// (fragments get lost and can be forged) and bounds what a spoofed
	// query can be amplified into. Larger answers go over TCP.
	DefaultMaxUDPSize = 1232
	// DefaultMaxTCPConns is how many TCP connections the responder keeps
	// open at once when Config.MaxTCPConns is zero.
	DefaultMaxTCPConns = 256
	// DefaultRateLimit is how many full UDP replies a second one client
	// network gets when Config.RateLimit is zero.
	DefaultRateLimit = 100
)

// SRVLabel is the service and protocol labels put in front of the zone to
// form the SRV owner name: _switchboard._tcp.<zone>.
const SRVLabel = "_switchboard._tcp"

// NodeLabel is the label under which per-node host names live:
// <node>.node.<zone>. SRV targets point there.
const NodeLabel = "node"

// Config says what a Server answers for and where it listens. The zero value
// of every field but Zone and Nodes means its default.
type Config struct {
	// Zone is the service name the server is authoritative for, e.g.
	// "chat.local" (a trailing dot is optional; case does not matter).
	// Required.
	Zone string
	// Addr is the HOST:PORT to listen on, for UDP and TCP alike. Port 0 picks
	// a free port (the same for both); Server.Addr reports it. Default ":53".
	Addr string
	// TTL is the time to live of every record served, in whole seconds
	// (anything finer is cut off), at least 1s. It is also the negative
	// caching time in the SOA. Default 5s.
	TTL time.Duration
	// MaxUDPSize caps, in bytes, the UDP reply size a client may ask for with
	// EDNS0; a client without EDNS0 gets at most 512 bytes. Records that
	// do not fit are left out; when the answer or authority section loses
	// any, the reply says so (TC bit) and the client retries over TCP
	// (glue left out alone sets no TC: RFC 2181, section 9).
	// Between 512 and 65535. Default 1232 (DefaultMaxUDPSize).
	MaxUDPSize int
	// MaxTCPConns caps the TCP connections open at once; one client host
	// (an IPv4 address, an IPv6 /64; loopback is exempt) may hold a
	// sixteenth of them, at least 1, and one site (an IPv4 /24, an IPv6
	// /48) four times that over all its hosts. A connection accepted
	// beyond any of these is closed at once, so clients that open
	// connections and keep them cannot take the file descriptors the
	// rest of the node needs, nor every slot. One accepted while more
	// than half of them are open may stay idle 1 s between queries
	// instead of 8 s. Default 256 (DefaultMaxTCPConns).
	MaxTCPConns int
	// RateLimit is how many full UDP replies a second one client network
	// (an IPv4 /24, an IPv6 /56) gets, with a burst of as many. Over it, a
	// query gets an empty reply with the TC bit: a real client asks again
	// over TCP, which is not limited, while the victim of spoofed queries
	// gets no more bytes than the attacker sent. Loopback clients are not
	// limited. Negative: no limit. Default 100 (DefaultRateLimit).
	RateLimit int
	// Nodes returns the directory as it is now. It is called on every query,
	// from the server's goroutines, concurrently, so it must be safe for
	// concurrent use and must not block: load an immutable snapshot from an
	// atomic.Pointer. The slice returned must not be modified afterwards; the
	// server caches the answers built from it for as long as the same slice
	// (or one with the same content) comes back. Required.
	Nodes func() []directory.Node
	// Serving reports whether the node may answer for the zone now. A
	// node still starting (its directory empty until it has heard its
	// peers) or degraded (cut off from most of its cluster) holds a
	// directory that may be empty or out of date, and its authoritative
	// "no such records" would be cached by resolvers (RFC 2308) while
	// the other name servers could have answered. While Serving returns
	// false, every query for a name in the zone, whatever its type, is
	// answered SERVFAIL with no records (and the extended error "Not
	// Ready", RFC 8914, when the query has EDNS0): no answer that
	// resolvers cache as the zone's, and the cue to ask another of the
	// zone's name servers. Names outside the zone are REFUSED as ever.
	// It is called on every query, concurrently, so it must be safe for
	// concurrent use and must not block: load an atomic. Nil means
	// always.
	Serving func() bool
	// NS is the host name of the name server put in the SOA and NS records.
	// Default "ns.<Zone>". When it lies inside the zone the server answers
	// A/AAAA for it with NSAddrs.
	NS string
	// NSAddrs are the addresses served for NS when NS lies inside the zone.
	// Default: the IP the server is bound to if Addr names one; otherwise
	// the addresses of the nodes that are up, full or draining, on the
	// assumption that every node runs a responder (serve --dns on each:
	// a full or draining one still answers; a starting or degraded one
	// answers SERVFAIL, see Serving). Where only some nodes run one, the
	// others are named as name servers that do not answer.
	NSAddrs []netip.Addr
	// Logger receives start, stop and serve errors. Default: discard.
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every default filled in for the
// service name zone, answering from nodes.
func DefaultConfig(zone string, nodes func() []directory.Node) Config {
	return Config{
		Zone:        zone,
		Addr:        DefaultAddr,
		TTL:         DefaultTTL,
		MaxUDPSize:  DefaultMaxUDPSize,
		MaxTCPConns: DefaultMaxTCPConns,
		RateLimit:   DefaultRateLimit,
		Nodes:       nodes,
		NS:          "ns." + dns.Fqdn(zone),
		Logger:      slog.New(slog.DiscardHandler),
	}
}

// Validate reports what New would refuse in c, without starting
// anything: for a program that checks its settings before it runs.
func (c Config) Validate() error { return c.validate() }

// validate fills the zero fields of c with defaults, normalises names and
// reports the first thing that makes no sense.
func (c *Config) validate() error {
	if c.Zone == "" || c.Zone == "." {
		return errors.New("dnsserver: config: Zone is required")
	}
	if _, ok := dns.IsDomainName(c.Zone); !ok {
		return fmt.Errorf("dnsserver: config: Zone %q is not a domain name", c.Zone)
	}
	c.Zone = dns.CanonicalName(c.Zone)
	if c.Nodes == nil {
		return errors.New("dnsserver: config: Nodes is required")
	}
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	_, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("dnsserver: config: Addr %q: %w", c.Addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("dnsserver: config: Addr %q: port %q is not a number from 0 to 65535", c.Addr, port)
	}
	switch {
	case c.TTL == 0:
		c.TTL = DefaultTTL
	case c.TTL < time.Second:
		return fmt.Errorf("dnsserver: config: TTL %v is below 1s", c.TTL)
	case c.TTL/time.Second > 1<<31-1:
		return fmt.Errorf("dnsserver: config: TTL %v is too large", c.TTL)
	}
	c.TTL = c.TTL.Truncate(time.Second)
	switch {
	case c.MaxUDPSize == 0:
		c.MaxUDPSize = DefaultMaxUDPSize
	case c.MaxUDPSize < dns.MinMsgSize || c.MaxUDPSize > dns.MaxMsgSize:
		return fmt.Errorf("dnsserver: config: MaxUDPSize %d is outside %d..%d", c.MaxUDPSize, dns.MinMsgSize, dns.MaxMsgSize)
	}
	switch {
	case c.MaxTCPConns == 0:
		c.MaxTCPConns = DefaultMaxTCPConns
	case c.MaxTCPConns < 0:
		return fmt.Errorf("dnsserver: config: MaxTCPConns %d is negative", c.MaxTCPConns)
	}
	if c.RateLimit == 0 {
		c.RateLimit = DefaultRateLimit
	}
	if c.NS == "" {
		c.NS = "ns." + c.Zone
	}
	if _, ok := dns.IsDomainName(c.NS); !ok || c.NS == "." {
		return fmt.Errorf("dnsserver: config: NS %q is not a host name", c.NS)
	}
	c.NS = dns.CanonicalName(c.NS)
	// An IPv4-mapped address is served as the IPv4 address it is (an A
	// record), not as AAAA: an IPv4 resolver would find no address for
	// the name server. A copy: the caller's slice is left as it was.
	addrs := make([]netip.Addr, len(c.NSAddrs))
	for i, a := range c.NSAddrs {
		if !a.IsValid() || a.Unmap().IsUnspecified() {
			return fmt.Errorf("dnsserver: config: NSAddrs holds the unusable address %v", a)
		}
		addrs[i] = a.Unmap()
	}
	c.NSAddrs = addrs
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}
