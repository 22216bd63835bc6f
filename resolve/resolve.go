package resolve

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// SRVLabel is the service and protocol labels of the SRV name Lookup asks
// for first: _switchboard._tcp.<service>.
const SRVLabel = "_switchboard._tcp"

// DefaultTimeout bounds one Lookup when Config.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// ednsSize is the UDP reply size Lookup offers with EDNS0 (the DNS flag day
// 2020 value); larger replies come truncated and are asked again over TCP.
const ednsSize = 1232

// ErrNoAddress means the service name has no SRV records and no A or AAAA
// records (or only a "." SRV target, "decidedly not available"). Lookup
// returns it wrapped; test with errors.Is. The caller should treat the
// service as absent rather than retry at once.
var ErrNoAddress = errors.New("resolve: no address")

// Config says how Lookup asks DNS. The zero value asks the system resolver
// and has no default port.
type Config struct {
	// Resolver is the HOST:PORT of a DNS server to ask directly (UDP, then
	// TCP when the reply is truncated, or when an SRV reply leaves its
	// targets' addresses out); a HOST without port means port 53.
	// Empty means the system resolver (NetResolver).
	Resolver string
	// DefaultPort is the port put after addresses found by the A/AAAA
	// fallback, e.g. 7070. Zero means that fallback is not used: a service
	// without SRV records is then ErrNoAddress.
	DefaultPort int
	// Timeout bounds a whole Lookup, every query included. Default 5s.
	Timeout time.Duration
	// NetResolver is the system resolver used when Resolver is empty.
	// Default net.DefaultResolver.
	NetResolver *net.Resolver
	// NoSRV skips the SRV query: the service name's A and AAAA records
	// are the answer, in random order, with DefaultPort (which must then
	// be set), as a plain round-robin DNS front gives them.
	NoSRV bool
	// Rand orders records of equal priority and shuffles addresses. Nil
	// means math/rand/v2's global source. A *rand.Rand is not safe for
	// concurrent use: do not share one between concurrent Lookups.
	Rand *rand.Rand
}

// validate fills zero fields and rejects nonsense.
func (c *Config) validate() error {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Timeout < 0 {
		return fmt.Errorf("resolve: config: negative Timeout %v", c.Timeout)
	}
	if c.DefaultPort < 0 || c.DefaultPort > 65535 {
		return fmt.Errorf("resolve: config: DefaultPort %d is outside 0..65535", c.DefaultPort)
	}
	if c.Resolver != "" {
		host, port, err := net.SplitHostPort(c.Resolver)
		if err != nil {
			// No port: a host name, or an IPv4 or IPv6 address alone.
			host, port = strings.Trim(c.Resolver, "[]"), "53"
			if _, perr := netip.ParseAddr(host); perr != nil && strings.Contains(host, ":") {
				return fmt.Errorf("resolve: config: Resolver %q: %w", c.Resolver, err)
			}
		}
		if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 || host == "" {
			return fmt.Errorf("resolve: config: Resolver %q is not HOST:PORT", c.Resolver)
		}
		c.Resolver = net.JoinHostPort(host, port)
	}
	if c.NetResolver == nil {
		c.NetResolver = net.DefaultResolver
	}
	return nil
}

// random is what Lookup needs from a random source.
type random interface {
	IntN(n int) int
	Shuffle(n int, swap func(i, j int))
}

// globalRand uses math/rand/v2's global source, safe for concurrent use.
type globalRand struct{}

func (globalRand) IntN(n int) int                     { return rand.IntN(n) }
func (globalRand) Shuffle(n int, swap func(i, j int)) { rand.Shuffle(n, swap) }

func (c *Config) random() random {
	if c.Rand != nil {
		return c.Rand
	}
	return globalRand{}
}

// srvRecord is one SRV record, whichever resolver found it.
type srvRecord struct {
	priority, weight, port uint16
	target                 string // FQDN, canonical
}

// Lookup resolves the service name (e.g. "chat.local") into the HOST:PORT
// addresses of its servers, best first.
//
// It asks for the SRV records of _switchboard._tcp.<service> first and
// orders them by priority, and within a priority by weighted random
// selection (RFC 2782). Each SRV target becomes the addresses that came with
// the reply or, when none came, the addresses the resolver gives for the
// target's A and AAAA records (asked for the first 8 such targets only).
// The Switchboard responder adds the addresses when they fit, and over UDP
// drops those that do not without setting TC (RFC 2181 allows it; from
// about 30 nodes none fit in 1232 bytes): with Config.Resolver, a UDP reply
// that leaves any target's addresses out is asked again once over TCP
// before any target is looked up. A target Config.Resolver knows
// no address for, or whose lookup fails, is left out; one the system
// resolver gives none for, or past the 8th, stays its host name, for the
// dialler to resolve. When there are no SRV records, or the SRV query timed
// out or got an error answer (SERVFAIL, NOTIMP, FORMERR, REFUSED: a server
// or middlebox that mishandles SRV) and Config.DefaultPort is set, Lookup
// asks for the A and AAAA records of the service name and returns them,
// with Config.DefaultPort, in random order but for the families, which
// take turns (RFC 8305): a client whose IPv6 path drops packets meets an
// IPv4 address second at the latest. A name with a port, a slash or a
// space is refused. A service name with a final dot is rooted: the system
// resolver is asked for it as it is, without its search list.
//
// Lookup blocks for up to Config.Timeout (or until ctx ends). It looks the
// SRV targets' addresses up concurrently, in at most 8 goroutines that end
// before it returns (the system resolver may start more). Errors are prefixed
// "resolve: " and say what was asked of which server; a name without records
// is ErrNoAddress.
func Lookup(ctx context.Context, cfg Config, service string) ([]string, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return lookupWith(ctx, cfg, service, cfg.NetResolver)
}

// lookupWith is Lookup, cfg validated, with sys for the system resolver
// (cfg.NetResolver, or a test's fake).
func lookupWith(ctx context.Context, cfg Config, service string, sys systemResolver) ([]string, error) {
	// A final dot roots the name: the system resolver must then ask for
	// it as it is, not first with the search list's suffixes (a pod's
	// resolv.conf has ndots:5, so chat.example.com would be tried as
	// chat.example.com.<namespace>.svc.cluster.local and so on first).
	// The name without it is the service's, for CheckService, messages
	// and comparisons.
	rooted := strings.HasSuffix(service, ".")
	service = strings.TrimSuffix(service, ".")
	if err := CheckService(service); err != nil {
		return nil, err
	}
	sysName := service
	if rooted {
		sysName = dns.Fqdn(service)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	l := lookup{cfg: cfg, service: service, sysName: sysName, sys: sys, rnd: cfg.random(), via: cfg.Resolver}
	if cfg.Resolver == "" {
		l.via = "the system resolver"
	}
	return l.run(ctx)
}

// systemResolver is what Lookup asks of the system resolver
// (*net.Resolver).
type systemResolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// CheckService reports whether name (without a final dot) can be a
// service name for Lookup. A port or a path (chat.local:7070) is no part
// of a name: asked for, it is a name that does not exist, and a client
// would try it again and again instead of saying what is wrong.
func CheckService(name string) error {
	if _, ok := dns.IsDomainName(name); !ok || name == "" || strings.ContainsAny(name, ":/ ") {
		return fmt.Errorf("resolve: %q is not a service name (a name has no port, slash or space)", name)
	}
	return nil
}

// lookup is one Lookup call.
type lookup struct {
	cfg     Config
	service string         // the service name, without a final dot
	sysName string         // the service name as given: rooted when it ends in a dot
	sys     systemResolver // the system resolver, used when cfg.Resolver is empty
	via     string
	rnd     random
}

func (l *lookup) run(ctx context.Context) ([]string, error) {
	var srvs []srvRecord
	var glue map[string][]netip.Addr
	var srvErr error
	if !l.cfg.NoSRV {
		// With A/AAAA to fall back on, the SRV query must not take their
		// turn: a server or middlebox that drops SRV would otherwise make
		// the service unresolvable on every pass.
		sctx, cancel := ctx, context.CancelFunc(func() {})
		if deadline, ok := ctx.Deadline(); ok && l.cfg.DefaultPort != 0 {
			left := time.Until(deadline)
			sctx, cancel = context.WithTimeout(ctx, left-min(left/4, udpRetry))
		}
		if l.cfg.Resolver != "" {
			srvs, glue, srvErr = l.srvDNS(sctx)
		} else {
			srvs, srvErr = l.srvSystem(sctx)
		}
		cancel()
	}
	if srvErr != nil {
		srvErr = fmt.Errorf("resolve: looking up SRV for %s via %s: %w", l.service, l.via, srvErr)
		if l.cfg.DefaultPort == 0 || ctx.Err() != nil || !srvMishandled(srvErr) {
			return nil, srvErr
		}
	}
	if len(srvs) == 1 && srvs[0].target == "." {
		return nil, fmt.Errorf("%w for %s via %s (its SRV record says the service is not available)", ErrNoAddress, l.service, l.via)
	}
	if len(srvs) > 0 {
		srvs = orderSRV(srvs, l.rnd)
		if glue == nil {
			glue = map[string][]netip.Addr{}
		}
		// A caching resolver may answer without the targets' addresses,
		// and the system resolver never gives them: ask the same resolver
		// for them (with Config.Resolver, never the system resolver), so
		// that the caller gets the addresses a directory lists nodes by.
		glueErr := l.fillGlue(ctx, srvs, glue)
		if out := l.fromSRV(srvs, glue); len(out) > 0 {
			return out, nil
		}
		if glueErr != nil {
			return nil, glueErr
		}
		return nil, fmt.Errorf("%w for %s via %s (its SRV targets have no A or AAAA records)", ErrNoAddress, l.service, l.via)
	}
	if l.cfg.DefaultPort == 0 {
		return nil, fmt.Errorf("%w for %s via %s (no SRV records, and no DefaultPort for A/AAAA)", ErrNoAddress, l.service, l.via)
	}
	var ips []netip.Addr
	var err error
	if l.cfg.Resolver != "" {
		ips, err = l.ipsDNS(ctx)
	} else {
		ips, err = l.ipsSystem(ctx, l.sysName)
	}
	switch {
	case err != nil && srvErr != nil:
		return nil, errors.Join(srvErr, err)
	case err != nil:
		return nil, err
	case len(ips) == 0 && srvErr != nil:
		// The SRV records are unknown, not absent: not ErrNoAddress.
		return nil, srvErr
	case len(ips) == 0:
		return nil, fmt.Errorf("%w for %s via %s (no SRV, A or AAAA records)", ErrNoAddress, l.service, l.via)
	}
	l.rnd.Shuffle(len(ips), func(i, j int) { ips[i], ips[j] = ips[j], ips[i] })
	ips = interleave(ips)[:min(len(ips), maxAddrs)]
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = netip.AddrPortFrom(ip, uint16(l.cfg.DefaultPort)).String()
	}
	return out, nil
}

// maxAddrs bounds the addresses a lookup returns, best first. An SRV set
// may name one target many times (a port each) and a target may have
// many addresses: one 64 KiB answer of 1,200 such records and 1,400
// addresses expanded to 1.7 million HOST:PORTs (160 MB) before. A client
// tries the first few; a service's answer lists a few nodes each.
const maxAddrs = 256

// fromSRV turns srvs, in their order, into HOST:PORT strings, each once,
// at most maxAddrs.
func (l *lookup) fromSRV(srvs []srvRecord, glue map[string][]netip.Addr) []string {
	var out []string
	seen := make(map[string]bool)
	add := func(hostPort string) {
		if !seen[hostPort] {
			seen[hostPort] = true
			out = append(out, hostPort)
		}
	}
	for _, s := range srvs {
		if len(out) >= maxAddrs {
			break
		}
		if s.target == "." {
			continue
		}
		addrs := glue[s.target]
		if len(addrs) == 0 && l.cfg.Resolver != "" {
			continue // the resolver knows no address for it
		}
		if len(addrs) == 0 {
			add(net.JoinHostPort(strings.TrimSuffix(s.target, "."), strconv.Itoa(int(s.port))))
			continue
		}
		for _, ip := range addrs[:min(len(addrs), maxAddrs-len(out))] {
			add(netip.AddrPortFrom(ip, s.port).String())
		}
	}
	return out
}

// orderSRV sorts records by priority and, within each priority, by the
// weighted random selection of RFC 2782. It returns a new slice.
func orderSRV(srvs []srvRecord, rnd random) []srvRecord {
	out := slices.Clone(srvs)
	slices.SortStableFunc(out, func(a, b srvRecord) int { return cmp.Compare(a.priority, b.priority) })
	for start := 0; start < len(out); {
		end := start + 1
		for end < len(out) && out[end].priority == out[start].priority {
			end++
		}
		weightedOrder(out[start:end], rnd)
		start = end
	}
	return out
}

// weightedOrder orders one priority's records in place as RFC 2782 says:
// arrange the records not yet ordered in any order with the zero weights
// first, pick a uniform number from 0 to the sum of their weights
// (inclusive), take the first record whose running sum reaches it, repeat.
func weightedOrder(g []srvRecord, rnd random) {
	rnd.Shuffle(len(g), func(i, j int) { g[i], g[j] = g[j], g[i] })
	slices.SortStableFunc(g, func(a, b srvRecord) int {
		return cmp.Compare(min(a.weight, 1), min(b.weight, 1))
	})
	for i := range g {
		sum := 0
		for _, r := range g[i:] {
			sum += int(r.weight)
		}
		pick := rnd.IntN(sum + 1)
		run := 0
		for j := i; j < len(g); j++ {
			run += int(g[j].weight)
			if run >= pick {
				// Move g[j] to position i, keeping the others in order
				// (so the zero weights stay first).
				chosen := g[j]
				copy(g[i+1:j+1], g[i:j])
				g[i] = chosen
				break
			}
		}
	}
}

// srvDNS asks Config.Resolver for the SRV records and returns them with the
// addresses in the additional section, by owner name. When a UDP reply
// leaves any target's addresses out without being truncated (RFC 2181,
// section 9, allows a server to drop additional records that do not fit:
// the Switchboard responder does, from about 30 nodes on), the question is
// asked once more over TCP, within half of the time left and at most
// tcpRetryMax, and that reply's records and addresses are used; when TCP
// fails, or its reply has no SRV records, the UDP reply's are.
func (l *lookup) srvDNS(ctx context.Context) ([]srvRecord, map[string][]netip.Addr, error) {
	name := dns.CanonicalName(SRVLabel + "." + l.service)
	r, askedTCP, err := exchange(ctx, l.cfg.Resolver, name, dns.TypeSRV)
	if err != nil {
		return nil, nil, err
	}
	srvs, glue := srvAnswer(r, name)
	if askedTCP || !glueMissing(srvs, glue) || ctx.Err() != nil {
		return srvs, glue, nil
	}
	// One TCP query gets every address the server has where looking the
	// targets up one by one would take two queries each, for the first
	// maxTargetLookups targets only. Its failure is no error: the targets
	// are then looked up one by one.
	tctx, cancel := tcpRetryContext(ctx)
	full, err := exchangeTCP(tctx, l.cfg.Resolver, name, dns.TypeSRV)
	cancel()
	if err != nil {
		return srvs, glue, nil
	}
	fullSRVs, fullGlue := srvAnswer(full, name)
	if len(fullSRVs) == 0 {
		return srvs, glue, nil
	}
	// The TCP reply is the newer; an address only the UDP one gave (a
	// server whose answers differ) still saves a lookup.
	for owner, ips := range glue {
		if _, ok := fullGlue[owner]; !ok {
			fullGlue[owner] = ips
		}
	}
	return fullSRVs, fullGlue, nil
}

// glueMissing reports whether any target of srvs (but ".") has no address
// in glue.
func glueMissing(srvs []srvRecord, glue map[string][]netip.Addr) bool {
	for _, s := range srvs {
		if s.target != "." && len(glue[s.target]) == 0 {
			return true
		}
	}
	return false
}

// srvAnswer returns the SRV records of r that answer name (the SRV name,
// canonical), and the addresses in its additional section by owner name.
func srvAnswer(r *dns.Msg, name string) ([]srvRecord, map[string][]netip.Addr) {
	// A recursive resolver may answer through CNAMEs (the service's SRV
	// name an alias of another): follow them within the answer, a few
	// links at most, as the system resolver does.
	chain := cnameChain(r.Answer, name)
	owner := chain[len(chain)-1]
	var srvs []srvRecord
	for _, rr := range r.Answer {
		if s, ok := rr.(*dns.SRV); ok && dns.CanonicalName(s.Hdr.Name) == owner && (s.Port != 0 || s.Target == ".") {
			srvs = append(srvs, srvRecord{priority: s.Priority, weight: s.Weight, port: s.Port, target: dns.CanonicalName(s.Target)})
		}
	}
	glue := map[string][]netip.Addr{}
	for _, rr := range r.Extra {
		if ip, ok := addrOf(rr); ok {
			owner := dns.CanonicalName(rr.Header().Name)
			if !slices.Contains(glue[owner], ip) {
				glue[owner] = append(glue[owner], ip)
			}
		}
	}
	return srvs, glue
}

// maxCNAMELinks bounds the CNAME chain followed in an answer.
const maxCNAMELinks = 8

// cnameChain returns name (canonical) and the names the CNAME records of
// answer lead it to, in order, maxCNAMELinks links at most: the owners
// whose records answer a question about name.
func cnameChain(answer []dns.RR, name string) []string {
	chain := []string{name}
	for range maxCNAMELinks {
		next := ""
		for _, rr := range answer {
			if c, ok := rr.(*dns.CNAME); ok && dns.CanonicalName(c.Hdr.Name) == chain[len(chain)-1] {
				next = dns.CanonicalName(c.Target)
				break
			}
		}
		if next == "" || slices.Contains(chain, next) {
			break
		}
		chain = append(chain, next)
	}
	return chain
}

// interleave returns ips with the families taking turns, starting with
// the first's and keeping each family's order (RFC 8305, section 4): a
// client whose IPv6 (or IPv4) path silently drops packets waits out one
// address's timeout before it reaches one of the other family, however
// many of the first family the name has (with three AAAA records and one
// A shuffled together, up to three).
func interleave(ips []netip.Addr) []netip.Addr {
	if len(ips) < 3 {
		return ips
	}
	var first, other []netip.Addr
	for _, ip := range ips {
		if ip.Is4() == ips[0].Is4() {
			first = append(first, ip)
		} else {
			other = append(other, ip)
		}
	}
	out := make([]netip.Addr, 0, len(ips))
	for i := 0; i < len(first) || i < len(other); i++ {
		if i < len(first) {
			out = append(out, first[i])
		}
		if i < len(other) {
			out = append(out, other[i])
		}
	}
	return out
}

// srvMishandled reports whether err, from the SRV query, is what a server
// or middlebox that mishandles SRV gives while it may still answer A and
// AAAA: a timeout (the query dropped), or any error answer (SERVFAIL, and
// the NOTIMP, FORMERR or REFUSED that home routers' DNS proxies give for
// a type they do not know; a name without records is no error). The
// system resolver says less: a temporary failure of its (SERVFAIL) and
// its "server misbehaving" (any other error answer) are taken for these.
// Falling back costs one more quick failure at worst, where a server
// that fails every query fails the A/AAAA ones too; not falling back left
// a client behind such a proxy unable ever to reach the service. A server
// that cannot be reached at all is not asked again.
func srvMishandled(err error) bool {
	var rc rcodeError
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.As(err, &rc):
		return true
	case errors.As(err, &dnsErr):
		return dnsErr.IsTimeout || dnsErr.IsTemporary || dnsErr.Err == "server misbehaving"
	}
	return false
}

// maxTargetLookups bounds how many SRV targets without addresses in the
// reply Lookup looks up, best first: a hostile or broken server listing
// thousands of targets must not make one Lookup send thousands of queries.
const maxTargetLookups = 8

// fillGlue asks the resolver (Config.Resolver, else the system resolver)
// for the A and AAAA records of the first maxTargetLookups SRV targets, in
// the order of srvs, that came without addresses in the reply's additional
// section, and adds them to glue. The targets are looked up concurrently,
// one goroutine each, so that one whose DNS is silent does not use up the
// Timeout before the others are asked; fillGlue waits for all of them. A
// target without any address, or whose lookup failed, is left out of glue
// (fromSRV then leaves it out, or keeps its name); fillGlue returns the
// first failure in the order of srvs, for the caller to report when no
// target has an address.
func (l *lookup) fillGlue(ctx context.Context, srvs []srvRecord, glue map[string][]netip.Addr) error {
	if ctx.Err() != nil {
		return nil
	}
	var targets []string
	for _, s := range srvs {
		if len(targets) == maxTargetLookups {
			break
		}
		if s.target == "." || slices.Contains(targets, s.target) {
			continue
		}
		if _, done := glue[s.target]; done {
			continue // its addresses came with the reply
		}
		targets = append(targets, s.target)
	}
	type result struct {
		ips []netip.Addr
		err error
	}
	results := make([]result, len(targets)) // one slot per goroutine
	var wg sync.WaitGroup
	for i, target := range targets {
		wg.Go(func() {
			r := &results[i]
			if l.cfg.Resolver != "" {
				r.ips, r.err = l.ipsOf(ctx, target)
			} else {
				r.ips, r.err = l.ipsSystem(ctx, target)
			}
		})
	}
	wg.Wait()
	var firstErr error
	for i, target := range targets {
		if results[i].err != nil && firstErr == nil {
			firstErr = results[i].err
		}
		glue[target] = results[i].ips // an empty slice marks the target as asked
	}
	return firstErr
}

// ipsDNS asks Config.Resolver for the A and then the AAAA records of the
// service name.
func (l *lookup) ipsDNS(ctx context.Context) ([]netip.Addr, error) {
	return l.ipsOf(ctx, l.service)
}

// aaaaGrace bounds the AAAA query once the A query has given addresses:
// a server or middlebox that drops AAAA queries then costs this, not the
// rest of the Timeout.
const aaaaGrace = udpRetry

// ipsOf asks Config.Resolver for the A and then the AAAA records of host.
// The addresses of one query are kept when the other fails (a server or
// middlebox that drops or refuses AAAA queries, say); it fails only when
// a query failed and none gave an address. With more than three seconds
// left the A query leaves the last one to the AAAA query, so that a
// dropped A query does not take AAAA's turn (with less, A keeps the time
// to be sent again once, as a lost datagram needs); the AAAA query, after
// A gave addresses, waits at most aaaaGrace.
func (l *lookup) ipsOf(ctx context.Context, host string) ([]netip.Addr, error) {
	name := dns.CanonicalName(host)
	var ips []netip.Addr
	var errs []error
	// Only the name asked and the aliases it leads to answer for it: a
	// record of another owner in the answer (a forgery, a broken server)
	// must not send the client elsewhere.
	for i, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		qctx, cancel := ctx, context.CancelFunc(func() {})
		if deadline, ok := ctx.Deadline(); ok {
			switch left := time.Until(deadline); {
			case i == 0 && left > 3*udpRetry:
				qctx, cancel = context.WithTimeout(ctx, left-udpRetry)
			case len(ips) > 0:
				qctx, cancel = context.WithTimeout(ctx, aaaaGrace) // or ctx's deadline, if sooner
			}
		}
		r, _, err := exchange(qctx, l.cfg.Resolver, name, qtype)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("resolve: looking up %s for %s via %s: %w", dns.TypeToString[qtype], strings.TrimSuffix(host, "."), l.via, err))
			continue
		}
		owners := cnameChain(r.Answer, name)
		for _, rr := range r.Answer {
			if ip, ok := addrOf(rr); ok && rr.Header().Rrtype == qtype && slices.Contains(owners, dns.CanonicalName(rr.Header().Name)) && !slices.Contains(ips, ip) {
				ips = append(ips, ip)
			}
		}
	}
	if len(ips) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return ips, nil
}

// udpRetry is how long a query waits for its UDP reply before it is sent
// again, on the same socket so that a late reply to the first copy still
// counts; the wait doubles with each copy, all within Config.Timeout. One
// lost datagram then costs a second, not the whole Timeout.
const udpRetry = time.Second

// exchangeOnce sends q to server over network ("udp" or "tcp") and returns
// the first reply that answers it: a response with q's ID, opcode and
// question. Anything else that arrives is skipped, whether a stale or
// forged reply or bytes that do not parse, so that it costs no more than
// the wait; the last one skipped is reported if no answer comes. Over UDP
// the query is sent again after udpRetry, then after twice that, and so on.
// It returns as soon as ctx ends, which must have a deadline.
func exchangeOnce(ctx context.Context, network, server string, q *dns.Msg) (*dns.Msg, error) {
	packed, err := q.Pack()
	if err != nil {
		return nil, fmt.Errorf("packing the query: %w", err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// The dns package bounds reads by deadlines only; closing the socket
	// ends a read at once when ctx is cancelled.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	udp := network == "udp"
	out := packed
	if !udp {
		out = make([]byte, 2+len(packed))
		binary.BigEndian.PutUint16(out, uint16(len(packed)))
		copy(out[2:], packed)
	}
	deadline, _ := ctx.Deadline()
	buf := make([]byte, dns.MaxMsgSize)
	var skipped error
	for wait := udpRetry; ; wait *= 2 {
		if _, err := conn.Write(out); err != nil {
			return nil, err
		}
		until := deadline
		if udp && time.Now().Add(wait).Before(deadline) {
			until = time.Now().Add(wait)
		}
		conn.SetReadDeadline(until)
		for {
			raw, err := readReply(conn, udp, buf)
			if err != nil {
				var netErr net.Error
				if udp && errors.As(err, &netErr) && netErr.Timeout() && until.Before(deadline) && ctx.Err() == nil {
					break // send again
				}
				if skipped != nil {
					err = fmt.Errorf("%w (before that, %w)", err, skipped)
				}
				return nil, err
			}
			r := new(dns.Msg)
			if err := r.Unpack(raw); err != nil {
				skipped = fmt.Errorf("skipped a malformed reply: %w", err)
				continue
			}
			if why := mismatch(q, r); why != "" {
				skipped = fmt.Errorf("skipped a reply %s", why)
				continue
			}
			return r, nil
		}
	}
}

// readReply reads one message: a datagram over UDP, a length-prefixed
// message over TCP.
func readReply(conn net.Conn, udp bool, buf []byte) ([]byte, error) {
	if udp {
		n, err := conn.Read(buf)
		return buf[:n], err
	}
	if _, err := io.ReadFull(conn, buf[:2]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(buf[:2]))
	if _, err := io.ReadFull(conn, buf[:n]); err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// mismatch says why r is not the reply to q, or "" when it is. A reply
// that says the server could not take the query (FORMERR, SERVFAIL,
// NOTIMP, REFUSED) may leave the question out, as servers do with FORMERR;
// any other, NXDOMAIN included, must carry it: a questionless NXDOMAIN
// would say a name does not exist without saying which.
func mismatch(q, r *dns.Msg) string {
	switch {
	case !r.Response:
		return "that is a query"
	case r.Id != q.Id:
		return fmt.Sprintf("with ID %d, not %d", r.Id, q.Id)
	case r.Opcode != q.Opcode:
		return fmt.Sprintf("with opcode %s", dns.OpcodeToString[r.Opcode])
	case len(r.Question) == 0 && questionless(r.Rcode):
		return ""
	case len(r.Question) == 0:
		return fmt.Sprintf("with %s and no question", dns.RcodeToString[r.Rcode])
	case len(r.Question) != 1:
		return fmt.Sprintf("with %d questions", len(r.Question))
	}
	a, b := q.Question[0], r.Question[0]
	if !strings.EqualFold(a.Name, b.Name) || a.Qtype != b.Qtype || a.Qclass != b.Qclass {
		return fmt.Sprintf("to another question (%s %s)", b.Name, dns.TypeToString[b.Qtype])
	}
	return ""
}

// questionless reports whether a reply with rcode may leave the question
// out: the rcodes of a server that could not take the query at all.
func questionless(rcode int) bool {
	switch rcode {
	case dns.RcodeFormatError, dns.RcodeServerFailure, dns.RcodeNotImplemented, dns.RcodeRefused:
		return true
	}
	return false
}

// tcpRetryMax bounds the TCP query that follows a truncated UDP reply
// with records: it gets half of the time left, at most this, so that a
// firewall that drops DNS over TCP leaves the rest of the Timeout to use
// the records that came over UDP, and to the queries after it.
const tcpRetryMax = 2 * time.Second

// tcpRetryContext returns the context of a TCP query that repeats a UDP
// one whose reply holds records: half of ctx's time left, at most
// tcpRetryMax.
func tcpRetryContext(ctx context.Context) (context.Context, context.CancelFunc) {
	wait := tcpRetryMax
	if deadline, ok := ctx.Deadline(); ok {
		wait = min(time.Until(deadline)/2, wait)
	}
	return context.WithTimeout(ctx, wait)
}

// newQuery returns the query for name and qtype, with EDNS0.
func newQuery(name string, qtype uint16) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.SetEdns0(ednsSize, false)
	return q
}

// exchange asks server one question over UDP with EDNS0, and again over TCP
// when the reply is truncated. When the truncated reply has records, the
// TCP query gets half of the time left, at most tcpRetryMax, and when it
// fails while ctx lasts, the records of the truncated reply are used;
// without records (a server over its rate limit) TCP is all there is, and
// it gets the whole of ctx. NOERROR and NXDOMAIN replies are returned
// (NXDOMAIN as an empty answer); other rcodes are errors. askedTCP says
// whether the question went over TCP (whether or not that reply is the
// one returned), so that the caller does not ask it there again.
func exchange(ctx context.Context, server, name string, qtype uint16) (r *dns.Msg, askedTCP bool, err error) {
	q := newQuery(name, qtype)
	r, err = exchangeOnce(ctx, "udp", server, q)
	if err == nil && r.Truncated {
		askedTCP = true
		tctx, cancel := ctx, context.CancelFunc(func() {})
		if len(r.Answer) > 0 {
			tctx, cancel = tcpRetryContext(ctx)
		}
		full, tcpErr := exchangeOnce(tctx, "tcp", server, q)
		if tcpErr != nil {
			tcpErr = fmt.Errorf("asking again over TCP after a truncated reply: %w", deadlineError(tctx, tcpErr))
		}
		cancel()
		switch {
		case tcpErr == nil:
			r = full
		case len(r.Answer) > 0 && ctx.Err() == nil:
			// TCP refused, cut or silent (a firewall, say): the records
			// that fit over UDP are better than none.
		default:
			err = tcpErr
		}
	}
	if err != nil {
		return nil, askedTCP, deadlineError(ctx, err)
	}
	r, err = checkRcode(r)
	return r, askedTCP, err
}

// exchangeTCP asks server one question over TCP alone, within ctx; the
// reply is taken as exchange takes it.
func exchangeTCP(ctx context.Context, server, name string, qtype uint16) (*dns.Msg, error) {
	r, err := exchangeOnce(ctx, "tcp", server, newQuery(name, qtype))
	if err != nil {
		return nil, fmt.Errorf("asking over TCP: %w", deadlineError(ctx, err))
	}
	return checkRcode(r)
}

// checkRcode returns r when its rcode is NOERROR, or NXDOMAIN (its records
// dropped), and an rcodeError otherwise.
func checkRcode(r *dns.Msg) (*dns.Msg, error) {
	switch r.Rcode {
	case dns.RcodeSuccess:
		return r, nil
	case dns.RcodeNameError:
		r.Answer, r.Extra = nil, nil
		return r, nil
	}
	return nil, rcodeError(r.Rcode)
}

// deadlineError returns err, from a query bounded by ctx, wrapping ctx's
// error when ctx has ended. The socket's deadline is ctx's: a read that
// timed out at it says so, whichever of the two fired first.
func deadlineError(ctx context.Context, err error) error {
	var netErr net.Error
	ctxErr := ctx.Err()
	if dl, ok := ctx.Deadline(); ctxErr == nil && ok && errors.As(err, &netErr) && netErr.Timeout() && !time.Now().Before(dl) {
		ctxErr = context.DeadlineExceeded
	}
	if ctxErr != nil && !errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w (%w)", ctxErr, err)
	}
	return err
}

// rcodeError is a reply's rcode other than NOERROR and NXDOMAIN.
type rcodeError int

func (e rcodeError) Error() string {
	return "server answered " + dns.RcodeToString[int(e)]
}

// addrOf returns the address of an A or AAAA record.
func addrOf(rr dns.RR) (netip.Addr, bool) {
	var ip net.IP
	switch rr := rr.(type) {
	case *dns.A:
		ip = rr.A
	case *dns.AAAA:
		ip = rr.AAAA
	default:
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}, false
	}
	if rr.Header().Rrtype == dns.TypeA {
		a = a.Unmap()
	}
	return a, usable(a)
}

// usable reports whether a can be a server's address: not unspecified
// (0.0.0.0 dials this very host) and not multicast or broadcast.
func usable(a netip.Addr) bool {
	u := a.Unmap()
	return !u.IsUnspecified() && !u.IsMulticast() && u != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// srvSystem asks the system resolver for the SRV records. Not found is no
// records, not an error.
func (l *lookup) srvSystem(ctx context.Context) ([]srvRecord, error) {
	// l.sysName keeps a final dot the caller gave, so that a rooted name
	// is not tried with the search list's suffixes first.
	_, recs, err := l.sys.LookupSRV(ctx, "switchboard", "tcp", l.sysName)
	// LookupSRV returns the valid records along with an error about any
	// invalid ones; use what is valid.
	if len(recs) == 0 && err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	srvs := make([]srvRecord, 0, len(recs))
	for _, r := range recs {
		if r.Port == 0 && r.Target != "." {
			continue // no server listens on port 0
		}
		srvs = append(srvs, srvRecord{priority: r.Priority, weight: r.Weight, port: r.Port, target: dns.CanonicalName(r.Target)})
	}
	return srvs, nil
}

// ipsSystem asks the system resolver for host's addresses. A host with a
// final dot (a rooted service name, an SRV target) is asked as it is,
// without the search list.
func (l *lookup) ipsSystem(ctx context.Context, host string) ([]netip.Addr, error) {
	addrs, err := l.sys.LookupNetIP(ctx, "ip", host)
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("resolve: looking up A/AAAA for %s via %s: %w", strings.TrimSuffix(host, "."), l.via, err)
	}
	var ips []netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		if usable(a) && !slices.Contains(ips, a) {
			ips = append(ips, a)
		}
	}
	return ips, nil
}

func isNotFound(err error) bool {
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr) && dnsErr.IsNotFound
}
