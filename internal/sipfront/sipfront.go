// Package sipfront is a node's SIP and RTP front: a SIP user agent
// (github.com/emiago/sipgo) that answers INVITE to sip:ROOM@SERVICE with
// an SDP answer for real-time text (RFC 4103: m=text, t140/1000 with
// red/1000), and bridges each call into the room as a member.
//
// The bridge is a client of the node like any other: it dials the node's
// client listener with the public client package, attaches as the
// caller ("sip:" and the From URI's user@host, or the name a token
// says), joins the room, sends the caller's T.140 text as the member's
// chunks, and sends every other member's text to the caller as T.140 RTP
// with redundancy, one sender at a time under a "[name]: " label
// (t140.Mixer). The node's session code knows nothing of SIP.
//
// The node that takes a call is picked by the same policy as for
// clients (pick.Default over the node's directory): when it picks
// another node, the INVITE is answered with 302 Moved Temporarily to
// that node's SIP address. Limits: calls per node and per source
// address, and calls not yet acknowledged, which give their places up
// to new calls once they have waited AckGrace (limits.go); TCP
// connections, accepted or opened to callers (conns.go). Malformed
// requests and offers get SIP errors (400, 404, 415, 488); so does an
// offer whose text stream's address is not the IP address the request
// came from (rtpaddr.go: the front would send RTP to a third party),
// unless Config.RTPAnyAddress; RTP from anywhere but the address the
// caller's SDP named is ignored. Inside a call, OPTIONS (a caller's
// keepalive) and a re-INVITE that keeps the session (a refresh) get
// 200, and 481 once the front no longer holds the call, which is how a
// caller learns that a node which restarted lost it; a node killed
// answers nothing, and the caller's keepalive ends the call
// (docs/rtp.md). A re-INVITE without an offer gets the front's offer,
// and the call takes the answer in its ACK.
//
// The front authenticates no caller: anyone who reaches it can join any
// room under a name derived from their From header (marked "sip:", so
// that a caller cannot pass for a member who attached with a token).
// cmd/switchboard therefore binds it to loopback unless told otherwise,
// and says so in the log.
package sipfront

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/forwarded"
	"github.com/switchboard/switchboard/internal/logsample"
	"github.com/switchboard/switchboard/internal/t140"
	"github.com/switchboard/switchboard/internal/textsdp"
	"github.com/switchboard/switchboard/internal/token"
	"github.com/switchboard/switchboard/pick"
	"github.com/switchboard/switchboard/wire"
)

// ErrClosed is returned by Serve after Shutdown.
var ErrClosed = errors.New("sipfront: server closed")

// NodeParam is the SIP URI parameter a redirect's Contact carries: the ID
// of the node picked, which then takes the call without picking again.
const NodeParam = "sbnode"

// Config configures a Server. Zero values take the defaults said.
type Config struct {
	// Service is the service's name (for tokens and logs).
	Service string
	// NodeID is the ID of the node this front belongs to.
	NodeID string
	// NodeAddr is the node's client address the bridge dials (HOST:PORT):
	// where this host reaches the node's listener (serve gives
	// Node.LocalAddr), not the address it advertises.
	NodeAddr string
	// ClientOptions are added to the bridge's client.Dial (TLS, say).
	ClientOptions []client.Option
	// Nodes returns the node's current directory, for the policy.
	Nodes func() []directory.Node
	// Policy picks the node that takes a call (default
	// pick.Default(pick.DefaultRand()), as for clients).
	Policy pick.Policy
	// Redirect turns the policy's picks of other nodes into 302
	// redirects (when false, every call is taken here).
	Redirect bool
	// SIPAddrOf returns the SIP HOST:PORT of another node (default: the
	// host of its client address with this front's port: every node runs
	// its SIP front on the same port).
	SIPAddrOf func(directory.Node) (string, bool)
	// MaxCalls is the most calls this front holds at once (default 100).
	MaxCalls int
	// MaxCallsPerSource is the most calls from one source IP address
	// (default 4).
	MaxCallsPerSource int
	// MaxUnconfirmedCalls is the most calls not yet confirmed the front
	// holds at once: being set up, or answered with a 200 the caller has
	// not acknowledged (default MaxCalls/4, at least 1). They count in
	// MaxCalls and MaxCallsPerSource too; past it a call gets 503 with
	// Retry-After: 5. A 200 nobody acknowledges costs its sender one
	// datagram from any source address it cares to write, so these are
	// the places strangers can take cheaply.
	MaxUnconfirmedCalls int
	// AckGrace is how long an answered call waits for its ACK before it
	// gives its place up to a new call that finds one of the call limits
	// reached (default 2 s): the one that has waited longest ends, with no
	// BYE (RFC 3261 forbids one before the ACK). While no limit is reached
	// the 200 goes on being sent until its ACK comes, for up to 64*T1
	// (32 s), as RFC 3261 (section 13.3.1.4) says.
	AckGrace time.Duration
	// MaxConns is the most TCP connections the SIP front holds at once
	// (default 256): those it accepts, more being closed as they are
	// accepted, and those it opens to reach a caller whose own
	// connection closed, none being opened past it.
	MaxConns int
	// MaxConnsPerSource is the most TCP connections from one source IP
	// address, or opened to one (default 16).
	MaxConnsPerSource int
	// ConnIdleTimeout closes a TCP connection that sent nothing for this
	// long (default 2 min). A caller's next request opens another; a
	// phone's keepalives (CRLF or OPTIONS) keep its connection. A
	// connection is closed too when one write on it (an answer, a
	// request of the front's) does not go out within 10 s: its peer
	// takes nothing (conns.go, limitedConn).
	ConnIdleTimeout time.Duration
	// TokenKey, when set, signs the token each bridged member attaches
	// with (needed when the service has a token key).
	TokenKey ed25519.PrivateKey
	// TokenTTL is how long such a token is valid (default 1 h).
	TokenTTL time.Duration
	// Interval is the T.140 transmission interval: text waits at most
	// this long to be sent, redundancy is sent this often (default 300
	// ms, as RFC 4103 recommends).
	Interval time.Duration
	// Generations is the redundancy sent to callers (default 2).
	Generations int
	// SetupTimeout bounds attaching and joining the room (default 10 s).
	SetupTimeout time.Duration
	// KeepAlive is how often the front pings each caller with OPTIONS in
	// the dialog (default 30 s), and KeepAliveTimeout how long a ping may
	// go unanswered (default 15 s; the SIP stack resends it meanwhile). A
	// caller that does not answer, or answers 481 or 408, has vanished:
	// the call ends and its places are given back. Any other answer (200,
	// 405, ...) keeps the call.
	KeepAlive        time.Duration
	KeepAliveTimeout time.Duration
	// RTPAnyAddress lets a caller's SDP name any unicast address for its
	// text stream, where the front then sends the room's text and takes
	// the caller's RTP from; only a loopback address from a caller that
	// is not on loopback is still refused. By default (false) an offer
	// (INVITE, re-INVITE) or an answer (in an ACK) whose text stream's
	// connection address is not the IP address the request came from is
	// refused: 488 to an INVITE or re-INVITE, a BYE (cause 488) ending
	// the call for an ACK (ErrForeignRTPAddr). Setting it opens a door:
	// anyone who reaches the front can have the node send RTP of their
	// text to any host and port the node reaches (docs/security.md). It
	// is for callers whose signalling comes from another address than
	// their media: through a SIP proxy that does not relay the media,
	// which should then be the only one to reach the front.
	RTPAnyAddress bool
	// PacketRate and PacketBurst bound the RTP packets a caller may send
	// a second (default 30, bursts of 60); more are dropped.
	PacketRate  float64
	PacketBurst int
	// Metrics, when set, receives the front's metrics
	// (switchboard_sip_*, docs/metrics.md); Listen fails if they are
	// registered there already.
	Metrics prometheus.Registerer
	// Logger receives the front's logs (default: discarded).
	Logger *slog.Logger

	// now is the clock of the call limits (default time.Now; the tests
	// set another).
	now func() time.Time
	// writeTimeout bounds each write on a TCP connection (default
	// connWriteTimeout; the tests set a shorter one).
	writeTimeout time.Duration
}

func (c *Config) fill() error {
	if c.NodeAddr == "" || c.NodeID == "" || c.Service == "" {
		return errors.New("sipfront: NodeAddr, NodeID and Service are required")
	}
	if c.Nodes == nil {
		return errors.New("sipfront: Nodes is required")
	}
	if c.Policy == nil {
		c.Policy = pick.Default(pick.DefaultRand())
	}
	if c.MaxCalls <= 0 {
		c.MaxCalls = 100
	}
	if c.MaxCallsPerSource <= 0 {
		c.MaxCallsPerSource = 4
	}
	if c.MaxUnconfirmedCalls <= 0 {
		c.MaxUnconfirmedCalls = max(1, c.MaxCalls/4)
	}
	if c.AckGrace <= 0 {
		c.AckGrace = 2 * time.Second
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 256
	}
	if c.MaxConnsPerSource <= 0 {
		c.MaxConnsPerSource = 16
	}
	if c.ConnIdleTimeout <= 0 {
		c.ConnIdleTimeout = 2 * time.Minute
	}
	if c.writeTimeout <= 0 {
		c.writeTimeout = connWriteTimeout
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = time.Hour
	}
	if c.Interval <= 0 {
		c.Interval = 300 * time.Millisecond
	}
	if c.Generations <= 0 {
		c.Generations = t140.DefaultGenerations
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = 30 * time.Second
	}
	if c.KeepAliveTimeout <= 0 {
		c.KeepAliveTimeout = 15 * time.Second
	}
	if c.SetupTimeout <= 0 {
		c.SetupTimeout = 10 * time.Second
	}
	if c.PacketRate <= 0 {
		c.PacketRate = 30
	}
	if c.PacketBurst <= 0 {
		c.PacketBurst = 60
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Server is a SIP front. Serve it, then Shutdown (or Close).
type Server struct {
	cfg     Config
	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	dialogs *sipgo.DialogServerCache
	contact sip.ContactHeader
	log     *slog.Logger

	udp  net.PacketConn
	tcp  net.Listener
	lim  *connLimiter // tcp, as sipgo serves it
	addr netip.AddrPort
	m    *metrics
	// refusedLog samples the lines about calls refused for a limit, and
	// evictedLog those about unacknowledged calls that gave their places
	// up (limits).
	refusedLog, evictedLog logsample.Sampler
	// badLog samples the lines about INVITEs answered before any limit
	// counts them (a room name that is not one, no SDP offer, no node,
	// a redirect), each kind apart: anyone who reaches the port can send
	// them as fast as they like.
	badLog logsample.Kinds

	mu     sync.Mutex
	closed bool
	calls  map[string]*call // by dialog ID
	limits *limits          // every call's place, from admission to its end
	wg     sync.WaitGroup
	// running counts the calls' goroutines (call.run); each is added
	// under mu while the front is not closed.
	running  sync.WaitGroup
	stopOnce sync.Once
	// flushCtx bounds the waits of ended calls for their callers' text
	// to be stored (call.store); stopFlushes cancels it. flushing counts
	// those waits: each is added under mu while flushStopped is false,
	// as its call ends (call.finish).
	flushCtx     context.Context
	flushCancel  context.CancelFunc
	flushStopped bool // guarded by mu
	flushing     sync.WaitGroup
}

// Listen opens the front's UDP and TCP sockets on addr (the same port for
// both; port 0 lets the kernel choose) and returns a Server ready to
// Serve.
func Listen(addr string, cfg Config) (*Server, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, calls: map[string]*call{},
		limits: newLimits(cfg.MaxCalls, cfg.MaxCallsPerSource, cfg.MaxUnconfirmedCalls, cfg.AckGrace),
		m:      newMetrics(), refusedLog: logsample.Sampler{Period: 5 * time.Second}, evictedLog: logsample.Sampler{Period: 5 * time.Second},
		badLog: logsample.Kinds{Period: 5 * time.Second}}
	s.flushCtx, s.flushCancel = context.WithCancel(context.Background())
	var err error
	for range 10 {
		if s.udp, err = net.ListenPacket("udp", addr); err != nil {
			return nil, fmt.Errorf("sipfront: listening on UDP %s: %w", addr, err)
		}
		if s.tcp, err = net.Listen("tcp", s.udp.LocalAddr().String()); err == nil {
			break
		}
		s.udp.Close()
		if _, port, _ := net.SplitHostPort(addr); port != "0" {
			return nil, fmt.Errorf("sipfront: listening on TCP %s: %w", addr, err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sipfront: listening on TCP: %w", err)
	}
	s.lim = newConnLimiter(s.tcp, cfg.MaxConns, cfg.MaxConnsPerSource, cfg.ConnIdleTimeout, cfg.writeTimeout, s.log, s.m)
	if cfg.Metrics != nil {
		if err := s.m.register(cfg.Metrics, s); err != nil {
			s.closeSockets()
			return nil, err
		}
	}
	s.addr = s.udp.LocalAddr().(*net.UDPAddr).AddrPort()
	s.addr = netip.AddrPortFrom(s.addr.Addr().Unmap(), s.addr.Port())
	host := s.addr.Addr().String()
	// sipgo's logs, which say what strangers sent, go to the front's
	// logger, thinned and cut (log.go).
	sh := newSIPGoHandler(s.log.Handler())
	defaultSink.Store(sh)
	sl := slog.New(sh)
	// The stack dials no TCP or TLS connection of its own (noDial): the
	// front's own requests go out on connections it opens itself
	// (connLimiter.Dial), counted in its limits.
	if s.ua, err = sipgo.NewUA(sipgo.WithUserAgent("switchboard"), sipgo.WithUserAgentHostname(host),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(sl), sip.WithTransportLayerTransports(sip.TransportsConfig{
			TCP: &sip.TransportTCP{DialerCreate: noDial},
			TLS: &sip.TransportTLS{TransportTCP: &sip.TransportTCP{DialerCreate: noDial}},
		})),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(sl))); err != nil {
		s.closeSockets()
		return nil, fmt.Errorf("sipfront: %w", err)
	}
	if s.srv, err = sipgo.NewServer(s.ua, sipgo.WithServerLogger(sl)); err != nil {
		s.closeSockets()
		return nil, fmt.Errorf("sipfront: %w", err)
	}
	cl, err := sipgo.NewClient(s.ua, sipgo.WithClientHostname(host), sipgo.WithClientPort(int(s.addr.Port())), sipgo.WithClientLogger(sl))
	if err != nil {
		s.closeSockets()
		return nil, fmt.Errorf("sipfront: %w", err)
	}
	s.contact = sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: host, Port: int(s.addr.Port())}}
	s.dialogs = sipgo.NewDialogServerCache(cl, s.contact)
	s.srv.OnInvite(s.onInvite)
	s.srv.OnAck(s.onAck)
	s.srv.OnBye(s.onBye)
	s.srv.OnOptions(s.onOptions)
	// The transaction layer answers a CANCEL of an INVITE it holds (200,
	// then 487 to the INVITE; setup's OnCancel stops the call's setup).
	// One that matches no INVITE comes here: 481, as RFC 3261 section 9.2
	// says, or its sender would send it again for 32 s.
	s.srv.OnCancel(func(req *sip.Request, tx sip.ServerTransaction) {
		reply(req, tx, 481, "Call/Transaction Does Not Exist")
	})
	return s, nil
}

func (s *Server) closeSockets() {
	if s.udp != nil {
		s.udp.Close()
	}
	if s.tcp != nil {
		s.tcp.Close()
	}
	if s.lim != nil {
		s.lim.out.Close()
	}
}

// Addr is the address the front listens on (UDP and TCP).
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Serve answers SIP on the front's sockets until Shutdown; it then
// returns ErrClosed.
func (s *Server) Serve() error {
	errc := make(chan error, 3)
	go func() { errc <- s.srv.ServeUDP(s.udp) }()
	go func() { errc <- s.srv.ServeTCP(s.lim) }()
	// The connections the front opens to callers (connLimiter.Dial).
	go func() { errc <- s.srv.ServeTCP(s.lim.out) }()
	err := <-errc
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		<-errc
		<-errc
		return ErrClosed
	}
	return fmt.Errorf("sipfront: serving: %w", err)
}

// Calls counts the calls in progress.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// Shutdown ends every call with a BYE whose Reason says the node is
// stopping, once the node has stored the caller's text the bridge holds
// (for up to 5 s), waits for them and for the calls that ended before
// to have their text stored (until ctx ends), and closes the sockets.
func (s *Server) Shutdown(ctx context.Context) error {
	calls := s.closeCalls()
	var ends sync.WaitGroup
	for _, c := range calls {
		ends.Go(func() {
			// The call goes on while its text is stored, taking what the
			// caller still types; its end then has nothing more to store.
			c.flush(ctx)
			c.end(ctx, "the node is shutting down", true)
		})
	}
	ends.Wait()
	// Every call that could still store its text was held, and has
	// ended: no wait is added to flushing from here on.
	done := make(chan struct{})
	go func() { s.wg.Wait(); s.flushing.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("sipfront: shutting down: %w", ctx.Err())
	}
	// The waits still under way give their text up now, and return.
	s.stopFlushes()
	s.flushing.Wait()
	s.stop()
	return err
}

// stopFlushes ends the waits of ended calls for their text to be stored,
// and has the calls that end from now on close their sessions at once.
func (s *Server) stopFlushes() {
	s.mu.Lock()
	s.flushStopped = true
	s.mu.Unlock()
	s.flushCancel()
}

// closeCalls marks the front closed to new calls and returns the calls in
// progress.
func (s *Server) closeCalls() []*call {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	calls := make([]*call, 0, len(s.calls))
	for _, c := range s.calls {
		calls = append(calls, c)
	}
	return calls
}

// stop closes the sockets and the SIP stack, once.
func (s *Server) stop() {
	s.stopOnce.Do(func() {
		s.closeSockets()
		s.ua.Close()
	})
}

// Close stops the front at once, as a node that must stop now: every
// call ends without a BYE (its member leaves the room), and the sockets
// close. Callers learn of it only by their own means (keepalive pings,
// docs/rtp.md). Use Shutdown to stop gracefully.
func (s *Server) Close() error {
	calls := s.closeCalls()
	// Text that ended calls wait to have stored is given up too.
	s.stopFlushes()
	for _, c := range calls {
		c.end(context.Background(), "the node's SIP front closed", false)
	}
	// The calls' keepalives stop before the SIP stack closes: a ping
	// sent after would make the stack a new UDP connection that nothing
	// closes. An ended call's goroutines return at once, and so do the
	// waits that stopFlushes cut short.
	s.running.Wait()
	s.flushing.Wait()
	s.stop()
	return nil
}

// reply answers a request outside any dialog.
func reply(req *sip.Request, tx sip.ServerTransaction, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
}

// ValidRoom reports whether name is a room name the service accepts:
// 1 to 64 bytes of ASCII letters, digits, '.', '_' and '-'.
func ValidRoom(name string) bool { return wire.RoomNameProblem(name) == "" }

// callerName is the member name of a caller: "sip:" and the From URI's
// user@host, cut to the 64 bytes a user name may have, without controls.
// A caller who withholds their name (RFC 3323's
// sip:anonymous@anonymous.invalid, or no user at all) is
// "anonymous-" and a tag drawn from the call's Call-ID: two such callers
// in a room are two members, each seeing the other's text (the bridge
// passes over text under its own member's name).
func callerName(req *sip.Request) string {
	from := req.From()
	user, host := "anonymous", "invalid"
	if from != nil {
		if from.Address.User != "" {
			user = from.Address.User
		}
		if from.Address.Host != "" {
			host = from.Address.Host
		}
	}
	if strings.EqualFold(user, "anonymous") {
		id := ""
		if c := req.CallID(); c != nil {
			id = c.Value()
		}
		sum := sha256.Sum256([]byte(id))
		user = "anonymous-" + hex.EncodeToString(sum[:4])
	}
	name := []rune("sip:" + user + "@" + host)
	var b strings.Builder
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\uFFFD' {
			continue
		}
		if b.Len()+len(string(r)) > 64 {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// sourceIP is the source a request counts against in the per-source
// limits (sourceOf).
func sourceIP(req *sip.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		host, _, _ := net.SplitHostPort(req.Source())
		a, _ := netip.ParseAddr(host)
		return sourceOf(a)
	}
	return sourceOf(ap.Addr())
}

// sourceOf is what the per-source limits count: an IPv4 address, or the
// /64 of an IPv6 address (forwarded.SourceHost, as the node's client
// listener counts). Counting each IPv6 address alone let one host take
// every place, from addresses of its own prefix.
func sourceOf(a netip.Addr) netip.Addr { return forwarded.SourceHost(a) }

// route decides where a call goes: here (ok false) or to another node's
// SIP address.
func (s *Server) route(req *sip.Request) (to *sip.Uri, err error) {
	if !s.cfg.Redirect {
		return nil, nil
	}
	if _, ok := req.Recipient.UriParams.Get(NodeParam); ok {
		// Redirected here by a node that picked: taken without picking
		// again, so a call is redirected once at most (nodes sharing a
		// host, or a SIPAddrOf that names this front for another node,
		// would otherwise send it round for ever), unless this node may
		// take no call now: the caller dials the service again.
		if !s.selfAvailable() {
			return nil, errNotAvailable
		}
		return nil, nil
	}
	res, err := s.cfg.Policy.Pick(s.cfg.Nodes(), pick.Request{})
	if err != nil {
		return nil, err
	}
	if res.Node.ID == s.cfg.NodeID {
		return nil, nil
	}
	addr, ok := s.sipAddrOf(res.Node)
	if !ok {
		return nil, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil
	}
	p, _ := strconv.Atoi(port)
	u := &sip.Uri{Scheme: "sip", User: req.Recipient.User, Host: host, Port: p, UriParams: sip.NewParams()}
	u.UriParams.Add(NodeParam, res.Node.ID)
	return u, nil
}

// errNotAvailable: a redirected call reached a node that is draining,
// full or not up.
var errNotAvailable = errors.New("sipfront: this node takes no call now (draining, full or not up)")

// selfAvailable reports whether the front's own node is up with room,
// as its directory lists it.
func (s *Server) selfAvailable() bool {
	for _, n := range s.cfg.Nodes() {
		if n.ID == s.cfg.NodeID {
			return n.Available()
		}
	}
	return false
}

func (s *Server) sipAddrOf(n directory.Node) (string, bool) {
	if s.cfg.SIPAddrOf != nil {
		return s.cfg.SIPAddrOf(n)
	}
	host, _, err := net.SplitHostPort(n.Addr)
	if err != nil || host == "" {
		return "", false
	}
	return net.JoinHostPort(host, strconv.Itoa(int(s.addr.Port()))), true
}

// admit takes a place under the call limits for a call from src
// (limits.admit), or says how to refuse it. When an unacknowledged call
// gives its place up, it is returned as evicted, out of the calls held:
// the caller ends it. An admitted call is counted in s.wg, and the caller
// marks it done when its setup ends.
func (s *Server) admit(src netip.Addr) (p *place, evicted *call, code int, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, 503, "Node Shutting Down"
	}
	p, gone, refused := s.limits.admit(src, s.cfg.now())
	switch refused {
	case "":
	case refusedTotal:
		s.m.callsRefused.WithLabelValues(refusedTotal).Inc()
		return nil, nil, 503, "Too Many Calls On This Node"
	case refusedPerSource:
		s.m.callsRefused.WithLabelValues(refusedPerSource).Inc()
		return nil, nil, 486, "Too Many Calls From Your Address"
	default:
		s.m.callsRefused.WithLabelValues(refusedUnconfirmed).Inc()
		return nil, nil, 503, "Too Many Calls Being Set Up"
	}
	if gone != nil && gone.call != nil {
		evicted = gone.call
		if s.calls[evicted.id] == evicted {
			delete(s.calls, evicted.id)
		}
	}
	// The call being set up counts for Shutdown from here, under mu with
	// the closed check: after a Shutdown's Wait began, no call counts up
	// from zero (the caller's Done ends it).
	s.wg.Add(1)
	return p, evicted, 0, ""
}

// release gives p back (once), for a call that was not answered.
func (s *Server) release(p *place) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits.free(p)
}

// confirm notes that c's caller acknowledged its 200; false when c gave
// its place up first.
func (s *Server) confirm(c *call) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.place != nil && s.limits.confirm(c.place)
}

func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if inDialog(req) {
		s.onReInvite(req, tx)
		return
	}
	if req.CallID() == nil {
		// The stack routes a request by Via and CSeq alone: one without
		// a Call-ID reaches here, and has no dialog to make.
		s.badLog.Log(s.log, slog.LevelInfo, "call refused: no Call-ID", "from", req.Source())
		reply(req, tx, 400, "Bad Request: No Call-ID")
		return
	}
	room := req.Recipient.User
	// The caller's strings, cut short: they are the caller's to choose.
	log := s.log.With("call", wire.Clip(req.CallID().Value(), 128), "from", req.Source(), "room", wire.Clip(room, 128))
	if !ValidRoom(room) {
		s.badLog.Log(log, slog.LevelInfo, "call refused: bad room name")
		reply(req, tx, 404, "Not Found: Not A Room Name")
		return
	}
	if ct := req.ContentType(); ct == nil || !strings.EqualFold(strings.TrimSpace(strings.Split(ct.Value(), ";")[0]), "application/sdp") {
		s.badLog.Log(log, slog.LevelInfo, "call refused: no SDP offer")
		reply(req, tx, 415, "Unsupported Media Type", sip.NewHeader("Accept", "application/sdp"))
		return
	}
	offer, err := textsdp.Parse(req.Body())
	switch {
	case errors.Is(err, textsdp.ErrNoText):
		s.badLog.Log(log, slog.LevelInfo, "call refused: no real-time text stream", "err", wire.Clip(err.Error(), 256))
		reply(req, tx, 488, "Not Acceptable Here: No Real-Time Text Stream", sip.NewHeader("Warning", `304 switchboard "m=text RTP/AVP with t140/1000 required"`))
		return
	case err != nil:
		s.badLog.Log(log, slog.LevelInfo, "call refused: malformed SDP", "err", wire.Clip(err.Error(), 256))
		reply(req, tx, 400, "Bad Request: Malformed SDP")
		return
	case offer.Held:
		// A call that begins on hold names no address to send text to,
		// nor one its text must come from.
		s.badLog.Log(log, slog.LevelInfo, "call refused: the offer's text stream has no address", "addr", offer.Addr.String())
		reply(req, tx, 488, "Not Acceptable Here: No Address For Text", sip.NewHeader("Warning", `301 switchboard "a unicast connection address required"`))
		return
	}
	if err := s.checkRTPAddr(offer, req); err != nil {
		// The front would send the room's text, chosen by whoever types
		// in it, to an address the caller chose: a third party's, or a
		// service only the node reaches. Refused before anything is set
		// up, as any other offer the front cannot take.
		s.badLog.Log(log, slog.LevelWarn, "call refused: the offer's RTP address is not the caller's", "err", err, "hint", foreignHint)
		reply(req, tx, 488, "Not Acceptable Here: RTP Address Not The Caller's", foreignRTPWarning(req))
		return
	}
	to, err := s.route(req)
	if err != nil {
		s.badLog.Log(log, slog.LevelInfo, "call refused: no node to take it", "err", err)
		reply(req, tx, 503, "Service Unavailable: No Node Up", sip.NewHeader("Retry-After", "5"))
		return
	}
	if to != nil {
		s.badLog.Log(log, slog.LevelInfo, "call redirected", "to", to.String())
		reply(req, tx, 302, "Moved Temporarily", &sip.ContactHeader{Address: *to})
		return
	}
	src := sourceIP(req)
	p, evicted, code, reason := s.admit(src)
	if evicted != nil {
		s.evictedLog.Log(log, slog.LevelInfo, "an answered call with no ACK gave its place up to a new call",
			"evicted", wire.Clip(evicted.dlg.InviteRequest.CallID().Value(), 128), "evicted_from", evicted.dlg.InviteRequest.Source())
		evicted.end(context.Background(), "no ACK within "+s.cfg.AckGrace.String()+" while a new call needed the place", false)
	}
	if p == nil {
		// A flood of calls over the limits costs the log one line
		// every 5 s; the metrics count every one.
		s.refusedLog.Log(log, slog.LevelInfo, "call refused", "reason", reason)
		reply(req, tx, code, reason, sip.NewHeader("Retry-After", "5"))
		return
	}
	defer s.wg.Done() // admit counted the call
	c, answer, err := s.setup(req, tx, room, offer, log)
	var res *sip.Response
	if err == nil {
		// The 200, set as the dialog's before anyone else sees the call.
		res = sip.NewSDPResponseFromRequest(c.dlg.InviteRequest, answer)
		res.AppendHeader(&s.contact)
		c.dlg.InviteResponse = res
	}
	s.mu.Lock()
	if err == nil {
		if s.closed {
			err = errors.New("the node is shutting down")
		} else {
			c.place = p
			s.calls[c.id] = c
			s.limits.answered(p, c, s.cfg.now())
		}
	}
	s.mu.Unlock()
	if err != nil {
		s.release(p)
		if c != nil {
			_ = c.dlg.Respond(503, "Service Unavailable: Node Shutting Down", nil)
			c.end(context.Background(), err.Error(), false)
		}
		return
	}
	// The front sends the 200 again until its ACK comes (RFC 3261,
	// section 13.3.1.4), as for a re-INVITE, rather than let the SIP
	// stack do it (DialogServerSession.RespondSDP): the stack's wait
	// cannot be cut short, and a call that gives its place up to another
	// (limits) must stop at once. The wait is set before the 200 goes:
	// its ACK may come at once.
	cseq := req.CSeq().SeqNo
	acked := c.awaitAck(cseq, false)
	if err := tx.Respond(res); err != nil {
		// A CANCEL came first, say: the transaction answered 487. The
		// call ends at once, with no text to store: the front reads the
		// caller's RTP only once the caller acknowledged the 200 (run).
		c.end(context.Background(), "answering: "+err.Error(), false)
		return
	}
	if !c.resend2xx(tx, res, acked) || !s.confirm(c) {
		// No ACK in 64*T1, or the call ended meanwhile (it gave its
		// place up, or the front is stopping).
		c.end(context.Background(), "no ACK for the 200", false)
		return
	}
	log.Info("call answered", "user", c.user, "rtp", c.rtpPeer().String(), "local", c.pc.LocalAddr().String(), "red", c.rtpFormat().RED != 0)
	s.mu.Lock()
	if s.closed {
		// Close came while the answer waited for its ACK, and ended the
		// call: nothing to run.
		s.mu.Unlock()
		return
	}
	s.running.Add(1) // under mu, so before a Close's Wait or not at all
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.running.Done()
		c.run()
	}()
}

// onAck takes the ACK of a 200: the call's first INVITE's (which
// confirms the call), or a re-INVITE's. The ACK of an INVITE that
// carried no offer (the 200 did) carries the caller's answer (RFC 3261,
// sections 13.2.1 and 14.2): the call takes it (call.takeAnswer), and
// one it cannot take (an address not the one the ACK came from, among
// others) ends the call with a BYE, as nothing can refuse an ACK.
func (s *Server) onAck(req *sip.Request, tx sip.ServerTransaction) {
	_ = s.dialogs.ReadAck(req, tx) // the first INVITE's confirms the stack's dialog
	c := s.heldCall(req)
	if c == nil {
		return
	}
	if c.awaiting(req.CSeq().SeqNo) {
		// The ACK of the first INVITE's 200 confirms the call here, not
		// when onInvite wakes to it: a new call that found a limit
		// reached in between would take the place of a call its caller
		// holds up. A re-INVITE's ACK finds the call confirmed.
		s.confirm(c)
	}
	if !c.acked(req.CSeq().SeqNo) {
		return // no answer due: no offer in the 200, or an ACK sent again
	}
	if err := c.takeAnswer(req); err != nil {
		if errors.Is(err, ErrForeignRTPAddr) {
			s.badLog.Log(c.log, slog.LevelWarn, "the caller's answer in its ACK names an RTP address not the caller's: ending the call",
				"err", err, "from", req.Source(), "hint", foreignHint)
		} else {
			c.log.Info("the caller's answer in its ACK cannot be taken: ending the call", "err", err)
		}
		c.finish(context.Background(), "the answer in the ACK cannot be taken: "+err.Error(), 488, true)
	}
}

func (s *Server) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if err := s.dialogs.ReadBye(req, tx); err != nil {
		reply(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	id, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		return
	}
	s.mu.Lock()
	c := s.calls[id]
	s.mu.Unlock()
	if c != nil {
		// The bridge may still hold text the caller typed before it hung
		// up: the node's chunk rate held it back, or the member was
		// failing over. The session closes once the node has stored it
		// (endStoring), off this goroutine: the BYE's 200 went out above.
		c.endStoring(context.Background(), "the caller hung up", false)
	}
}

// inDialog reports whether req belongs to a dialog (its To has a tag).
func inDialog(req *sip.Request) bool {
	to := req.To()
	return to != nil && to.Params != nil && to.Params.Has("tag")
}

// heldCall is the call a request inside a dialog belongs to, or nil.
func (s *Server) heldCall(req *sip.Request) *call {
	id, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[id]
}

// onReInvite answers an INVITE inside a dialog: a session refresh (RFC
// 4028, the caller refreshing) or a new offer. An offer of the same text
// stream gets 200 with the answer given before; one that changes only
// the stream's direction (a call put on hold with sendonly or inactive,
// or the RFC 2543 way with the address 0.0.0.0, or resumed) gets 200
// with a new answer (call.reoffer); one that changes anything else, or
// whose text stream's address is not the one the re-INVITE came from
// (ErrForeignRTPAddr), gets 488 (which leaves the session unchanged); a
// call the front does not hold gets 481. A re-INVITE without an offer
// gets 200 with the front's offer (call.offer), and its ACK must carry
// the answer (onAck); one that comes while that answer is due gets 491
// (RFC 3261, section 14.2).
func (s *Server) onReInvite(req *sip.Request, tx sip.ServerTransaction) {
	c := s.heldCall(req)
	if c == nil {
		reply(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	if !c.inOrder(req.CSeq().SeqNo) {
		// RFC 3261, section 12.2.2: a request below the dialog's remote
		// CSeq is out of order (a stale re-INVITE that would undo a
		// later hold or resume).
		reply(req, tx, 500, "Server Internal Error: CSeq Out Of Order")
		return
	}
	if c.answerDue() {
		// The front's offer, in the 200 to an INVITE without one, waits
		// for its answer in the ACK: no new offer until then.
		reply(req, tx, 491, "Request Pending", sip.NewHeader("Retry-After", "1"))
		return
	}
	var sdp []byte
	offerless := len(req.Body()) == 0
	if offerless {
		var err error
		if sdp, err = c.offer(); err != nil {
			reply(req, tx, 500, "Server Internal Error")
			return
		}
	} else {
		offer, err := textsdp.Parse(req.Body())
		peer, format := c.media()
		var addrErr error
		if err == nil {
			addrErr = s.checkRTPAddr(offer, req)
		}
		switch {
		case err != nil && !errors.Is(err, textsdp.ErrNoText):
			reply(req, tx, 400, "Bad Request: Malformed SDP")
			return
		case addrErr != nil:
			// Before the check of changes below, which refuses most
			// such offers too (the call's address is the caller's), so
			// that the Warning says why. A re-INVITE from another
			// address than the call's, naming the call's, is refused
			// here too: the rule is the INVITE's.
			s.badLog.Log(c.log, slog.LevelWarn, "re-INVITE refused: the offer's RTP address is not the caller's",
				"err", addrErr, "from", req.Source(), "hint", foreignHint)
			reply(req, tx, 488, "Not Acceptable Here: RTP Address Not The Caller's", foreignRTPWarning(req))
			return
		case err != nil || offer.Format != format || offer.Addr != peer && !offer.Held:
			reply(req, tx, 488, "Not Acceptable Here: Session Changes Not Supported",
				sip.NewHeader("Warning", `399 switchboard "the text stream cannot change during a call"`))
			return
		}
		if sdp, err = c.reoffer(offer); err != nil {
			reply(req, tx, 500, "Server Internal Error")
			return
		}
	}
	res := sip.NewSDPResponseFromRequest(req, sdp)
	res.AppendHeader(&s.contact)
	// The 2xx is the front's to send again until its ACK comes (RFC
	// 3261, section 13.3.1.4; RFC 6026): the transaction layer does not,
	// and absorbs the caller's retransmissions of the re-INVITE, so a
	// lost 2xx would otherwise leave the caller without an answer. The
	// wait is set before the 2xx goes: its ACK may come at once.
	cseq := req.CSeq().SeqNo
	acked := c.awaitAck(cseq, offerless)
	if err := tx.Respond(res); err != nil {
		c.acked(cseq)
		return
	}
	if !s.goCounted(func() { c.resend2xx(tx, res, acked) }) {
		c.acked(cseq) // the front is stopping: its calls end
	}
}

// goCounted runs f on a goroutine Shutdown waits for, unless the front
// is closed (then it runs nothing and returns false). The count is taken
// under mu with the closed check, so that none starts after a Shutdown's
// Wait began.
func (s *Server) goCounted(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Go(f)
	return true
}

// onOptions answers OPTIONS: outside a dialog with what the front
// supports; inside one (a caller's keepalive) with 200 while the call is
// held, else 481, so that a caller whose call this node lost (it
// restarted, say) learns that the call is gone.
func (s *Server) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if inDialog(req) && s.heldCall(req) == nil {
		reply(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	reply(req, tx, 200, "OK",
		sip.NewHeader("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS"),
		sip.NewHeader("Accept", "application/sdp"))
}

func randUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// preferSelf picks the front's own node while it is up, else what
// fallback picks: the bridged member stays with the RTP while it can.
func preferSelf(self string, fallback pick.Policy) pick.Policy {
	return pick.PolicyFunc(func(nodes []directory.Node, req pick.Request) (pick.Result, error) {
		for _, n := range nodes {
			if n.ID == self && n.Status == directory.Up && (req.Exclude == nil || !req.Exclude(n.ID)) {
				return pick.Result{Node: n, Reason: "the SIP front's own node"}, nil
			}
		}
		return fallback.Pick(nodes, req)
	})
}

// setup dials the bridge, joins the room, opens the RTP socket and
// writes the answer. On error the INVITE has been answered with an error.
func (s *Server) setup(req *sip.Request, tx sip.ServerTransaction, room string, offer textsdp.Media, log *slog.Logger) (*call, []byte, error) {
	dlg, err := s.dialogs.ReadInvite(req, tx)
	if err != nil {
		reply(req, tx, 400, "Bad Request: "+strings.ReplaceAll(err.Error(), "\r\n", " "))
		return nil, nil, err
	}
	fail := func(code int, reason string, err error, hdrs ...sip.Header) (*call, []byte, error) {
		log.Info("call refused", "reason", reason, "err", err)
		_ = dlg.Respond(code, reason, nil, hdrs...)
		dlg.Close()
		return nil, nil, err
	}
	_ = dlg.Respond(100, "Trying", nil)
	user := callerName(req)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.SetupTimeout)
	defer cancel()
	// A CANCEL (the caller hung up while it rang) stops the attach and
	// the join: the member would otherwise join the room, and leave it
	// only once the answer failed.
	if !tx.OnCancel(func(*sip.Request) { cancel() }) {
		cancel() // cancelled already, before this could be told
	}
	opts := append([]client.Option{
		client.WithUser(user),
		client.WithPolicy(preferSelf(s.cfg.NodeID, s.cfg.Policy)),
		client.WithClientName("switchboard-sip/1"),
		client.WithReconnectTimeout(30 * time.Second),
	}, s.cfg.ClientOptions...)
	if s.cfg.TokenKey != nil {
		key, svc, ttl := s.cfg.TokenKey, s.cfg.Service, s.cfg.TokenTTL
		opts = append(opts, client.WithTokenFunc(func(context.Context) (string, error) {
			now := time.Now()
			return token.Mint(key, token.Claims{User: user, Service: svc, Expires: now.Add(ttl), Rooms: []string{room}}, now)
		}))
	}
	sess, err := client.Dial(ctx, s.cfg.NodeAddr, opts...)
	if err != nil {
		return fail(503, "Service Unavailable: Cannot Attach", err, sip.NewHeader("Retry-After", "5"))
	}
	if _, err := sess.JoinWait(ctx, room); err != nil {
		sess.Close()
		var se *client.ServerError
		if errors.As(err, &se) {
			switch se.Code {
			case "unauthorized":
				return fail(403, "Forbidden: "+se.Message, err)
			case "limit":
				return fail(486, "Busy Here: "+se.Message, err)
			}
		}
		return fail(503, "Service Unavailable: Cannot Join The Room", err, sip.NewHeader("Retry-After", "5"))
	}
	ip := s.addr.Addr()
	if ip.IsUnspecified() {
		ip = netip.IPv4Unspecified()
	}
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		sess.Close()
		return fail(500, "Server Internal Error: No RTP Port", err)
	}
	local := netip.AddrPortFrom(s.answerAddr(req), pc.LocalAddr().(*net.UDPAddr).AddrPort().Port())
	sdpID := uint64(randUint32())
	answer, err := textsdp.Answer(offer, local, s.cfg.Generations, sdpID, 0)
	if err != nil {
		pc.Close()
		sess.Close()
		return fail(500, "Server Internal Error", err)
	}
	c := &call{
		srv: s, id: dlg.ID, dlg: dlg, room: room, user: user, log: log.With("user", user),
		peer: offer.Addr, format: offer.Format, local: local, sdpID: sdpID, pc: pc, sess: sess,
		answer: answer, ours: offer.Direction.Answer(), oursFmt: offer.Format,
		direction: offer.Direction, kinds: offer.Kinds, index: offer.Index, remoteCSeq: req.CSeq().SeqNo,
		done: make(chan struct{}),
	}
	return c, answer, nil
}

// answerAddr is the address put in the SDP answer: the front's own, or
// when it listens on all addresses, the one the caller dialled (an
// address in the Request-URI), else this host's address on the route
// back to the caller. The stack does not say which address an INVITE
// came in on, and a caller dialling a name (sip:lobby@chat.example)
// would otherwise be told 0.0.0.0 and send its text nowhere.
func (s *Server) answerAddr(req *sip.Request) netip.Addr {
	if !s.addr.Addr().IsUnspecified() {
		return s.addr.Addr()
	}
	if a, err := netip.ParseAddr(req.Recipient.Host); err == nil && !a.IsUnspecified() {
		return a.Unmap()
	}
	if src, err := netip.ParseAddrPort(req.Source()); err == nil {
		// Connecting a UDP socket sends nothing: it only asks the
		// kernel for the route, and so the local address, to src.
		if c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(src)); err == nil {
			// Without a zone: an IPv6 link-local address in SDP names
			// no interface, the peer's own being the one it uses.
			local := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap().WithZone("")
			c.Close()
			if !local.IsUnspecified() {
				return local
			}
		}
	}
	return netip.IPv4Unspecified()
}
