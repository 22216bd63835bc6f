// Package dnsserver is the DNS responder every Switchboard node can run: it
// answers, authoritatively, for the service name (the common service
// address) from the node's own live directory, so that plain DNS round robin
// spreads clients over the servers that can take them.
//
// # Walk-through
//
//	var snap atomic.Pointer[[]directory.Node] // the node's directory snapshot
//	cfg := dnsserver.DefaultConfig("chat.local", func() []directory.Node {
//		if p := snap.Load(); p != nil {
//			return *p
//		}
//		return nil
//	})
//	cfg.Addr = ":5353"
//	srv, err := dnsserver.New(cfg)
//	if err != nil { ... }
//	if err := srv.Start(ctx); err != nil { ... } // binds UDP, then TCP on the same port
//	log.Print("DNS on ", srv.Addr())
//	...
//	err = srv.Shutdown(ctx) // stops both, waits for the goroutines
//
// # What it answers
//
// For the zone Z (Config.Zone):
//
//   - Z A / AAAA: the IPs of the nodes that are up and have room
//     (directory.Node.Available), taken from the host part of Node.Addr,
//     deduplicated, IPv4 as A and IPv6 as AAAA. Every answer starts one
//     record further on than the last answer of the same set (round
//     robin); each set (the A, the AAAA, the SRV records, ns.Z's A and
//     AAAA) keeps its own count, so a client that always asks A then AAAA
//     still sees every record first in turn. A node that goes down, full
//     or draining leaves the answers with the next query, or, while
//     another query builds the answers anew, with the one after the build.
//   - _switchboard._tcp.Z SRV: one record per available node, priority 0,
//     the node's port, a weight proportional to its spare capacity (the
//     largest spare is 65535; never below 1), and as target the node's own
//     name <label>.node.Z whose A or AAAA goes in the additional section.
//     A node whose Addr host is a name, not an IP, gets that name as target
//     and no additional record.
//   - <label>.node.Z A / AAAA: that node's IP, whatever its status. The
//     label depends on the node's ID alone, so that every node's
//     responder, whichever nodes it holds, gives a name the same node:
//     the ID itself when it is a DNS label in lower case already (a-z,
//     0-9 and "-", not at either end, at most 63 bytes: n1, node-1,
//     eu-1); any other ID in lower case with every other character than
//     a-z and 0-9 turned into "-" (runs and ends trimmed), cut to 54
//     bytes, then "-" and the FNV-1a 32-bit hash of the ID in 8 hex
//     digits: Web1 is web1-13f03c00, the default ID 127.0.0.2:7070 is
//     127-0-0-2-7070-0ed4c09b. Should two IDs still get one label (the
//     hash colliding), the first in the directory keeps it and the other
//     gets no name and no SRV record.
//   - Z SOA and NS, with the name server Config.NS (default ns.Z), which
//     answers A / AAAA (and goes with NS as glue) with Config.NSAddrs, the
//     bound IP, or else the IPs of the nodes whose responders answer:
//     every node up, full or draining, whatever its users and capacity
//     (not one down, starting, or degraded: such a node's directory may
//     be empty or out of date, and its responder answers SERVFAIL).
//   - Any other name in Z: NXDOMAIN with the SOA in the authority section;
//     a name that exists but not with the type asked (AAAA with IPv4 nodes
//     only, MX, TXT...): NOERROR with no answer and the SOA (NODATA). Names
//     are matched without regard to case. The AA bit is set on both.
//   - ANY at a name that exists: one HINFO record "RFC8482" "" (RFC 8482),
//     over UDP and TCP alike, never every record at the name: a short
//     spoofed query must not turn into a large reply at its victim.
//   - While the node may not answer (Config.Serving false: it is
//     starting, its directory empty until it has heard its peers, or
//     degraded, cut off from most of them), every query for a name in Z,
//     whatever its type (SOA and NS too), gets SERVFAIL with no records
//     and no AA bit, with the extended DNS error 14 "Not Ready" (RFC
//     8914) when the query has EDNS0. An authoritative empty answer would
//     be cached (RFC 2308) and taken for the service being absent;
//     SERVFAIL is what a resolver asks the zone's other name servers
//     after. Names outside Z are still REFUSED. One line at Info says
//     when the responder stops serving and when it serves again.
//   - Names outside Z, classes other than IN (QCLASS ANY too: the zone
//     has IN records only, and no stub or resolver asks ANY for them), and
//     zone transfers: REFUSED.
//     Opcodes other than QUERY: NOTIMP. Not exactly one question, or more
//     than one OPT record, or a message that does not parse (a
//     compression loop, counts beyond the data): FORMERR. EDNS versions
//     above 0: BADVERS. Anything shorter than a DNS header, and responses,
//     get no reply at all.
//
// Every record has the TTL Config.TTL (default 5 s). A UDP reply fits in 512
// bytes, or in the size the client's EDNS0 OPT offers (capped at
// Config.MaxUDPSize, default 1232); the records that do not fit are left
// out. When that cuts the answer (or authority) section the reply has the
// TC bit, so the client asks again over TCP, where the whole answer is
// served; when it cuts only additional records (SRV or NS glue) it does
// not (RFC 2181 section 9): the answer is whole, and a client asks for the
// addresses of the targets that came without them.
//
// Over UDP each client network (an IPv4 /24, an IPv6 /56) gets at most
// Config.RateLimit full replies a second (default 100, with a burst of as
// many), and each wide network (an IPv4 /16, an IPv6 /32) sixteen times
// that over all its client networks; beyond that every query gets its
// header and question back with the TC bit and no records, so a real
// client asks again over TCP and the victim of spoofed queries, past that
// rate, receives no more bytes than were sent in its name, however its
// sources are spread. Loopback clients are not limited. The limiter
// remembers at most 65536 networks, wide ones included, forgetting idle
// ones.
//
// Over TCP at most Config.MaxTCPConns (default 256) connections are open at
// once, at most a sixteenth of them (at least 1) from one client host (an
// IPv4 address, an IPv6 /64; loopback is exempt), and at most four times
// that from one site (an IPv4 /24, an IPv6 /48), its hosts together; one
// beyond any of these is closed as soon as it is accepted. A connection
// must send its first query within 2 s and each further one within 8 s of
// the last reply, or within 1 s when more than half of the connections
// were open as it was accepted, itself included (RFC 7766 section 6.2.3),
// and is closed after 128 queries (miekg/dns's defaults), or when a reply
// cannot be written within 2 s (a client that does not read its replies). When
// the process runs out of file descriptors, accepting waits (5 ms doubling
// to 1 s) rather than spinning.
//
// Server.Stats counts the UDP replies truncated by the rate limit, the TCP
// connections closed over a limit, those closed by a failed write, and
// the queries answered SERVFAIL while the node did not serve. A
// line at Warn says when replies are truncated or connections closed over
// a limit, at most once a minute for each.
//
// # Speed
//
// The answers are built once per directory snapshot and shared: a query
// whose Nodes call returns the same slice as the last one (or one with the
// same IDs, addresses, statuses, users and capacities) only copies and
// rotates prebuilt records. One query at a time builds them anew; the
// others that find them out of date meanwhile answer from the last ones
// built, so a directory that changes all the time (users come and go)
// never holds queries up behind a build.
//
// # Caller's duties
//
//   - Config.Nodes is called on every query, from many goroutines at once.
//     It must not block and must be safe for concurrent use; load an
//     immutable snapshot from an atomic.Pointer. Do not modify a slice after
//     returning it. Config.Serving, when set, is called on every query
//     too, under the same rules: load an atomic.
//   - New does no I/O. Start blocks until both sockets serve (or fail); it
//     starts one goroutine per socket, and while running miekg/dns starts
//     one per UDP query in flight and one per TCP connection.
//   - Shutdown blocks until all of those goroutines end or ctx is done. Call
//     it once Start has succeeded, or the sockets stay bound.
//   - A panic while answering (in Config.Nodes, say) is logged and
//     answered SERVFAIL; it does not stop the server.
//   - Server.ServeDNS (a dns.Handler) and Server.Answer work without
//     sockets, before Start and after Shutdown, and are safe for concurrent
//     use. ServeDNS applies the UDP rate limit; Answer does not.
package dnsserver
