package dnsserver

import (
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/switchboard/switchboard/directory"
)

// zoneParams are the parts of a zone that do not come from the directory.
// A zone built from one params value is only reused with that same value.
type zoneParams struct {
	origin     string // the zone apex, canonical FQDN
	srvName    string // _switchboard._tcp.<origin>
	nodeSuffix string // node.<origin>
	nsName     string // canonical FQDN of the name server
	hostmaster string // SOA RNAME
	ttl        uint32 // seconds
	nsAddrs    []netip.Addr
	rot        *rotors // the Server's, shared by every zone it builds
}

// nodeKey is the part of a directory.Node that the answers depend on. Two
// snapshots with equal keys give the same zone.
type nodeKey struct {
	id, addr        string
	status          directory.Status
	users, capacity int
}

// owner holds the records at one name. An owner with no records is an empty
// non-terminal: the name exists, so queries for it get NODATA, not NXDOMAIN.
type owner struct {
	soa, ns []dns.RR
	a, aaaa []dns.RR
	srv     []dns.RR
	srvGlue [][]dns.RR // srvGlue[i] is the additional data for srv[i]
	nsGlue  []dns.RR   // additional data for an NS answer
	// The round-robin counters of the A, AAAA and SRV answers, nil for
	// a set that does not rotate.
	rotA, rotAAAA, rotSRV *rotor
}

// rotor is the round-robin counter of one record set: each answer starts
// one record further on than the one before.
type rotor struct {
	n atomic.Uint64
}

// next returns the start offset of the next answer of n records. A nil
// rotor does not rotate: always 0.
func (r *rotor) next(n int) int {
	if r == nil || n <= 1 {
		return 0
	}
	return int((r.n.Add(1) - 1) % uint64(n))
}

// rotors are the round-robin counters of the record sets that rotate, one
// each: the zone's A and AAAA, the SRV records, and the name server's A and
// AAAA. One counter shared by every set let a client that always asks the
// same types in the same order (A then AAAA, as a stub resolver does) see
// the same record first in every answer. They live in the Server, not the
// zone, so that they go on across the rebuilds a directory whose users
// change causes often.
type rotors struct {
	apexA, apexAAAA, srv, nsA, nsAAAA rotor
}

// zone is every answer the server can give for one directory snapshot. It is
// immutable once built and shared by all queries; handlers copy the slices
// they put into a reply.
type zone struct {
	params *zoneParams
	src    []directory.Node // the snapshot it was built from (pins its identity)
	keys   []nodeKey
	names  map[string]*owner
	soa    dns.RR // for the authority section of negative answers
}

// matches reports whether z answers for nodes with params p: either nodes is
// the very slice z was built from, or one with the same content.
func (z *zone) matches(p *zoneParams, nodes []directory.Node) (same, equal bool) {
	if z.params != p || len(z.src) != len(nodes) {
		return false, false
	}
	if len(nodes) == 0 || &z.src[0] == &nodes[0] {
		return true, true
	}
	for i := range nodes {
		if keyOf(nodes[i]) != z.keys[i] {
			return false, false
		}
	}
	return false, true
}

func keyOf(n directory.Node) nodeKey {
	return nodeKey{id: n.ID, addr: n.Addr, status: n.Status, users: n.Users, capacity: n.Capacity}
}

// target is a directory node as the zone sees it.
type target struct {
	node  directory.Node
	ip    netip.Addr // valid when the address's host is an IP
	name  string     // FQDN of the host when it is a name, not an IP
	port  uint16     // 0 when the address has no usable port
	label string     // the node's label under node.<zone>: ip is valid and the label its own
}

// servesDNS reports whether a node with status st is a name server to
// publish: one whose responder runs and answers from a current
// directory, whatever its room (up, full, draining). Not one down, nor
// one still starting or degraded (cut off from most of its peers), whose
// directory may be empty or out of date and whose responder answers
// SERVFAIL meanwhile (Config.Serving).
func servesDNS(st directory.Status) bool {
	switch st {
	case directory.Up, directory.Full, directory.Draining:
		return true
	}
	return false
}

// parseTarget splits a node's client address into what DNS can serve.
func parseTarget(n directory.Node) target {
	t := target{node: n}
	host, port, err := net.SplitHostPort(n.Addr)
	if err != nil {
		return t
	}
	if p, err := strconv.ParseUint(port, 10, 16); err == nil {
		t.port = uint16(p)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.WithZone("").Unmap()
		if !ip.IsUnspecified() {
			t.ip = ip
		}
		return t
	}
	if _, ok := dns.IsDomainName(host); ok && host != "" && host != "." {
		t.name = dns.CanonicalName(host)
	}
	return t
}

// sanitizeLabel turns a node ID into a DNS label: lower case letters, digits
// and hyphens, no hyphen at either end, at most 63 bytes; "node" if nothing
// is left.
func sanitizeLabel(id string) string {
	b := make([]byte, 0, min(len(id), 63))
	for i := 0; i < len(id) && len(b) < 63; i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		default:
			c = '-'
		}
		if c == '-' && (len(b) == 0 || b[len(b)-1] == '-') {
			continue
		}
		b = append(b, c)
	}
	s := strings.TrimRight(string(b), "-")
	if s == "" {
		return "node"
	}
	return s
}

// hashedLabelBase is how much of the cleaned ID a hashed label keeps: with
// "-" and 8 hex digits it fills the 63 bytes a label may hold.
const hashedLabelBase = 63 - 1 - 8

// nodeLabel returns the label of the node with ID id under node.<zone>. It
// depends on the ID alone, never on the other nodes a responder holds, so
// that every node's responder gives one ID the same name and one name the
// same node, whoever else is in its directory (down nodes included, which
// stay until forgotten): the ID itself when it already is a DNS label in
// lower case (1 to 63 bytes of a-z, 0-9 and "-", no "-" at either end:
// n1, node-1, eu-1), otherwise the ID cleaned into one (sanitizeLabel, cut
// to 54 bytes), "-" and the FNV-1a 32-bit hash of the ID in 8 hex digits:
// Web1 is web1-13f03c00, beside web1's web1. Two IDs share a label only
// when that hash collides as well.
func nodeLabel(id string) string {
	if isLabel(id) {
		return id
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	base := sanitizeLabel(id)
	base = strings.TrimRight(base[:min(len(base), hashedLabelBase)], "-")
	return fmt.Sprintf("%s-%08x", base, h.Sum32())
}

// isLabel reports whether s is a DNS host name label in lower case, as
// it stands: 1 to 63 bytes of a-z, 0-9 and "-", with no "-" at either end.
func isLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// srvWeight scales spare capacity into an SRV weight: proportional to spare,
// with the largest spare in the directory at 65535, and at least 1.
func srvWeight(spare, maxSpare int) uint16 {
	if spare <= 0 || maxSpare <= 0 {
		return 1
	}
	w := (uint64(spare)*65535 + uint64(maxSpare)/2) / uint64(maxSpare)
	return uint16(min(max(w, 1), 65535))
}

func (p *zoneParams) hdr(name string, rrtype uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: p.ttl}
}

// addrRR is the A or AAAA record for ip at name.
func (p *zoneParams) addrRR(name string, ip netip.Addr) dns.RR {
	if ip.Is4() {
		return &dns.A{Hdr: p.hdr(name, dns.TypeA), A: net.IP(ip.AsSlice())}
	}
	return &dns.AAAA{Hdr: p.hdr(name, dns.TypeAAAA), AAAA: net.IP(ip.AsSlice())}
}

// add appends an A or AAAA record for ip to o, and returns it.
func (o *owner) add(p *zoneParams, name string, ip netip.Addr) dns.RR {
	rr := p.addrRR(name, ip)
	if ip.Is4() {
		o.a = append(o.a, rr)
	} else {
		o.aaaa = append(o.aaaa, rr)
	}
	return rr
}

// buildZone makes every answer for the directory snapshot nodes. It is pure:
// the same inputs give the same zone (whose rotors are p's).
func buildZone(p *zoneParams, nodes []directory.Node, serial uint32) *zone {
	z := &zone{params: p, src: nodes, keys: make([]nodeKey, len(nodes)), names: make(map[string]*owner)}
	for i, n := range nodes {
		z.keys[i] = keyOf(n)
	}
	get := func(name string) *owner {
		o := z.names[name]
		if o == nil {
			o = &owner{}
			z.names[name] = o
		}
		return o
	}

	apex := get(p.origin)
	apex.rotA, apex.rotAAAA = &p.rot.apexA, &p.rot.apexAAAA
	soa := &dns.SOA{
		Hdr:     p.hdr(p.origin, dns.TypeSOA),
		Ns:      p.nsName,
		Mbox:    p.hostmaster,
		Serial:  serial,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  p.ttl,
	}
	z.soa = soa
	apex.soa = []dns.RR{soa}
	apex.ns = []dns.RR{&dns.NS{Hdr: p.hdr(p.origin, dns.TypeNS), Ns: p.nsName}}
	srvOwner := get(p.srvName)
	srvOwner.rotSRV = &p.rot.srv

	// Parse every node once; the first node with an ID wins. A label is
	// the ID's alone (nodeLabel); should two IDs' labels collide (their
	// hashes too), the first keeps it and the other gets no name, rather
	// than one that another responder gives a different node.
	targets := make([]target, 0, len(nodes))
	seenID := make(map[string]bool, len(nodes))
	used := make(map[string]bool, len(nodes))
	maxSpare := 0
	for _, n := range nodes {
		if seenID[n.ID] {
			continue
		}
		seenID[n.ID] = true
		t := parseTarget(n)
		if t.ip.IsValid() {
			if l := nodeLabel(n.ID); !used[l] {
				used[l] = true
				t.label = l
			}
		}
		if n.Available() && t.port != 0 && (t.ip.IsValid() || t.name != "") {
			maxSpare = max(maxSpare, n.Spare())
		}
		targets = append(targets, t)
	}

	seenIP := make(map[netip.Addr]bool, len(targets))
	seenNS := make(map[netip.Addr]bool, len(targets))
	var nsIPs []netip.Addr // of the nodes whose responders answer
	for _, t := range targets {
		var host dns.RR // the node's own address record, used as SRV glue
		if t.label != "" {
			name := t.label + "." + p.nodeSuffix
			host = get(name).add(p, name, t.ip)
		}
		if t.ip.IsValid() && servesDNS(t.node.Status) && !seenNS[t.ip] {
			seenNS[t.ip] = true
			nsIPs = append(nsIPs, t.ip)
		}
		if !t.node.Available() {
			continue
		}
		if t.ip.IsValid() && !seenIP[t.ip] {
			seenIP[t.ip] = true
			apex.add(p, p.origin, t.ip)
		}
		if t.port == 0 || (host == nil && t.name == "") {
			continue
		}
		srv := &dns.SRV{
			Hdr:      p.hdr(p.srvName, dns.TypeSRV),
			Priority: 0,
			Weight:   srvWeight(t.node.Spare(), maxSpare),
			Port:     t.port,
			Target:   t.name,
		}
		var glue []dns.RR
		if host != nil {
			srv.Target = host.Header().Name
			glue = []dns.RR{host}
		}
		srvOwner.srv = append(srvOwner.srv, srv)
		srvOwner.srvGlue = append(srvOwner.srvGlue, glue)
	}

	// The name server's own addresses, when it lies inside the zone and is
	// not the apex itself (which already has the nodes' addresses). Without
	// NSAddrs they are those of every node whose responder answers, with
	// room or not: a full or draining node still answers DNS.
	if p.nsName != p.origin && dns.IsSubDomain(p.origin, p.nsName) {
		nsAddrs := p.nsAddrs
		nsOwner := get(p.nsName)
		if len(nsAddrs) == 0 {
			nsAddrs = nsIPs
			nsOwner.rotA, nsOwner.rotAAAA = &p.rot.nsA, &p.rot.nsAAAA
		}
		for _, ip := range nsAddrs {
			nsOwner.add(p, p.nsName, ip)
		}
	}
	if ns := z.names[p.nsName]; ns != nil {
		apex.nsGlue = append(append(apex.nsGlue, ns.a...), ns.aaaa...)
	}

	// Empty non-terminals: every name between an owner and the apex exists.
	var ents []string
	for name := range z.names {
		labels := dns.Split(name)
		for _, off := range labels[1:] {
			parent := name[off:]
			if parent == p.origin || len(parent) <= len(p.origin) {
				break
			}
			if z.names[parent] == nil {
				ents = append(ents, parent)
			}
		}
	}
	for _, name := range ents {
		get(name)
	}
	return z
}
