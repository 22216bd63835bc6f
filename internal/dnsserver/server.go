package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard/switchboard/directory"
)

// listenAttempts is how many free UDP ports Start tries when Addr has port 0
// and another program holds the same port over TCP.
const listenAttempts = 8

// Server is an authoritative DNS responder for one zone, answering from the
// directory that Config.Nodes returns. Create it with New, run it with Start
// and stop it with Shutdown; or use it as a dns.Handler without sockets.
type Server struct {
	cfg Config
	log *slog.Logger

	params atomic.Pointer[zoneParams]
	zone   atomic.Pointer[zone]
	serial atomic.Uint32
	rotors rotors // round-robin counters, one per record set
	// building lets one query at a time build the zone: the others that
	// find it out of date meanwhile answer from the zone before it (at
	// most one build old; answers live 5 s in caches anyway), or, when
	// there is none yet, wait for it, rather than each build it again (at
	// 1,000 nodes a build takes milliseconds).
	building sync.Mutex

	counts counters
	limit  *rateLimiter          // nil: UDP replies are not limited
	exempt func(netip.Addr) bool // clients the UDP rate and TCP per-host limits spare
	now    func() time.Time      // the limiter's clock

	// servingState is what Config.Serving said when last asked (the
	// serving* constants), kept to log its changes; servingMu lets one
	// query at a time record a change.
	servingState atomic.Int32
	servingMu    sync.Mutex

	mu    sync.Mutex // guards the fields below
	state int
	addr  string
	loops []*loop
}

const (
	stateNew = iota
	stateRunning
	stateClosed
)

// New checks cfg, fills its defaults and returns a Server that is not yet
// listening. Its ServeDNS and Answer work at once.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "dnsserver", "zone", cfg.Zone)}
	// Serials only need to grow between snapshots; start from the clock so a
	// restarted node does not go back.
	s.serial.Store(uint32(time.Now().Unix()))
	s.setParams(cfg.NSAddrs)
	if cfg.RateLimit > 0 {
		s.limit = newRateLimiter(cfg.RateLimit)
	}
	// Packets with a loopback source do not arrive from other hosts, so
	// they cannot be spoofed from outside.
	s.exempt = netip.Addr.IsLoopback
	s.now = time.Now
	return s, nil
}

func (s *Server) setParams(nsAddrs []netip.Addr) {
	origin := s.cfg.Zone
	s.params.Store(&zoneParams{
		origin:     origin,
		srvName:    SRVLabel + "." + origin,
		nodeSuffix: NodeLabel + "." + origin,
		nsName:     s.cfg.NS,
		hostmaster: "hostmaster." + origin,
		ttl:        uint32(s.cfg.TTL / time.Second),
		nsAddrs:    nsAddrs,
		rot:        &s.rotors,
	})
}

// current returns the zone for the directory as Nodes reports it now,
// building it only when the snapshot's content changed.
func (s *Server) current() *zone {
	if z, _, _, ok := s.fresh(); ok {
		return z
	}
	if !s.building.TryLock() {
		if z := s.zone.Load(); z != nil {
			return z // being built: the one before it meanwhile
		}
		s.building.Lock()
	}
	defer s.building.Unlock()
	z, p, nodes, ok := s.fresh()
	if ok {
		return z // built while this query waited
	}
	nz := buildZone(p, nodes, s.serial.Add(1))
	s.zone.Store(nz)
	return nz
}

// fresh returns the zone when it is the one for the directory as Nodes
// reports it now (ok false: it must be built, from the params and nodes
// returned).
func (s *Server) fresh() (*zone, *zoneParams, []directory.Node, bool) {
	p := s.params.Load()
	nodes := s.cfg.Nodes()
	z := s.zone.Load()
	if z != nil {
		same, equal := z.matches(p, nodes)
		if same {
			return z, p, nodes, true
		}
		if equal {
			// A new snapshot with the same content: remember its identity
			// so the next query takes the fast path, unless a zone was
			// built meanwhile (a newer one, not to be replaced by this
			// copy of the one before it).
			nz := *z
			nz.src = nodes
			s.zone.CompareAndSwap(z, &nz)
			return &nz, p, nodes, true
		}
	}
	return nil, p, nodes, false
}

// Start binds Config.Addr over UDP and then TCP on the same port, and serves
// both until Shutdown. It returns once both sockets are serving, or with the
// error that kept them from it. ctx bounds the binding only; it does not stop
// the server later. Start starts two goroutines (one per socket) plus, while
// running, one per query in flight and one per TCP connection; Shutdown waits
// for all of them.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateNew {
		return errors.New("dnsserver: server already started")
	}
	pc, tln, err := listen(ctx, s.cfg.Addr)
	if err != nil {
		return err
	}
	ln := newTCPListener(tln, s.cfg.MaxTCPConns)
	ln.exempt = s.exempt
	ln.refused = func(remote net.Addr, reason string, limit int) {
		n := s.counts.tcpRefused.Add(1)
		if due(&s.counts.tcpLogged, time.Now()) {
			s.log.Warn("dns TCP connection over the limit closed", "remote", remote.String(), "reason", reason, "limit", limit, "max", s.cfg.MaxTCPConns, "closed_total", n)
		}
	}
	ln.writeFailed = func() { s.counts.tcpWriteFailed.Add(1) }
	bound := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	if ip := bound.Addr().Unmap(); len(s.cfg.NSAddrs) == 0 && !ip.IsUnspecified() {
		s.setParams([]netip.Addr{ip.WithZone("")})
	}

	s.loops = []*loop{
		// UDPSize is the read buffer: miekg/dns's default, 512 bytes,
		// would cut a longer query (EDNS0 options, padding) to a FORMERR.
		newLoop("udp", &dns.Server{PacketConn: pc, Handler: s, UDPSize: dns.DefaultMsgSize}),
		// Under load, connections accepted get a shorter idle timeout
		// (RFC 7766 section 6.2.3).
		newLoop("tcp", &dns.Server{Listener: ln, Handler: s, IdleTimeout: ln.idleTimeout}),
	}
	var errs []error
	for _, l := range s.loops {
		go l.run(s.log)
	}
	// Wait until each loop runs or has failed: only a running dns.Server
	// can be shut down.
	for _, l := range s.loops {
		select {
		case <-l.up:
		case err := <-l.done:
			l.finished = true
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		s.state = stateClosed
		errs = append(errs, s.stop(context.Background()))
		// A loop that failed before serving has not closed its socket.
		pc.Close()
		ln.Close()
		return errors.Join(errs...)
	}
	s.state = stateRunning
	s.addr = bound.String()
	s.log.Info("dns responder listening", "addr", s.addr)
	return nil
}

// loop is one dns.Server (UDP or TCP) and the goroutine serving it.
type loop struct {
	network  string
	srv      *dns.Server
	up       chan struct{} // closed once the server accepts queries
	done     chan error    // receives the serve goroutine's result, once
	finished bool          // done has been received from
}

func newLoop(network string, srv *dns.Server) *loop {
	l := &loop{network: network, srv: srv, up: make(chan struct{}), done: make(chan error, 1)}
	srv.NotifyStartedFunc = func() { close(l.up) }
	return l
}

// run serves until the server is shut down and reports the result on done.
func (l *loop) run(log *slog.Logger) {
	err := l.srv.ActivateAndServe()
	if err != nil {
		err = fmt.Errorf("dnsserver: serving %s: %w", l.network, err)
		log.Error("dns responder failed", "network", l.network, "err", err)
	}
	l.done <- err
}

// listen binds UDP on addr and TCP on the port UDP got. With port 0 it tries
// a few ports when TCP's is taken.
func listen(ctx context.Context, addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dnsserver: listening on %s: %w", addr, err)
	}
	attempts := 1
	if port == "0" {
		attempts = listenAttempts
	}
	var lc net.ListenConfig
	var lastErr error
	for range attempts {
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dnsserver: listening on udp %s: %w", addr, err)
		}
		ua := pc.LocalAddr().(*net.UDPAddr).AddrPort()
		tcpHost := host
		if !ua.Addr().IsUnspecified() {
			tcpHost = ua.Addr().String()
		}
		tcpAddr := net.JoinHostPort(tcpHost, strconv.Itoa(int(ua.Port())))
		ln, err := lc.Listen(ctx, "tcp", tcpAddr)
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = fmt.Errorf("dnsserver: listening on tcp %s: %w", tcpAddr, err)
	}
	return nil, nil, lastErr
}

// Addr is the UDP address the server is bound to (TCP uses the same port),
// e.g. "127.0.0.1:39521"; empty before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Shutdown stops both listeners and waits for the queries in flight and the
// server's goroutines to finish, or for ctx to end; then it returns any error
// the servers stopped with. It may be called before Start, and again after a
// ctx that ended too soon, to wait some more.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	running := s.state == stateRunning
	s.state = stateClosed
	err := s.stop(ctx)
	if running {
		s.log.Info("dns responder stopped", "addr", s.addr)
	}
	return err
}

// stop shuts down every loop still running and waits for its goroutine, or
// for ctx to end. Called with s.mu held.
func (s *Server) stop(ctx context.Context) error {
	var errs []error
	for _, l := range s.loops {
		if l.finished {
			continue
		}
		// A loop that already returned answers "server not started"; its
		// real result comes through done.
		_ = l.srv.ShutdownContext(ctx)
		select {
		case err := <-l.done:
			l.finished = true
			errs = append(errs, err)
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("dnsserver: shutting down %s: %w", l.network, ctx.Err()))
		}
	}
	return errors.Join(errs...)
}
