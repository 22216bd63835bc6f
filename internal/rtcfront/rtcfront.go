package rtcfront

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/forwarded"
	"github.com/switchboard/switchboard/internal/logsample"
	"github.com/switchboard/switchboard/internal/origin"
	"github.com/switchboard/switchboard/internal/token"
	"github.com/switchboard/switchboard/pick"
	"github.com/switchboard/switchboard/wire"
)

// Protocol is the data channel subprotocol of real-time text (RFC 8865).
const Protocol = "t140"

// Path is where cmd/switchboard mounts the front on the node's HTTP.
const Path = "/v1/rtc"

// ErrClosed is what a request gets (as 503) once Shutdown has begun.
var ErrClosed = errors.New("rtcfront: server closed")

// Config configures a Server. Zero values take the defaults said.
type Config struct {
	// Service is the service's name (for logs).
	Service string
	// NodeID is the ID of the node this front belongs to.
	NodeID string
	// NodeAddr is the node's client address the bridge dials (HOST:PORT):
	// where this host reaches the node's listener (serve gives
	// Node.LocalAddr), not the address it advertises.
	NodeAddr string
	// ClientOptions are added to the bridge's client.Dial (TLS, say).
	ClientOptions []client.Option
	// Policy is where the bridged member attaches when the front's own
	// node is not up (default pick.Default(pick.DefaultRand())).
	Policy pick.Policy
	// ICEAddr is the UDP address every peer's ICE, DTLS and SCTP run on
	// (one socket for all; port 0 lets the kernel choose). Its IP is the
	// host candidate the answers offer; an unspecified IP offers every
	// address of the host's interfaces. Required.
	ICEAddr string
	// MaxPeers is the most peers the front holds at once, those being set
	// up included, and those ended whose bridged session is still storing
	// their text (up to 5 s) (default 100).
	MaxPeers int
	// MaxPeersPerSource is the most peers from one source IP address,
	// counted as MaxPeers is (default 4): an IPv4 address, or an IPv6
	// /64. A request from the node's own host to the address it came
	// from (a proxy beside the node) is not counted per source.
	MaxPeersPerSource int
	// Directory is the service's directory now, which says which pages
	// are the service's own (origin.Allowed: a page of a node's HTTP
	// address or of the service's name may post offers); nil, or a nil
	// directory, leaves the other rules alone: loopback pages, and the
	// node's own origin when the browser reached it by address.
	Directory func() *wire.Directory
	// Origins are further pages that may post offers, host[:port]
	// patterns as serve's --ws-origins takes them.
	Origins []string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For the
	// front believes, to count the peers behind them by their own
	// addresses (default none: the header is ignored, and a request
	// counts against the address it came from). From a trusted proxy,
	// the source is the rightmost address of the header that is not a
	// trusted proxy's.
	TrustedProxies []netip.Prefix
	// MaxOffer bounds an SDP offer, in bytes (default 16 KiB).
	MaxOffer int
	// MaxMessage bounds one data channel message, in bytes: it is the
	// SCTP max-message-size the answers announce, and a peer that sends
	// a larger message is dropped (default 4096).
	MaxMessage int
	// MessageRate and MessageBurst bound the messages a peer may send a
	// second (default 30, bursts of 60); more are dropped, and the
	// room sees U+FFFD, T.140's mark of lost text, before the next.
	MessageRate  float64
	MessageBurst int
	// SetupTimeout bounds attaching and gathering the node's candidates,
	// before the answer is sent, and then, once the peer's channel is
	// open, joining the room (default 10 s each).
	SetupTimeout time.Duration
	// OpenTimeout bounds the time from the answer until the peer's t140
	// channel is open (default 30 s); a peer that takes longer is
	// dropped, having never been in the room. It holds its place in
	// MaxPeers and MaxPeersPerSource meanwhile.
	OpenTimeout time.Duration
	// SilenceTimeout is how long a connected peer from which nothing
	// arrives, not even an ICE consent check, is held before it is
	// dropped and leaves the room (default 30 s, the consent expiry of
	// RFC 7675). A browser checks consent every few seconds while the
	// page is open, so only a peer that vanished reaches it.
	SilenceTimeout time.Duration
	// Interval is T.140's transmission interval: text to the peer waits
	// at most this long so that keystrokes travel in few messages
	// (default 300 ms, as RFC 8865 recommends; text leaves at once when
	// none left in the last interval).
	Interval time.Duration
	// MaxBuffered is how much text may wait in a peer's channel unsent
	// before the peer is dropped as too slow (default 1 MiB).
	MaxBuffered int
	// Logger receives the front's logs (default: discarded).
	Logger *slog.Logger
}

func (c *Config) fill() error {
	if c.NodeAddr == "" || c.NodeID == "" || c.Service == "" || c.ICEAddr == "" {
		return errors.New("rtcfront: NodeAddr, NodeID, Service and ICEAddr are required")
	}
	if c.Policy == nil {
		c.Policy = pick.Default(pick.DefaultRand())
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxPeers, 100)
	def(&c.MaxPeersPerSource, 4)
	def(&c.MaxOffer, 16<<10)
	def(&c.MaxMessage, 4096)
	def(&c.MessageBurst, 60)
	def(&c.MaxBuffered, 1<<20)
	if c.MessageRate <= 0 {
		c.MessageRate = 30
	}
	if c.SetupTimeout <= 0 {
		c.SetupTimeout = 10 * time.Second
	}
	if c.OpenTimeout <= 0 {
		c.OpenTimeout = 30 * time.Second
	}
	if c.SilenceTimeout <= 0 {
		c.SilenceTimeout = 30 * time.Second
	}
	if c.Interval <= 0 {
		c.Interval = 300 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// refusalLogPeriod is how often at most the front logs a refused offer:
// refusals cost the requester nothing, and a client that posts bad offers
// as fast as it can must not write as many log lines.
const refusalLogPeriod = 5 * time.Second

// Server is a WebRTC front: an http.Handler for the signalling POST, and
// the peers it answered. Shutdown ends them.
type Server struct {
	cfg  Config
	log  *slog.Logger
	se   webrtc.SettingEngine // each peer's API is made from it
	udp  net.PacketConn
	mux  *guardedMux
	addr netip.AddrPort

	// limited is udp as the mux reads it; overRate samples its log.
	limited  *sourceLimitedConn
	overRate logsample.Sampler

	mu        sync.Mutex
	closed    bool
	peers     map[*peer]struct{}
	perSource map[string]int
	// places counts the places MaxPeers bounds: peers being set up,
	// held, or ended with their bridged session not closed yet.
	places   int
	tries    tokenTries
	refusals logsample.Sampler
	now      func() time.Time // the clock of tries (time.Now; tests set it)
	wg       sync.WaitGroup

	// flushCtx bounds the ended peers' waits for their text to be
	// stored; Shutdown cancels it when its own ctx ends.
	flushCtx    context.Context
	flushCancel context.CancelFunc

	// beforeRegister, when set (by tests), runs on each peer set up,
	// before offer registers it.
	beforeRegister atomic.Pointer[func(*peer)]
}

// New opens the front's ICE socket and returns a Server ready to serve
// HTTP.
func New(cfg Config) (*Server, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	udp, err := net.ListenPacket("udp", cfg.ICEAddr)
	if err != nil {
		return nil, fmt.Errorf("rtcfront: listening on UDP %s: %w", cfg.ICEAddr, err)
	}
	uc, ok := udp.(*net.UDPConn)
	if !ok {
		_ = udp.Close()
		return nil, fmt.Errorf("rtcfront: listening on UDP %s: a %T, not a UDP socket", cfg.ICEAddr, udp)
	}
	ua := uc.LocalAddr().(*net.UDPAddr).AddrPort()
	s := &Server{
		cfg: cfg, log: cfg.Logger, udp: udp,
		addr:  netip.AddrPortFrom(ua.Addr().Unmap(), ua.Port()),
		peers: map[*peer]struct{}{}, perSource: map[string]int{}, now: time.Now,
		refusals: logsample.Sampler{Period: refusalLogPeriod},
		overRate: logsample.Sampler{Period: refusalLogPeriod},
	}
	s.flushCtx, s.flushCancel = context.WithCancel(context.Background())
	quiet := logging.NewDefaultLoggerFactory()
	quiet.Writer = io.Discard
	ip := s.addr.Addr()
	// Packets over their source's rate are dropped before pion's mux
	// queues them (sourceLimitedConn).
	s.limited = newSourceLimitedConn(uc, func(from netip.AddrPort, n int64) {
		s.overRate.Log(s.log, slog.LevelWarn, "ICE socket: packets over their source's rate dropped", "from", from.String(), "rate", sourceRate, "dropped", n)
	})
	s.mux = newGuardedMux(webrtc.NewICEUDPMux(quiet.NewLogger("ice"), s.limited), ip.IsLoopback(), s.limited.limits.verified)
	var se webrtc.SettingEngine
	se.LoggerFactory = quiet
	se.SetICEUDPMux(s.mux)
	switch {
	case ip.IsUnspecified() && ip.Is6():
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	case ip.Is4():
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	default:
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP6})
	}
	if !ip.IsUnspecified() {
		se.SetIPFilter(func(a net.IP) bool {
			b, ok := netip.AddrFromSlice(a)
			return ok && b.Unmap() == ip
		})
	}
	se.SetIncludeLoopbackCandidate(ip.IsLoopback())
	// Browsers' host candidates may be mDNS names; the node neither
	// resolves nor sends any: the peer's checks reach the node's host
	// candidate and the node answers the address they came from.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// ICE lite (RFC 8445, 2.5): the node sends no checks of its own, and
	// answers those that reach it. A full agent checked every candidate
	// an offer listed, so that anyone who could post an offer had the
	// node send UDP to any address and port for as long as the
	// connection took to come up. The node has host candidates only,
	// which is what a lite agent may have, and the peer, a full agent,
	// finds the pair.
	se.SetLite(true)
	// A lite agent switches its selected pair to any pair a check with
	// USE-CANDIDATE nominates, whatever its priority (pion/ice's
	// controlledSelector, needsToCheckPriorityOnNominated), unless told
	// to compare priorities: with this set it switches only to a pair of
	// strictly higher priority than the selected one. It does not stop
	// a forged check (its PRIORITY is the sender's to choose, and one
	// with a NOMINATION attribute switches whatever the priorities):
	// the peer's guard drops STUN from any other address once the peer
	// is connected (remoteGuard.pin).
	se.SetICEUseCandidateCheckPriority(true)
	// The node is the DTLS server (its answers say a=setup:passive): it
	// speaks DTLS only in answer to the peer's ClientHello, from the
	// address of the pair the peer chose. As a client, the answer's
	// default role, it sent its ClientHello to whatever pair its agent
	// held (checkOffer).
	if err := se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
		s.flushCancel()
		_ = s.mux.Close()
		_ = udp.Close()
		return nil, fmt.Errorf("rtcfront: setting the DTLS role: %w", err)
	}
	// A peer silent for SilenceTimeout fails: the first part of it makes
	// its connection disconnected (which changes nothing here), the rest
	// failed (peer.go ends it). The keepalive is pion's own default.
	disconnected := min(5*time.Second, cfg.SilenceTimeout/2)
	se.SetICETimeouts(disconnected, cfg.SilenceTimeout-disconnected, 2*time.Second)
	se.SetSCTPMaxMessageSize(uint32(cfg.MaxMessage))
	se.SetSCTPMaxReceiveBufferSize(uint32(max(64<<10, 4*cfg.MaxMessage)))
	s.se = se
	return s, nil
}

// Addr is the UDP address of the front's ICE socket.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Peers counts the peers the front holds: answered and not ended, in
// their room or waiting for their channel to open.
func (s *Server) Peers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.peers)
}

// Shutdown refuses new peers, ends every peer (closing its connection,
// which the peer sees as its data channel closing, and its bridged
// session once the node has stored the peer's text, for up to 5 s),
// waits for them until ctx ends, and closes the ICE socket. When ctx
// ends first, the text not stored yet is given up.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	peers := make([]*peer, 0, len(s.peers))
	for p := range s.peers {
		peers = append(peers, p)
	}
	s.mu.Unlock()
	for _, p := range peers {
		p.end("the node is shutting down")
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("rtcfront: shutting down: %w", ctx.Err())
	}
	s.flushCancel()
	_ = s.mux.Close()
	_ = s.udp.Close()
	return err
}

// httpError is a refusal: its status and what the peer is told.
type httpError struct {
	code   int
	msg    string
	header [2]string
	// tokenRefused marks the node's refusal of a token the peer
	// presented (tokenTries counts them).
	tokenRefused bool
}

func (e *httpError) Error() string { return e.msg }

func refuse(code int, format string, args ...any) *httpError {
	return &httpError{code: code, msg: "rtcfront: " + fmt.Sprintf(format, args...)}
}

// ServeHTTP answers a POST of an SDP offer with the SDP answer (201
// Created), or a refusal with a status and a one-line reason:
//
//	400 no or bad room, no user, an offer that does not parse or has no data channel, or says a=ice-lite or a=setup:passive (checkOffer)
//	401 the service needs a token and none came (WWW-Authenticate: Bearer)
//	403 the token was refused, or the room is not one it allows; a page that may not post (ownPage)
//	405 neither POST nor a CORS preflight of a page that may post
//	413 an offer larger than MaxOffer
//	415 not application/sdp
//	429 MaxPeersPerSource reached, 3 tokens from the address refused in 10 s or being judged, or the node's limits (Retry-After)
//	503 MaxPeers reached, the node shutting down, the member could not attach, or the connection ended while it was set up
//
// The member joins the room only once the peer's channel is open; a
// join the node refuses then (the room full, say) is told to the peer
// as one line on its channel, which then closes.
//
// A page of another origin that may post offers (ownPage: another node
// of the service, say) has its preflight answered (204) and may read
// the answers (Access-Control-Allow-Origin), also when the browser asks
// whether a public page may reach a node on a private network (Private
// Network Access: Access-Control-Allow-Private-Network); any other
// page's preflight gets 405, and the browser posts nothing.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.allowOrigin(w, r) && r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", http.MethodPost)
		h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
		h.Set("Access-Control-Max-Age", strconv.Itoa(int(preflightMaxAge.Seconds())))
		if strings.EqualFold(r.Header.Get("Access-Control-Request-Private-Network"), "true") {
			h.Set("Access-Control-Allow-Private-Network", "true")
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "rtcfront: POST an SDP offer here", http.StatusMethodNotAllowed)
		return
	}
	answer, err := s.offer(r)
	if err != nil {
		var he *httpError
		if !errors.As(err, &he) {
			he = refuse(http.StatusInternalServerError, "%v", err)
		}
		if he.header[0] != "" {
			w.Header().Set(he.header[0], he.header[1])
		}
		s.refusals.Log(s.log, slog.LevelInfo, "WebRTC peer refused", "from", r.RemoteAddr, "status", he.code, "reason", he.msg)
		http.Error(w, he.msg, he.code)
		return
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// credentials are who the peer says it is: a token (the user it names),
// or a plain user name.
type credentials struct {
	user  string
	token string
	// rooms are the rooms the token allows (none: any); believed only
	// once the node has verified the token.
	rooms []string
}

// roomAllowed applies the token's rooms as the node does at a join.
func (c credentials) roomAllowed(room string) bool {
	return token.Claims{Rooms: c.rooms}.RoomAllowed(room)
}

// tokenClaims are the claims the front reads from a token it does not
// verify itself.
type tokenClaims struct {
	jwt.RegisteredClaims
	Rooms []string `json:"rooms,omitempty"`
}

// credential reads who the peer says it is.
func credential(r *http.Request) (credentials, *httpError) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, t, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(t) == "" {
			return credentials{}, refuse(http.StatusUnauthorized, "Authorization must be \"Bearer TOKEN\"")
		}
		tok := strings.TrimSpace(t)
		// The node verifies the token when the bridge attaches with it;
		// the user it names is read here only to attach under that name.
		var claims tokenClaims
		if _, _, perr := jwt.NewParser().ParseUnverified(tok, &claims); perr != nil || claims.Subject == "" {
			return credentials{}, refuse(http.StatusUnauthorized, "the token is malformed")
		}
		if q := r.URL.Query().Get("user"); q != "" && q != claims.Subject {
			return credentials{}, refuse(http.StatusForbidden, "the token names another user than %q", q)
		}
		return credentials{user: claims.Subject, token: tok, rooms: claims.Rooms}, nil
	}
	user := r.URL.Query().Get("user")
	if user == "" {
		return credentials{}, refuse(http.StatusBadRequest, "name the user (?user=NAME), or present a token (Authorization: Bearer TOKEN) where the service needs one")
	}
	return credentials{user: user}, nil
}

// ownPage reports whether a request from a browser comes from a page of
// the service (origin.Allowed): a page of another site may not make its
// visitors join rooms, nor a DNS-rebinding page reach a node that only
// the visitor's network can.
func (s *Server) ownPage(r *http.Request) bool {
	var dir *wire.Directory
	if s.cfg.Directory != nil {
		dir = s.cfg.Directory()
	}
	return origin.Allowed(r, dir, s.cfg.Origins)
}

// preflightMaxAge is how long a browser may keep the answer to a page's
// CORS preflight (browsers cap it: Chromium at 2 hours, Firefox at 24).
const preflightMaxAge = 10 * time.Minute

// allowOrigin lets the page named in the request's Origin read the
// answer (CORS) when it is one that may post offers (ownPage), and
// reports whether it is. The page posts to the node it picked, usually
// of another origin than the node that served it: posting
// application/sdp, or with Authorization, the browser first asks in a
// preflight (OPTIONS), and reads no answer without
// Access-Control-Allow-Origin. Any other page gets none.
func (s *Server) allowOrigin(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Add("Vary", "Origin")
	o := r.Header.Get("Origin")
	if o == "" || !s.ownPage(r) {
		return false
	}
	w.Header().Set("Access-Control-Allow-Origin", o)
	return true
}

// validRoom: 1 to 64 bytes of ASCII letters, digits, '.', '_' and '-'.
func validRoom(name string) bool { return wire.RoomNameProblem(name) == "" }

// sourceIP is what the per-source limit counts a request against:
// forwarded.SourceKey's key, an IPv4 address or the /64 of an IPv6
// address (what one subscriber usually holds, as the node's client
// listener counts). Counting each
// IPv6 address alone let one host take every place, from addresses of
// its own prefix. The address is the request's peer's, or, from a
// trusted proxy, the client it forwards (forwarded.Proxies.Client).
//
// It is "", counted against MaxPeers only, for a client on the node's
// own host that reached the HTTP listener at the address it came from:
// a reverse proxy beside the node, carrying many users, as the node's
// HTTP listener does not count it per address either. Counted, every
// peer behind such a proxy was one source: the fifth got 429, and three
// forged tokens shut all of them out for 10 s. A proxy listed in
// TrustedProxies has its clients counted apart.
func sourceIP(r *http.Request, trusted []netip.Prefix) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr // not TCP: counted as it is
	}
	client := forwarded.Proxies(trusted).Client(ap.Addr(), r.Header.Values("X-Forwarded-For"))
	if local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr); forwarded.OwnHost(local, client) {
		return ""
	}
	return forwarded.SourceKey(client)
}

// checkOffer checks that the offer parses and has an SCTP data channel
// section (m=application ... webrtc-datachannel), and refuses an offer
// that would have the node send first to an address the offer names.
// The node is an ICE lite agent, which sends no checks: what it sends
// goes where the peer's checks came from, once a pair is chosen (by
// the peer, a full agent). Two things broke that:
//
//   - a=ice-lite: two lite agents choose a pair with no check at all
//     (RFC 8445, 6.1.1), the pair of the offer's first candidate, and the
//     node's DTLS went there at once: anyone who could post an offer
//     aimed the node's UDP at any address and port;
//   - a=setup:passive: the peer waits for the node's DTLS ClientHello.
//     The node answers a=setup:passive itself (DTLS server, New), and
//     speaks DTLS only in answer to the peer's.
func checkOffer(offer []byte) *httpError {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(offer); err != nil {
		return refuse(http.StatusBadRequest, "the SDP offer does not parse: %v", err)
	}
	refused := func(attrs []sdp.Attribute) *httpError {
		for _, a := range attrs {
			switch {
			case strings.TrimSpace(a.Key) == sdp.AttrKeyICELite:
				return refuse(http.StatusBadRequest, "the SDP offer says a=ice-lite: the node is an ICE lite agent, and takes offers of full agents only (as browsers are)")
			case strings.TrimSpace(a.Key) == "setup" && strings.EqualFold(strings.TrimSpace(a.Value), sdp.ConnectionRolePassive.String()):
				return refuse(http.StatusBadRequest, "the SDP offer says a=setup:passive: the node is the DTLS server; offer a=setup:actpass (as browsers do) or active")
			}
		}
		return nil
	}
	if e := refused(sd.Attributes); e != nil {
		return e
	}
	channel := false
	for _, m := range sd.MediaDescriptions {
		if e := refused(m.Attributes); e != nil {
			return e
		}
		if m.MediaName.Media != "application" || m.MediaName.Port.Value == 0 {
			continue
		}
		channel = channel || slices.Contains(m.MediaName.Protos, "SCTP")
	}
	if !channel {
		return refuse(http.StatusBadRequest, "the SDP offer has no data channel (m=application UDP/DTLS/SCTP webrtc-datachannel): open the t140 data channel before creating the offer")
	}
	return nil
}

// admit counts a peer being set up against the limits (and refuses an
// address that has used its token tries, tokenTries); release gives its
// place back, once the peer's bridged session is closed. A src of ""
// (the node's own host, sourceIP) counts against MaxPeers only. An
// offer withToken begins a token try of src, which offer settles once
// the node has judged the token.
func (s *Server) admit(src string, withToken bool) (release func(), err *httpError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		e := refuse(http.StatusServiceUnavailable, "the node is shutting down")
		e.header = [2]string{"Retry-After", "5"}
		return nil, e
	case s.places >= s.cfg.MaxPeers:
		e := refuse(http.StatusServiceUnavailable, "this node holds %d WebRTC peers, its most; pick another node", s.cfg.MaxPeers)
		e.header = [2]string{"Retry-After", "5"}
		return nil, e
	case src != "" && s.perSource[src] >= s.cfg.MaxPeersPerSource:
		e := refuse(http.StatusTooManyRequests, "%d WebRTC peers from your address already, the most", s.cfg.MaxPeersPerSource)
		e.header = [2]string{"Retry-After", "5"}
		return nil, e
	}
	if left, blocked := s.tries.blocked(src, s.now()); src != "" && blocked {
		e := refuse(http.StatusTooManyRequests, "%d tokens from your address were refused within %v; try again in %v", maxTokenTries, tokenTriesWindow, left.Round(time.Second))
		e.header = [2]string{"Retry-After", strconv.Itoa(int(math.Ceil(left.Seconds())))}
		return nil, e
	}
	if src != "" && withToken {
		if left, ok := s.tries.begin(src, s.now()); !ok {
			e := refuse(http.StatusTooManyRequests, "%d tokens from your address are being judged, or were refused within %v; try again in %v", maxTokenTries, tokenTriesWindow, left.Round(time.Second))
			e.header = [2]string{"Retry-After", strconv.Itoa(int(math.Ceil(left.Seconds())))}
			return nil, e
		}
	}
	s.places++
	if src != "" {
		s.perSource[src]++
	}
	s.wg.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.places--
			if src != "" {
				if s.perSource[src]--; s.perSource[src] <= 0 {
					delete(s.perSource, src)
				}
			}
			s.mu.Unlock()
			s.wg.Done()
		})
	}, nil
}

// offer checks the request, attaches the member, and answers the offer.
func (s *Server) offer(r *http.Request) (string, error) {
	if !s.ownPage(r) {
		return "", refuse(http.StatusForbidden, "this node takes offers only from the service's own pages (serve --ws-origins allows others)")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/sdp" {
		e := refuse(http.StatusUnsupportedMediaType, "the offer must be Content-Type application/sdp")
		e.header = [2]string{"Accept", "application/sdp"}
		return "", e
	}
	room := r.URL.Query().Get("room")
	if !validRoom(room) {
		return "", refuse(http.StatusBadRequest, "room %q: want 1 to 64 letters, digits, '.', '_' or '-' (?room=NAME)", room)
	}
	cred, herr := credential(r)
	if herr != nil {
		return "", herr
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.cfg.MaxOffer)+1))
	if err != nil {
		return "", refuse(http.StatusBadRequest, "reading the offer: %v", err)
	}
	if len(body) > s.cfg.MaxOffer {
		return "", refuse(http.StatusRequestEntityTooLarge, "the offer is larger than %d bytes", s.cfg.MaxOffer)
	}
	if herr := checkOffer(body); herr != nil {
		return "", herr
	}
	src := sourceIP(r, s.cfg.TrustedProxies)
	release, herr := s.admit(src, cred.token != "")
	if herr != nil {
		return "", herr
	}
	p, answer, err := s.setup(r.Context(), room, cred, string(body))
	if hook := s.beforeRegister.Load(); err == nil && hook != nil {
		(*hook)(p)
	}
	s.mu.Lock()
	if src != "" && cred.token != "" {
		he, ok := errors.AsType[*httpError](err)
		s.tries.settle(src, s.now(), ok && he.tokenRefused)
	}
	switch {
	case err == nil && s.closed:
		err = refuse(http.StatusServiceUnavailable, "the node is shutting down")
	case err == nil && p.ended():
		// The peer ended before it was registered (its connection
		// failed, say): end has already looked for it in s.peers.
		// Registered all the same, it stayed there for good, its place
		// given back, and every such peer was held forever.
		e := refuse(http.StatusServiceUnavailable, "the connection ended while it was being set up")
		e.header = [2]string{"Retry-After", "5"}
		err = e
	}
	if err == nil {
		p.release = release
		s.peers[p] = struct{}{}
	}
	s.mu.Unlock()
	if err != nil {
		if p == nil {
			release()
			return "", err
		}
		// The place is given back once the session is closed, as run
		// does.
		p.end(err.Error())
		go func() {
			<-p.closed
			release()
		}()
		return "", err
	}
	go p.run()
	return answer, nil
}

// preferSelf picks the front's own node while it is up, else what
// fallback picks: the member stays on the node that holds the peer.
func preferSelf(self string, fallback pick.Policy) pick.Policy {
	return pick.PolicyFunc(func(nodes []directory.Node, req pick.Request) (pick.Result, error) {
		for _, n := range nodes {
			if n.ID == self && n.Status == directory.Up && (req.Exclude == nil || !req.Exclude(n.ID)) {
				return pick.Result{Node: n, Reason: "the WebRTC front's own node"}, nil
			}
		}
		return fallback.Pick(nodes, req)
	})
}

// attach dials the bridge, which the node admits or refuses by the
// credential, turning the node's refusals into HTTP ones. The member
// joins no room yet: it does once the peer's channel is open (peer.join).
func (s *Server) attach(ctx context.Context, room, user, tok string) (*client.Session, error) {
	opts := append([]client.Option{
		client.WithUser(user),
		client.WithPolicy(preferSelf(s.cfg.NodeID, s.cfg.Policy)),
		client.WithClientName("switchboard-webrtc/1"),
		client.WithReconnectTimeout(30 * time.Second),
	}, s.cfg.ClientOptions...)
	if tok != "" {
		opts = append(opts, client.WithToken(tok))
	}
	sess, err := client.Dial(ctx, s.cfg.NodeAddr, opts...)
	if err == nil {
		return sess, nil
	}
	var se *client.ServerError
	if errors.As(err, &se) {
		switch {
		case se.Code == "unauthorized" && tok == "":
			e := refuse(http.StatusUnauthorized, "this service needs a token: Authorization: Bearer TOKEN (%s)", se.Message)
			e.header = [2]string{"WWW-Authenticate", `Bearer realm="` + s.cfg.Service + `"`}
			return nil, e
		case se.Code == "unauthorized":
			e := refuse(http.StatusForbidden, "%s", se.Message)
			e.tokenRefused = true
			return nil, e
		case se.Code == "limit":
			e := refuse(http.StatusTooManyRequests, "%s", se.Message)
			e.header = [2]string{"Retry-After", "5"}
			return nil, e
		case se.Code == "bad_request":
			return nil, refuse(http.StatusBadRequest, "%s", se.Message)
		}
	}
	e := refuse(http.StatusServiceUnavailable, "the member could not attach: %v", err)
	e.header = [2]string{"Retry-After", "5"}
	return nil, e
}

// setup answers the offer and attaches the member, who joins the room
// only once the peer's channel is open: a peer that never connects shows
// the room no one. The offer is checked by the WebRTC stack before the
// member attaches, and the node judges the credential at the attach, so
// that a bad offer or credential is refused here, over HTTP. A peer
// returned with an error has been started and must be ended.
func (s *Server) setup(ctx context.Context, room string, cred credentials, offer string) (*peer, string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SetupTimeout)
	defer cancel()
	// Each peer has an API of its own, for its ICE credentials: its
	// ufrag names its connections from the mux, which count the
	// addresses its packets come from (guardedMux).
	ufrag, pwd := iceCredentials()
	guard := s.mux.watch(ufrag, pwd)
	var p *peer
	defer func() {
		if p == nil { // else the peer forgets it when it ends
			s.mux.forget(ufrag)
		}
	}()
	se := s.se
	se.SetICECredentials(ufrag, pwd)
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, "", refuse(http.StatusInternalServerError, "creating the peer connection: %v", err)
	}
	answer, herr := accept(pc, offer)
	if herr != nil {
		_ = pc.Close()
		return nil, "", herr
	}
	sess, err := s.attach(ctx, room, cred.user, cred.token)
	if err != nil {
		_ = pc.Close()
		return nil, "", err
	}
	// The node has verified the token: the rooms it names are the ones
	// the node will let the member join.
	if !cred.roomAllowed(room) {
		sess.Close()
		_ = pc.Close()
		return nil, "", refuse(http.StatusForbidden, "the token does not allow room %s", room)
	}
	// The connection starts with the answer set: its callbacks are in
	// place before.
	p = newPeer(s, pc, sess, room, cred.user, ufrag)
	guard.setPeer(p)
	// Once the peer's ICE is connected, its guard drops STUN from any
	// address but the selected pair's (remoteGuard.pin): a check
	// replayed or forged from elsewhere nominated that address.
	pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(func(pair *webrtc.ICECandidatePair) {
		if pair == nil || pair.Remote == nil {
			return
		}
		// The node resolves no names (mDNS is off): a remote
		// candidate of the agent's is an IP address.
		if ip, err := netip.ParseAddr(pair.Remote.Address); err == nil {
			guard.pin(netip.AddrPortFrom(ip, pair.Remote.Port))
		}
	})
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return p, "", refuse(http.StatusInternalServerError, "setting the answer: %v", err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return p, "", refuse(http.StatusServiceUnavailable, "gathering the node's ICE candidates: %v", ctx.Err())
	}
	p.log.Info("WebRTC peer answered", "ice", s.addr.String())
	return p, pc.LocalDescription().SDP, nil
}

// accept sets the offer on pc and makes the answer, not set yet.
func accept(pc *webrtc.PeerConnection, offer string) (webrtc.SessionDescription, *httpError) {
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return webrtc.SessionDescription{}, refuse(http.StatusBadRequest, "the SDP offer was refused: %v", err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return webrtc.SessionDescription{}, refuse(http.StatusBadRequest, "no answer to this offer: %v", err)
	}
	return answer, nil
}

// String names the front in logs.
func (s *Server) String() string {
	return "WebRTC front on " + s.addr.String() + " (ICE over UDP), " + strconv.Itoa(s.cfg.MaxPeers) + " peers at most"
}
