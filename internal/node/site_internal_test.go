package node

import (
	"net"
	"testing"
)

// The per-address count holds an IPv6 site (/48) to perSite times
// MaxConnsPerIP over all its /64s, each /64 still to MaxConnsPerIP; IPv4
// addresses have no site. Freed connections give their places back to
// both counts.
func TestConnectionsPerSite(t *testing.T) {
	n := &Node{sessions: map[*session]struct{}{}, perAddr: addrCounts{}}
	n.maxConns.Store(1000)
	n.maxConnsPerIP.Store(2)
	key := func(ip string) string { return addrKey(&net.TCPAddr{IP: net.ParseIP(ip)}) }
	admit := func(ip string) (*session, string) {
		s := &session{addr: key(ip)}
		return s, n.admitLocked(s)
	}
	var held []*session
	// Two per /64 in four /64s of one /48: eight, the site's all.
	for _, ip := range []string{"2001:db8:1:1::1", "2001:db8:1:1::2", "2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:3::1", "2001:db8:1:3::1", "2001:db8:1:4::9", "2001:db8:1:4::9"} {
		s, why := admit(ip)
		if why != "" {
			t.Fatalf("%s: refused %s with %d held", ip, why, len(held))
		}
		held = append(held, s)
	}
	for _, tt := range []struct{ ip, want string }{
		{"2001:db8:1:1::3", refusedPerIP},   // its /64 is full
		{"2001:db8:1:5::1", refusedPerSite}, // a fresh /64 of the full site
		{"2001:db8:2:5::1", ""},             // another site
		{"192.0.2.7", ""},
		{"192.0.2.7", ""},
		{"192.0.2.7", refusedPerIP}, // IPv4: the address alone
	} {
		if _, why := admit(tt.ip); why != tt.want {
			t.Errorf("%s: %q, want %q", tt.ip, why, tt.want)
		}
	}
	n.releaseLocked(held[0])
	if _, why := admit("2001:db8:1:5::1"); why != "" {
		t.Errorf("a /64 of the site once one connection closed: refused %s", why)
	}
	if got := siteKey(key("2001:db8:1:ffff::1")); got != "2001:db8:1::/48" {
		t.Errorf("siteKey = %q", got)
	}
	if got := siteKey(key("192.0.2.7")); got != "" {
		t.Errorf("siteKey of an IPv4 address = %q, want none", got)
	}
}

// The HTTP listener holds an IPv6 /48 the same way: perSite times its
// per-address bound over all the site's /64s.
func TestHTTPConnectionsPerSite(t *testing.T) {
	l := &httpLimitListener{perIP: 2}
	key := func(ip string) string { return addrKey(&net.TCPAddr{IP: net.ParseIP(ip)}) }
	for _, ip := range []string{"2001:db8:1:1::1", "2001:db8:1:1::2", "2001:db8:1:2::1", "2001:db8:1:2::1", "2001:db8:1:3::1", "2001:db8:1:3::1", "2001:db8:1:4::1", "2001:db8:1:4::1"} {
		if !l.takeAddr(key(ip)) {
			t.Fatalf("%s refused", ip)
		}
	}
	if l.takeAddr(key("2001:db8:1:1::3")) {
		t.Error("a third connection of a /64 admitted")
	}
	if l.takeAddr(key("2001:db8:1:5::1")) {
		t.Error("a fresh /64 of a full /48 admitted")
	}
	if !l.takeAddr(key("2001:db8:2:5::1")) {
		t.Error("another /48 refused")
	}
	l.giveAddr(key("2001:db8:1:1::1"))
	if !l.takeAddr(key("2001:db8:1:5::1")) {
		t.Error("a fresh /64 refused once the site had room again")
	}
}
