// Package resolve turns a Switchboard service name (the common service
// address, e.g. "chat.local") into the HOST:PORT addresses of its servers,
// the way a client finds a server to say hello to.
//
// # Walk-through
//
//	addrs, err := resolve.Lookup(ctx, resolve.Config{DefaultPort: 7070}, "chat.local")
//	switch {
//	case errors.Is(err, resolve.ErrNoAddress):
//		// the name exists nowhere in DNS: no server to try
//	case err != nil:
//		// DNS failed (timeout, SERVFAIL...): try again later
//	}
//	for _, a := range addrs { // best first
//		conn, err := net.Dial("tcp", a)
//		...
//	}
//
// Lookup first asks for the SRV records of _switchboard._tcp.<service>,
// which the Switchboard DNS responder publishes with one record per server
// that is up and has room, weighted by its spare capacity. They are ordered
// by priority and, within a priority, by RFC 2782's weighted random
// selection, so that more clients go where there is more room. When the name
// has no SRV records (any DNS zone with plain A/AAAA round robin), Lookup
// uses its A and AAAA records, shuffled, with Config.DefaultPort; so it does
// when the SRV query timed out or got SERVFAIL, as from a server or
// middlebox that mishandles SRV. With Config.DefaultPort set, the SRV query
// leaves a quarter of Config.Timeout (at most 1 s) to the A and AAAA
// queries for that.
//
// With Config.Resolver set, Lookup asks that DNS server itself (UDP with
// EDNS0, then TCP when the reply is truncated), and SRV targets come back as
// the IP addresses found in the reply's additional section (the SRV name
// may be a CNAME, followed within the answer). A server may leave some or
// all of those addresses out of a UDP reply without setting TC (RFC 2181,
// section 9): the Switchboard responder does when the SRV records fit and
// their addresses do not, from about 30 nodes on. Lookup then asks the
// same question once over TCP, within half of the time left and at most
// 2 s, and uses that reply. A target still without an address (a caching
// resolver that never gives them, TCP refused or silent) comes back as
// the addresses that same server gives for its A and AAAA records: no name
// goes to the system resolver. Only the first 8 such targets, in the order
// chosen, are looked up, and a target whose lookup fails is left out; the
// failure is reported only when no target has an address. An A or AAAA
// record counts only when it belongs to the name asked or to an alias its
// CNAMEs lead to. With
// Config.Resolver empty, Lookup uses the system resolver (net.Resolver),
// whose SRV records come without addresses: it asks the same resolver for
// those of the first 8 targets, so that they come back as the IP addresses
// a directory lists its nodes by; a target it gives none for, or past the
// 8th, comes back as its host name, for the dialler to resolve. A service
// name given with a final dot ("chat.example.com.") is rooted, and the
// system resolver is asked for it as it is: its search list (a Kubernetes
// pod's ndots:5) does not apply.
//
// Asking a server itself, Lookup sends a UDP query again when no reply came
// after 1 s, then 2 s, 4 s..., within Config.Timeout, and takes a reply only
// when it carries the query's ID and question: anything else that arrives
// (a stale or forged reply, bytes that do not parse) is skipped. Only a
// reply saying the server could not take the query (FORMERR, SERVFAIL,
// NOTIMP, REFUSED) may leave the question out; an NXDOMAIN or NOERROR
// without it is skipped. A and AAAA
// are asked one after the other: with more than 3 s left the A query
// leaves the last second to AAAA, so that a server that drops A queries
// still lets AAAA answer, and once A gave addresses the AAAA query waits
// at most 1 s, so that one that drops AAAA queries costs a second per
// name, not the Timeout. A UDP
// reply larger than the EDNS0 size offered is still read. A truncated UDP
// reply that holds records is asked again over TCP within half of the
// time left, at most 2 s; when TCP fails (the port is refused, or a
// firewall drops DNS over TCP and the connection stays silent), the
// records that came over UDP are used. A truncated reply without records
// (a server over its rate limit) leaves TCP the rest of the Timeout.
//
// Records no server can be reached at are left out, whichever resolver gave
// them: SRV records with port 0 (but for the "." target) and the addresses
// 0.0.0.0, ::, 255.255.255.255 and multicast ones.
//
// # Caller's duties
//
//   - Lookup blocks for at most Config.Timeout (default 5 s) or until ctx
//     ends. It looks up the SRV targets that came without addresses at
//     once, in at most 8 goroutines that end before it returns; the system
//     resolver may start some for the duration of the call.
//   - Config.Rand, when set, must not be shared by concurrent Lookups (a
//     *rand.Rand is not safe for concurrent use); leave it nil outside tests.
//   - The addresses are a snapshot: servers come and go, so call Lookup
//     again when every address has failed rather than caching its result
//     for longer than the records' TTL (a few seconds).
package resolve
