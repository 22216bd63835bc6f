package dnsserver

import (
	"net"
	"net/netip"
	"runtime/debug"

	"github.com/miekg/dns"
)

// ServeDNS answers one query; it implements dns.Handler. It is called by the
// server's goroutines, concurrently, and may also be called directly (tests,
// fuzzing, benchmarks, or another dns.Server). It never blocks beyond the
// Nodes function and w.WriteMsg. A reply is sized for UDP unless
// w.LocalAddr is a *net.TCPAddr; a UDP query from a client network over
// Config.RateLimit (by w.RemoteAddr) gets an empty reply with the TC bit.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	defer func() {
		// A panic (in Config.Nodes, say) costs one query, not the node.
		if v := recover(); v != nil {
			s.log.Error("dns query panicked", "panic", v, "stack", string(debug.Stack()))
			m := new(dns.Msg)
			m.SetRcode(r, dns.RcodeServerFailure)
			_ = w.WriteMsg(m)
		}
	}()
	tcp := false
	if a := w.LocalAddr(); a != nil {
		_, tcp = a.(*net.TCPAddr)
	}
	if !tcp && r != nil && !r.Response && s.limited(w.RemoteAddr()) {
		_ = w.WriteMsg(s.truncated(r))
		return
	}
	if m := s.Answer(r, tcp); m != nil {
		// A failed write means the client is gone; there is no one to tell.
		_ = w.WriteMsg(m)
	}
}

// limited reports whether the UDP client at remote is over Config.RateLimit,
// and counts this reply against it otherwise.
func (s *Server) limited(remote net.Addr) bool {
	if s.limit == nil {
		return false
	}
	ua, ok := remote.(*net.UDPAddr)
	if !ok {
		return false
	}
	ip, ok := netip.AddrFromSlice(ua.IP)
	if !ok {
		return false
	}
	ip = ip.Unmap()
	if s.exempt != nil && s.exempt(ip) {
		return false
	}
	now := s.now()
	if s.limit.allowClient(ip, now) {
		return false
	}
	network := clientNet(ip)
	n := s.counts.rateLimited.Add(1)
	if due(&s.counts.rateLogged, now) {
		s.log.Warn("dns replies over the rate limit are truncated", "network", network, "limit_per_s", s.cfg.RateLimit, "truncated_total", n)
	}
	return true
}

// truncated is the reply to a query over the rate limit: its header and
// question, no records, and the TC bit, which sends a real client to TCP;
// an OPT record when the query had one (RFC 6891). It is never larger than
// the query.
func (s *Server) truncated(r *dns.Msg) *dns.Msg {
	m := &dns.Msg{}
	m.Id = r.Id
	m.Response = true
	m.Opcode = r.Opcode
	m.RecursionDesired = r.RecursionDesired
	m.Truncated = true
	if len(r.Question) == 1 {
		m.Question = []dns.Question{r.Question[0]}
	}
	if r.IsEdns0() != nil {
		m.SetEdns0(uint16(s.cfg.MaxUDPSize), false)
	}
	return m
}

// Answer returns the reply to the query r, sized for TCP (64 KiB) when tcp is
// true, else for UDP (512 bytes, or the client's EDNS0 size capped at
// Config.MaxUDPSize). It returns nil when r must not be answered at all (it
// is itself a response). Safe for concurrent use.
func (s *Server) Answer(r *dns.Msg, tcp bool) *dns.Msg {
	if r == nil || r.Response {
		return nil
	}
	m := &dns.Msg{}
	m.Id = r.Id
	m.Response = true
	m.Opcode = r.Opcode
	if len(r.Question) == 1 {
		m.Question = []dns.Question{r.Question[0]}
	}

	// EDNS0 (RFC 6891): at most one OPT, version 0; its size caps UDP
	// replies. A query with one gets one back, whatever the answer's
	// code (section 7).
	size := dns.MinMsgSize
	if tcp {
		size = dns.MaxMsgSize
	}
	var opt *dns.OPT
	for _, rr := range r.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			if opt != nil {
				m.Rcode = dns.RcodeFormatError
				return m
			}
			opt = o
		}
	}
	if opt != nil {
		m.SetEdns0(uint16(s.cfg.MaxUDPSize), false)
		if opt.Version() != 0 {
			m.Rcode = dns.RcodeBadVers
			return m
		}
		if !tcp {
			size = min(max(int(opt.UDPSize()), dns.MinMsgSize), s.cfg.MaxUDPSize)
		}
	}
	if r.Opcode != dns.OpcodeQuery {
		m.Rcode = dns.RcodeNotImplemented
		return m
	}
	m.RecursionDesired = r.RecursionDesired
	m.CheckingDisabled = r.CheckingDisabled
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}

	s.resolve(m, r.Question[0])
	// Truncate drops what does not fit, so a UDP client retries over TCP;
	// over TCP it only matters past 64 KiB. It sets TC when it drops any
	// record, glue too; RFC 2181 section 9 wants TC only when the answer
	// itself did not fit: a reply whose answer and authority sections are
	// whole is complete without some of its additional records (a client
	// asks for an SRV target's address itself).
	answers, authority := len(m.Answer), len(m.Ns)
	m.Truncate(size)
	m.Truncated = len(m.Answer) < answers || len(m.Ns) < authority
	return m
}

// resolve fills m's rcode and sections for the question q; it appends to
// the additional section, which holds the OPT already when there is one.
func (s *Server) resolve(m *dns.Msg, q dns.Question) {
	// Only IN: the zone has no records of another class, and QCLASS ANY
	// (255), which no stub or resolver sends for addresses, is refused
	// with the rest rather than answered as if it were IN.
	if q.Qclass != dns.ClassINET {
		m.Rcode = dns.RcodeRefused
		return
	}
	name := dns.CanonicalName(q.Name)
	if !s.serving() {
		s.notServing(m, name)
		return
	}
	z := s.current()
	o := z.names[name]
	if o == nil {
		if !dns.IsSubDomain(z.params.origin, name) {
			m.Rcode = dns.RcodeRefused
			return
		}
		m.Authoritative = true
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{z.soa}
		return
	}
	m.Authoritative = true
	switch q.Qtype {
	case dns.TypeAXFR, dns.TypeIXFR:
		// No zone transfers: every node builds the zone from its own directory.
		m.Authoritative = false
		m.Rcode = dns.RcodeRefused
		return
	case dns.TypeA:
		m.Answer = rotate(o.a, o.rotA.next(len(o.a)))
	case dns.TypeAAAA:
		m.Answer = rotate(o.aaaa, o.rotAAAA.next(len(o.aaaa)))
	case dns.TypeSRV:
		// Glue goes after what the additional section holds: the OPT.
		var glue []dns.RR
		m.Answer, glue = s.srv(o)
		m.Extra = append(m.Extra, glue...)
	case dns.TypeSOA:
		m.Answer = copyRRs(o.soa)
	case dns.TypeNS:
		m.Answer = copyRRs(o.ns)
		if len(o.ns) > 0 {
			m.Extra = append(m.Extra, o.nsGlue...)
		}
	case dns.TypeANY:
		// RFC 8482: one small synthesised record instead of every RRset at
		// the name, so that ANY cannot turn a short query into a large
		// reflected reply. Clients ask for the types they need.
		m.Answer = []dns.RR{&dns.HINFO{Hdr: z.params.hdr(name, dns.TypeHINFO), Cpu: "RFC8482"}}
	}
	if len(m.Answer) == 0 {
		// NODATA (RFC 2308): the name exists, the type has no records.
		m.Ns = []dns.RR{z.soa}
	}
	if q.Name != name {
		askedCase(m.Answer, name, q.Name)
	}
}

// serving reports whether the node may answer for the zone now
// (Config.Serving; always without one), and logs when that changes.
func (s *Server) serving() bool {
	if s.cfg.Serving == nil {
		return true
	}
	on := s.cfg.Serving()
	want := servingOff
	if on {
		want = servingOn
	}
	if s.servingState.Load() != want {
		s.servingChanged()
	}
	return on
}

// The states servingState holds: what Config.Serving said when last
// asked; unknown before the first query.
const (
	servingUnknown int32 = iota
	servingOn
	servingOff
)

// servingChanged records and logs, once per change, what Config.Serving
// says now. A query that read the old value just before the change would
// otherwise log it back: asked again under the lock, Serving gives the
// latest, so concurrent queries at a change log it once.
func (s *Server) servingChanged() {
	s.servingMu.Lock()
	defer s.servingMu.Unlock()
	want := servingOff
	if s.cfg.Serving() {
		want = servingOn
	}
	prev := s.servingState.Swap(want)
	switch {
	case prev == want, prev == servingUnknown && want == servingOn:
		// No change, or serving from the start: nothing to say.
	case want == servingOn:
		s.log.Info("dns responder serving the zone again", "servfail_total", s.counts.notServing.Load())
	default:
		s.log.Info("dns responder not serving the zone while the node is starting or degraded: queries for it get SERVFAIL, so resolvers ask another name server")
	}
}

// notServing answers a query for name while the node may not answer:
// SERVFAIL for a name in the zone (with the extended error Not Ready, RFC
// 8914, when the query has EDNS0), REFUSED for one outside it as ever. The
// reply is not authoritative and holds no records: nothing a resolver
// caches as the zone's answer.
func (s *Server) notServing(m *dns.Msg, name string) {
	if !dns.IsSubDomain(s.cfg.Zone, name) {
		m.Rcode = dns.RcodeRefused
		return
	}
	s.counts.notServing.Add(1)
	m.Rcode = dns.RcodeServerFailure
	if opt := m.IsEdns0(); opt != nil {
		opt.Option = append(opt.Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeNotReady})
	}
}

// askedCase gives the records of rrs owned by name (the zone's lower
// case) the owner name as the question spelt it, as authoritative servers
// do: a resolver that randomises the case of its queries (DNS 0x20) finds
// its spelling back in the answer as well as in the question. The zone's
// records are shared by every reply, so each is copied first; queries in
// lower case, nearly all, take no copy.
func askedCase(rrs []dns.RR, name, asked string) {
	for i, rr := range rrs {
		if rr.Header().Name == name {
			rr = dns.Copy(rr)
			rr.Header().Name = asked
			rrs[i] = rr
		}
	}
}

// srv returns the SRV answer of o and its glue, both rotated alike.
func (s *Server) srv(o *owner) (answer, extra []dns.RR) {
	n := len(o.srv)
	if n == 0 {
		return nil, nil
	}
	off := o.rotSRV.next(n)
	answer = rotate(o.srv, off)
	extra = make([]dns.RR, 0, n+1) // +1 for the OPT record added later
	for i := range n {
		extra = append(extra, o.srvGlue[(off+i)%n]...)
	}
	return answer, extra
}

// rotate returns a new slice holding rrs starting at off and wrapping around.
// It has room for one more record (the OPT added to replies).
func rotate(rrs []dns.RR, off int) []dns.RR {
	if len(rrs) == 0 {
		return nil
	}
	out := make([]dns.RR, len(rrs), len(rrs)+1)
	n := copy(out, rrs[off:])
	copy(out[n:], rrs[:off])
	return out
}

// copyRRs returns a copy of rrs so a reply never shares the zone's slices.
func copyRRs(rrs []dns.RR) []dns.RR {
	if len(rrs) == 0 {
		return nil
	}
	out := make([]dns.RR, len(rrs), len(rrs)+1)
	copy(out, rrs)
	return out
}
