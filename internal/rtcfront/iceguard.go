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
type remoteGuard struct {
	peer atomic.Pointer[peer] // set once the peer exists (setPeer)
	pwd  []byte               // the peer's local ICE password

	mu   sync.Mutex
	seen map[netip.AddrPort]struct{}
	over bool // a valid check came from an address beyond maxRemoteAddrs
}

// check reports whether the agent may read pkt, which came from the
// address from: yes when from is counted already, or when pkt is a valid
// check (validCheck) and from a new address within maxRemoteAddrs, which
// it counts. A valid check from an address beyond the bound ends the
// peer.
func (g *remoteGuard) check(from netip.AddrPort, pkt []byte) bool {
	from = netip.AddrPortFrom(from.Addr().Unmap().WithZone(""), from.Port())
	g.mu.Lock()
	_, known := g.seen[from]
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
	_, known = g.seen[from]
	over := !known && len(g.seen) >= maxRemoteAddrs
	first := over && !g.over
	switch {
	case over:
		g.over = true
	case !known:
		g.seen[from] = struct{}{}
	}
	g.mu.Unlock()
	if first {
		if p := g.peer.Load(); p != nil {
			p.end(tooManyAddrs)
		}
	}
	return !over
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
	loopback bool // the socket is on a loopback address: offer it

	mu     sync.Mutex
	guards map[string]*remoteGuard // by the peer's local ufrag
}

func newGuardedMux(m ice.UDPMux, loopback bool) *guardedMux {
	return &guardedMux{UDPMux: m, loopback: loopback, guards: map[string]*remoteGuard{}}
}

// watch makes the guard of a peer whose ICE agent is to use the local
// ufrag ufrag and password pwd; forget, once its connection is closed,
// lets it go.
func (m *guardedMux) watch(ufrag, pwd string) *remoteGuard {
	g := &remoteGuard{pwd: []byte(pwd)}
	m.mu.Lock()
	m.guards[ufrag] = g
	m.mu.Unlock()
	return g
}

func (m *guardedMux) forget(ufrag string) {
	m.mu.Lock()
	delete(m.guards, ufrag)
	m.mu.Unlock()
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
