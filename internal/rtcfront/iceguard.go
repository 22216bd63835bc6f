package rtcfront

import (
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"
)

// maxRemoteAddrs is how many addresses a peer's checks may come from
// before the peer is dropped. A peer checks from each of its candidates:
// an address per interface and family, its NAT's mappings, a relay; a
// few in all. Each new address a valid check comes from is a candidate
// and a pair in the peer's ICE agent, an entry in the shared socket's
// table, and an answer the node sends, for as long as the peer lasts:
// without a bound a peer that checked from every port of its host, or
// from spoofed addresses, grew them at will and had the node answer each.
const maxRemoteAddrs = 32

// remoteGuard counts the addresses one peer's checks come from, as the
// peer's ICE agent reads them from the shared socket (guardedMux), before
// the agent sees them: every check, whatever path the agent takes with
// it. An address counts once a check from it proves it knows the peer's
// local ICE password (MESSAGE-INTEGRITY, validCheck); until then the
// packets from it are dropped, uncounted: the ufrag that routes a packet
// to the peer travels in the clear, in every check of the peer's, and
// counting any packet that named it let anyone who saw one end the
// peer with 33 packets. The agent would drop such packets too (a check
// that fails MESSAGE-INTEGRITY, or other packets from no address a
// valid check came from). Its check method runs on the agent's read
// loops, one a candidate.
//
// A valid check proves only that its sender knows the password, or saw
// a check of the peer's: a STUN message has no notion of where it was
// sent from, and a check captured on the path verifies byte for byte
// from any other address. And the agent, a lite one, took any check
// with USE-CANDIDATE as the peer's nomination of its pair: one such
// check, replayed or forged, from another address once the peer was
// connected moved the peer's DTLS and SCTP there, the peer receiving
// nothing and its association dying, and aimed the node's UDP at
// whatever address the check came from. So once the peer's ICE is
// connected (pin: its selected pair exists), STUN from any address
// other than the selected pair's remote one is dropped, uncounted: it
// can neither nominate a pair nor count towards maxRemoteAddrs. (Other
// packets from an address counted still pass, as before: they move no
// pair, and DTLS authenticates its records.) The front does no ICE
// restart (no renegotiation): a peer whose network
// changes posts a new offer, and its new connection a new guard. And a
// check whose transaction ID came already from another address
// (recentChecks) is a replay and dropped, uncounted, before the peer is
// connected too: a check sent again from 33 ports ended the peer.
type remoteGuard struct {
	peer atomic.Pointer[peer] // set once the peer exists (setPeer)
	pwd  []byte               // the peer's local ICE password
	// pinned is the remote address of the peer's selected pair, once
	// its ICE is connected (pin).
	pinned atomic.Pointer[netip.AddrPort]

	// verified hears of each address counted, and of them all once the
	// peer's connection is closed (forget), so that the front's socket
	// keeps their places (sourceLimits).
	verified *verifiedSources

	mu     sync.Mutex
	seen   map[netip.AddrPort]struct{}
	over   bool // a valid check came from an address beyond maxRemoteAddrs
	gone   bool // forgotten: verified has heard the last of it
	checks recentChecks
}

// maxRecentChecks is how many of a peer's last STUN transaction IDs its
// guard remembers: those of the checks of its first seconds, while it
// connects, a few dozen, and then its consent checks, one every few
// seconds, from its pinned address.
const maxRecentChecks = 128

// recentChecks are the transaction IDs of the last STUN messages a
// guard let through, each with the address it came from, in a ring.
// Retransmissions of a check keep its ID and come from where it did; a
// browser gives each new check a new random ID (RFC 8489, 6: 96 bits).
type recentChecks struct {
	ids  [maxRecentChecks]recentCheck
	n    int // entries used, up to maxRecentChecks
	next int // the entry the next ID takes
}

type recentCheck struct {
	id   [12]byte
	from netip.AddrPort
}

// replayed reports whether id came already from an address other than
// from.
func (r *recentChecks) replayed(id [12]byte, from netip.AddrPort) bool {
	for _, c := range r.ids[:r.n] {
		if c.id == id && c.from != from {
			return true
		}
	}
	return false
}

// add remembers id as having come from from, forgetting the oldest ID
// once maxRecentChecks are held.
func (r *recentChecks) add(id [12]byte, from netip.AddrPort) {
	for _, c := range r.ids[:r.n] {
		if c.id == id {
			return // a retransmission, from the same address
		}
	}
	r.ids[r.next] = recentCheck{id: id, from: from}
	r.next = (r.next + 1) % maxRecentChecks
	r.n = min(r.n+1, maxRecentChecks)
}

// stunID returns the transaction ID of pkt if the agent would read it as
// a STUN message (stun.IsMessage, as the agent tells them from DTLS).
func stunID(pkt []byte) ([12]byte, bool) {
	if !stun.IsMessage(pkt) {
		return [12]byte{}, false
	}
	return [12]byte(pkt[8:20]), true
}

// check reports whether the agent may read pkt, which came from the
// address from. Once the peer is connected (pinned), no STUN message
// from an address other than its selected pair's is read, and a STUN
// message whose transaction ID came already from another address never
// is. Otherwise: yes when from is counted already, or when pkt is a
// valid check (validCheck) and from a new address within
// maxRemoteAddrs, which it counts. A valid check from an address beyond
// the bound ends the peer.
func (g *remoteGuard) check(from netip.AddrPort, pkt []byte) bool {
	from = normalAddr(from)
	id, isSTUN := stunID(pkt)
	if pin := g.pinned.Load(); isSTUN && pin != nil && *pin != from {
		return false
	}
	g.mu.Lock()
	if isSTUN && g.checks.replayed(id, from) {
		g.mu.Unlock()
		return false
	}
	_, known := g.seen[from]
	if known && isSTUN {
		g.checks.add(id, from)
	}
	g.mu.Unlock()
	if known {
		return true
	}
	// Verified outside the lock: the agent's read loops run apart.
	if !validCheck(pkt, g.pwd) {
		return false
	}
	g.mu.Lock()
	if g.seen == nil {
		g.seen = map[netip.AddrPort]struct{}{}
	}
	// Asked again: the same check may have come from another address
	// meanwhile, on another read loop.
	if g.checks.replayed(id, from) {
		g.mu.Unlock()
		return false
	}
	_, known = g.seen[from]
	over := !known && len(g.seen) >= maxRemoteAddrs
	first := over && !g.over
	switch {
	case over:
		g.over = true
	case !known:
		g.seen[from] = struct{}{}
		if !g.gone {
			g.verified.tell(true, from)
		}
	}
	if !over {
		g.checks.add(id, from)
	}
	g.mu.Unlock()
	if first {
		if p := g.peer.Load(); p != nil {
			p.end(tooManyAddrs)
		}
	}
	return !over
}

// pin tells g the remote address of the peer's selected candidate pair,
// as the agent chose it (on the peer's nomination): from then on, STUN
// from any other address is dropped (check). The agent tells each pair
// it selects, in order, after selecting it.
func (g *remoteGuard) pin(remote netip.AddrPort) {
	remote = normalAddr(remote)
	g.pinned.Store(&remote)
}

// forget tells verified that the addresses g counted are no longer the
// peer's, once its connection is closed; it tells it of none after.
func (g *remoteGuard) forget() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gone {
		return
	}
	g.gone = true
	srcs := make([]netip.AddrPort, 0, len(g.seen))
	for src := range g.seen {
		srcs = append(srcs, src)
	}
	g.verified.tell(false, srcs...)
}

// normalAddr is a as the guard counts addresses: IPv4-mapped IPv6 as
// IPv4, no zone.
func normalAddr(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap().WithZone(""), a.Port())
}

// tooManyAddrs is why such a peer is dropped.
var tooManyAddrs = "ICE checks from more than " + strconv.Itoa(maxRemoteAddrs) + " addresses"

// setPeer tells g the peer to end, ending it at once if its checks came
// from too many addresses already. (The agent reads nothing before the
// answer is set, after setPeer: this is for safety.)
func (g *remoteGuard) setPeer(p *peer) {
	g.peer.Store(p)
	g.mu.Lock()
	over := g.over
	g.mu.Unlock()
	if over {
		p.end(tooManyAddrs)
	}
}

// guardedMux is the front's ice.UDPMux: the shared socket's, whose
// connections for a peer (one for each host address the node offers,
// all reading the peer's share of the socket) count the addresses the
// peer's packets come from in the peer's remoteGuard. A hook in the
// agent (its binding request handler) saw only some checks: the agent
// skips it for a check that claims the controlled role, and adds the
// check's address as a candidate all the same.
type guardedMux struct {
	ice.UDPMux
	loopback bool             // the socket is on a loopback address: offer it
	verified *verifiedSources // the socket's, told by each guard

	mu     sync.Mutex
	guards map[string]*remoteGuard // by the peer's local ufrag
}

func newGuardedMux(m ice.UDPMux, loopback bool, verified *verifiedSources) *guardedMux {
	return &guardedMux{UDPMux: m, loopback: loopback, verified: verified, guards: map[string]*remoteGuard{}}
}

// watch makes the guard of a peer whose ICE agent is to use the local
// ufrag ufrag and password pwd; forget, once its connection is closed,
// lets it go, and tells the socket its addresses are no longer the
// peer's (remoteGuard.forget).
func (m *guardedMux) watch(ufrag, pwd string) *remoteGuard {
	g := &remoteGuard{pwd: []byte(pwd), verified: m.verified}
	m.mu.Lock()
	m.guards[ufrag] = g
	m.mu.Unlock()
	return g
}

func (m *guardedMux) forget(ufrag string) {
	m.mu.Lock()
	g := m.guards[ufrag]
	delete(m.guards, ufrag)
	m.mu.Unlock()
	if g != nil {
		g.forget()
	}
}

// errUnknownUfrag refuses a connection to an agent the front did not
// set up: every peer's is watched before its agent gathers.
var errUnknownUfrag = errors.New("rtcfront: an ICE agent of no peer")

// GetConn returns the mux's connection for ufrag, wrapped to count the
// addresses its packets come from.
func (m *guardedMux) GetConn(ufrag string, addr net.Addr) (net.PacketConn, error) {
	m.mu.Lock()
	g := m.guards[ufrag]
	m.mu.Unlock()
	if g == nil {
		return nil, errUnknownUfrag
	}
	c, err := m.UDPMux.GetConn(ufrag, addr)
	if err != nil {
		return nil, err
	}
	gc := guardedConn{PacketConn: c, g: g}
	if ap, ok := c.(ice.AddrPortReaderWriter); ok {
		return &guardedAddrPortConn{guardedConn: gc, ap: ap}, nil
	}
	return &gc, nil
}

// GetListenAddresses leaves out loopback addresses unless the socket is
// on one, as the ICE agent does only for pion's own mux type, not for a
// wrapper (SetIncludeLoopbackCandidate).
func (m *guardedMux) GetListenAddresses() []net.Addr {
	all := m.UDPMux.GetListenAddresses()
	if m.loopback {
		return all
	}
	out := all[:0:0]
	for _, a := range all {
		if ua, ok := a.(*net.UDPAddr); ok && ua.IP.IsLoopback() {
			continue
		}
		out = append(out, a)
	}
	return out
}

// guardedConn is one of a peer's connections from guardedMux: its reads
// skip the packets its guard refuses.
type guardedConn struct {
	net.PacketConn
	g *remoteGuard
}

func (c *guardedConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, from, err := c.PacketConn.ReadFrom(b)
		if err != nil {
			return n, from, err
		}
		if ua, ok := from.(*net.UDPAddr); !ok || c.g.check(ua.AddrPort(), b[:n]) {
			return n, from, nil
		}
	}
}

// guardedAddrPortConn is a guardedConn over a connection that reads and
// writes netip.AddrPort without allocating, as the agent prefers.
type guardedAddrPortConn struct {
	guardedConn
	ap ice.AddrPortReaderWriter
}

func (c *guardedAddrPortConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		n, from, err := c.ap.ReadFromAddrPort(b)
		if err != nil || c.g.check(from, b[:n]) {
			return n, from, err
		}
	}
}

func (c *guardedAddrPortConn) WriteToAddrPort(b []byte, to netip.AddrPort) (int, error) {
	return c.ap.WriteToAddrPort(b, to)
}

// iceCredentials makes a peer's local ICE ufrag and password (RFC 8445,
// 5.3: at least 24 and 128 bits of randomness): the front sets them, to
// know which of the mux's connections are the peer's.
func iceCredentials() (ufrag, pwd string) {
	return rand.Text()[:16], rand.Text()
}
