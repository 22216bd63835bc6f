// Package rtcfront is a node's WebRTC front: real-time text over WebRTC
// data channels as RFC 8865 sets it out (ITU-T T.140 in a data channel
// whose subprotocol is "t140", reliable and ordered), bridged into the
// rooms of the service.
//
// Signalling is one HTTP request, in the manner of WHIP: a peer POSTs its
// SDP offer (Content-Type application/sdp, ICE candidates gathered) to
// the path the node mounts the Server on, with ?room=ROOM, and gets the
// SDP answer back (201 Created, application/sdp) once the node's own
// candidates are gathered. No trickle ICE, no renegotiation.
//
// The credential is the one an attach needs: with user tokens on the
// service, "Authorization: Bearer TOKEN" (the member is the token's
// user); without, ?user=NAME. The front does not judge the token itself:
// its bridge attaches with it, and the node's own check refuses or
// admits it (401 or 403 back to the peer), so the rules are the same as
// for every client of the node.
//
// The bridge is a client of the node like any other (the public client
// package, as the SIP front's): it attaches as the user before the answer
// is sent (so that the node's refusal of the credential is the HTTP
// answer), joins the room once the peer's t140 channel is open (so that
// the room shows only members who can type: a peer that never connects
// is never in it), sends what the peer types on its t140 channel as the
// member's chunks, and sends the other members' text back on that
// channel, one sender at a time under a "[name]: " label (t140.Mixer,
// RFC 9071's presentation for an endpoint that knows nothing of
// multiparty). The node's session
// code knows nothing of WebRTC. A peer that ends, however it ends, has
// its connection closed at once and its member leaves the room once the
// node has stored the text the peer sent (for up to 5 s): the peer's
// reliable channel delivered it.
//
// ICE runs over one UDP socket (Config.ICEAddr) shared by every peer,
// with host candidates only: no STUN, no TURN, no mDNS. The node is an
// ICE lite agent: it sends no checks, to the candidates an offer lists or
// anywhere, and answers the peer's from where they come; and it is the
// DTLS server, speaking DTLS only in answer to the peer's. An offer of a
// lite agent (a=ice-lite), or one that would have the node be the DTLS
// client (a=setup:passive), is refused: either had the node send first,
// to an address the offer named. Limits: peers
// per node and per source address (an IPv4 address or an IPv6 /64; behind
// a reverse proxy listed in Config.TrustedProxies, the address it gives
// in X-Forwarded-For, which is ignored from anyone else; a request from
// the node's own host to the address it came from, a proxy beside the
// node, is not counted per source), the size of an offer, the addresses
// a peer's checks may come from (32, counted as the shared socket hands
// them to the peer, before its ICE agent sees them, once a check from
// the address verifies with the peer's ICE password: other packets from
// an address not counted are dropped, and so is a check whose STUN
// transaction ID came from another address already, a replay; once the
// peer is connected, checks from any address but its selected pair's
// are dropped, so that no check, replayed or forged, moves the peer's
// pair), the packets one source address
// (IP and port) may send the shared socket a second (1000; more are
// dropped before pion's mux queues them; of the 4096 addresses it
// remembers, 64 per source IP, a new one takes the place of the one
// least recently heard from that no check has verified for a peer
// still connected), the messages a peer may send
// a second and their size, the tokens the node may judge from one source
// address (3 in 10 s, those being judged counted with those refused,
// then 429: each offer's member attaches on a connection of its own, so
// the node's close at a connection's third refusal does not bound them); a
// peer whose channel
// does not open in time is dropped, its place held until then. Bad input gets a clear HTTP error and touches no other peer (the
// log has at most one line of refusals every 5 s, which counts those
// held back); a join the node refuses once the channel is open (a full
// room) is told to the peer as one unlabelled line on its channel, which
// then closes. What the peer types before its member is in the room
// waits for the join.
//
// The caller's duties: mount the Server on the node's HTTP (it is an
// http.Handler for POST, and for the CORS preflight, OPTIONS, of the
// pages of other origins that may post), and Shutdown it before the
// node.
package rtcfront
