package rtcfront

import (
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/pion/ice/v4"
)

// maxRemoteAddrs is how many addresses a peer's ICE checks may come from
// before the peer is dropped. A peer checks from each of its candidates:
// an address per interface and family, its NAT's mappings, a relay; a
// few in all. Each new address is a candidate and a pair in the peer's
// ICE agent, an entry in the shared socket's table, and an answer the
// node sends, for as long as the peer lasts: without a bound a peer that
// checked from every port of its host, or from spoofed addresses, grew
// them at will and had the node answer each.
const maxRemoteAddrs = 32

// remoteGuard counts the addresses one peer's ICE checks come from. Its
// check method runs in the peer connection's binding request handler
// (guardChecks), on the ICE agent's goroutine, after the agent has taken
// the check.
type remoteGuard struct {
	peer atomic.Pointer[peer] // set once the peer exists

	mu   sync.Mutex
	seen map[netip.AddrPort]struct{}
}

// check counts the address of one check and ends the peer at the first
// address beyond maxRemoteAddrs.
func (g *remoteGuard) check(remote ice.Candidate) {
	a, err := netip.ParseAddr(remote.Address())
	if err != nil {
		return
	}
	ap := netip.AddrPortFrom(a.Unmap().WithZone(""), uint16(remote.Port()))
	g.mu.Lock()
	if g.seen == nil {
		g.seen = map[netip.AddrPort]struct{}{}
	}
	_, known := g.seen[ap]
	over := !known && len(g.seen) >= maxRemoteAddrs
	if !known && !over {
		g.seen[ap] = struct{}{}
	}
	g.mu.Unlock()
	if over {
		if p := g.peer.Load(); p != nil {
			p.end("ICE checks from more than " + strconv.Itoa(maxRemoteAddrs) + " addresses")
		}
	}
}

// guardChecks hands set (a SettingEngine's SetICEBindingRequestHandler)
// a handler that shows g every check and never changes the agent's
// choice of pair. M, the STUN message, is the type set takes: the
// package reads nothing of it, and needs not import its package.
func guardChecks[M any](set func(func(M, ice.Candidate, ice.Candidate, *ice.CandidatePair) bool), g *remoteGuard) {
	set(func(_ M, _, remote ice.Candidate, _ *ice.CandidatePair) bool {
		g.check(remote)
		return false
	})
}
