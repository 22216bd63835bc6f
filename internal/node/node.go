package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/bus"
	"github.com/switchboard/switchboard/internal/dnsserver"
	"github.com/switchboard/switchboard/internal/proxyproto"
	"github.com/switchboard/switchboard/wire"
)

// Node is one running server. Its methods are safe for concurrent use.
type Node struct {
	cfg         Config
	log         *slog.Logger
	incarnation uint64
	seq         atomic.Uint64

	listener net.Listener // the client listener Start opened, if any
	sec      *security    // TLS, token and admin settings, loaded by New
	addr     string       // advertised client address
	httpSrv  *http.Server
	httpLn   net.Listener
	// httpAdvertised is the HTTP address in the directory (advertisedHTTP).
	httpAdvertised string
	httpMux        *http.ServeMux // routes added by HandleHTTP, then the node's own
	bus            *bus.Bus
	subs           []*nats.Subscription
	rooms          *roomEngine
	dns            *dnsserver.Server
	dnsAddr        string

	// The limits an operator may change while the node runs (SetLimits):
	// Config's Capacity, MaxConns and MaxConnsPerIP, defaults filled.
	capacity, maxConns, maxConnsPerIP atomic.Int64

	// Self state read by the run loop; written by sessions and operators.
	users    atomic.Int64
	draining atomic.Bool
	ready    atomic.Bool
	degraded atomic.Bool // no majority of the cluster seen (minority.go), or cannot store
	// majorityBack: degraded for want of a majority, which it sees again
	// while it waits out the grace (minority.recovering); for the reason
	// /readyz gives.
	majorityBack atomic.Bool
	// storageStopped: the embedded JetStream stopped and does not follow
	// its metadata leader again yet, or the external bus runs no
	// JetStream for the node (storage.go); the node is degraded while it
	// holds.
	storageStopped atomic.Bool
	// storageLeaderless: storageStopped holds because the embedded
	// JetStream runs but has known no metadata leader for too long.
	storageLeaderless atomic.Bool
	// storageRepairing: storageStopped holds because the node stopped
	// its embedded JetStream itself, to start again Raft groups that
	// stopped on a failed write (storage.go).
	storageRepairing atomic.Bool
	// busAnsweredAt: on an external bus, when the latest question its
	// JetStream answered was asked (nil: none yet), written by
	// watchBusStorage and read by the run loop and the rooms: the bus's
	// word that this node can store (busAnswered).
	busAnsweredAt atomic.Pointer[time.Time]
	changed       chan struct{} // users or draining changed: publish soon
	// busAsk asks watchBusStorage to ask its bus at once (the node just
	// lost sight of its majority: only an answer to a question asked
	// since vouches for it).
	busAsk chan struct{}
	// dirChanged receives (without blocking) after run has stored a view
	// showing a change of membership or status: the dashboard's monitor
	// reads the directory then rather than polling it.
	dirChanged chan struct{}

	drainMu  sync.Mutex // guards drainRun
	drainRun *drainRun  // the drain to empty under way or the last one (drain.go)
	// afterDrainCancel, when set (by tests), runs in SetDraining(false)
	// between the cancel and the status change.
	afterDrainCancel func()

	// entryMsgs carries the directory entries' messages from the bus to
	// run (subscribeEntries); queueEntry drops what does not fit.
	entryMsgs chan *nats.Msg
	syncReq   chan struct{}
	// answerReq carries the IDs of peers that asked for every entry
	// (a sync request naming them): run answers each alone.
	answerReq chan string
	// gone carries the bus's reports of closed connections (ConnName) to
	// run; nil without BusSystem.
	gone chan string
	// heartbeatMS is the heartbeat interval run uses now, in ms, for the
	// entries publishSelf sends.
	heartbeatMS atomic.Int64
	view        atomic.Pointer[view]
	parts       partCache     // each peer's encoded entry, for the next view
	pushGen     atomic.Uint64 // directory pushes so far (exchange.go)

	sessionsMu  sync.Mutex // guards sessions, perAddr and listeners
	sessions    map[*session]struct{}
	perAddr     addrCounts                // open sessions by source address (addrKey) and /48
	listeners   map[net.Listener]struct{} // every listener Serve is accepting on
	limitLog    *dropLog                  // refused connections and sessions closed by a deadline
	viewSources sourceBuckets             // the views drawn per source address (sourceviews.go)
	nextID      atomic.Uint64
	// queued is how many bytes wait in all sessions' queues, those of
	// the writes under way that took them out included (MaxQueueTotal).
	queued atomic.Int64

	metrics *metrics

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closed  atomic.Bool
	leaving atomic.Bool // Close (not Halt) is under way: report down
}

// view is an immutable snapshot of the directory, published by run.
type view struct {
	nodes []directory.Node // AgeMS as of taken
	taken time.Time
	enc   encodedView // the directory message, encoded on first use
	parts *partCache  // the node's, shared by its views; nil: encode all
}

// New checks cfg and prepares a node; Start runs it.
func New(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	sec, err := loadSecurity(&cfg)
	if err != nil {
		return nil, err
	}
	n := &Node{
		sec:         sec,
		cfg:         cfg,
		log:         cfg.Logger,
		incarnation: uint64(time.Now().UnixNano()),
		changed:     make(chan struct{}, 1),
		busAsk:      make(chan struct{}, 1),
		dirChanged:  make(chan struct{}, 1),
		entryMsgs:   make(chan *nats.Msg, entryQueue),
		syncReq:     make(chan struct{}, 1),
		answerReq:   make(chan string, 256),
		sessions:    make(map[*session]struct{}),
		perAddr:     make(addrCounts),
		httpMux:     http.NewServeMux(),
		listeners:   make(map[net.Listener]struct{}),
		limitLog:    newDropLog(cfg.Logger, dropLogEvery),
	}
	n.view.Store(&view{taken: time.Now()})
	n.storeLimits(Limits{Capacity: cfg.Capacity, MaxConns: cfg.MaxConns, MaxConnsPerIP: cfg.MaxConnsPerIP})
	return n, nil
}

// subjects of the directory exchange for one service.
func (n *Node) subject(kind string) string {
	return "switchboard." + strings.ReplaceAll(n.cfg.Service, ".", "_") + ".dir." + kind
}

// ErrClosed is what Serve returns once the node has been shut down or
// halted.
var ErrClosed = errors.New("node: closed")

// Start joins the bus, starts the directory exchange, the rooms, DNS and
// HTTP, and, when Config.Listen is set, listens there and serves clients
// on it (as Serve would). It returns once the node accepts clients; the
// node reports itself up after its first exchange with its peers. With
// Config.Listen empty the caller hands the node its listeners with Serve.
func (n *Node) Start(ctx context.Context) (err error) {
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			// Stopped here: a Shutdown or Halt after a failed Start (a
			// caller's deferred one) has nothing left to do.
			n.closed.Store(true)
			n.cancel()
			n.stopListeners()
			n.wg.Wait()
			if n.rooms != nil {
				n.rooms.stop(false)
				n.rooms.wait()
			}
			if n.bus != nil {
				n.bus.Close()
			}
		}
	}()
	if n.cfg.Listen != "" {
		n.listener, err = net.Listen("tcp", n.cfg.Listen)
		if err != nil {
			return fmt.Errorf("node: listening for clients: %w", err)
		}
		n.addr = advertised(n.cfg.Advertise, n.listener.Addr())
		if len(n.cfg.ProxyProtocolFrom) > 0 {
			// Below TLS: the load balancer passes the client's TLS through.
			n.listener = &proxyproto.Listener{Listener: n.listener, From: n.cfg.ProxyProtocolFrom.Contains}
		}
		if n.sec.tls != nil {
			n.listener = tls.NewListener(n.listener, n.sec.tls)
		}
	} else {
		n.addr = n.cfg.Advertise
	}
	if n.cfg.ID == "" {
		n.cfg.ID = n.addr
	}
	n.log = n.log.With("node", n.cfg.ID)
	if n.cfg.HTTP != "" {
		if n.httpLn, err = net.Listen("tcp", n.cfg.HTTP); err != nil {
			return fmt.Errorf("node: listening for HTTP: %w", err)
		}
		if len(n.cfg.ProxyProtocolFrom) > 0 {
			// Read before the limits count the connection, and before
			// net/http takes its address.
			n.httpLn = &proxyproto.HeaderListener{Listener: n.httpLn, From: n.cfg.ProxyProtocolFrom.Contains, Timeout: httpHeaderTimeout,
				Failed: func(remote net.Addr, err error) { n.refusedProxyHeader(remote.String(), err) }}
		}
		n.httpLn = &httpLimitListener{Listener: n.httpLn, slots: make(chan struct{}, maxHTTPConns), perIP: maxHTTPConnsPerIP, proxies: n.cfg.TrustedProxies, refused: func(remote, reason string) {
			n.metrics.connsRefused[reason].Inc()
			msg := "refusing an HTTP connection: too many open"
			if reason == refusedHTTPIdle {
				msg = "closing an idle HTTP connection to make room for a new one"
			}
			n.limitLog.sample(msg, "reason", reason, "remote", remote, "limit", maxHTTPConns, "limit_per_ip", maxHTTPConnsPerIP)
		}}
		if n.cfg.HTTPTLS {
			n.httpLn = tls.NewListener(n.httpLn, n.sec.tls)
		}
		n.httpAdvertised = advertisedHTTP(n.cfg.AdvertiseHTTP, n.httpLn.Addr(), n.addr)
	}
	dataDir := n.cfg.DataDir
	if dataDir == "" {
		if dataDir, err = defaultDataDir(n.cfg.Service, n.cfg.ID); err != nil {
			return err
		}
	}
	n.incarnation = n.nextIncarnation(dataDir) // incarnation.go
	n.bus, err = bus.Open(ctx, bus.Config{
		Name:        sanitize(n.cfg.ID),
		ClusterName: n.cfg.Service,
		Cluster:     n.cfg.Cluster,
		Join:        n.cfg.Join,
		External:    n.cfg.Bus,
		JetStream:   n.cfg.Bus == "",
		StoreDir:    dataDir,
		Monitor:     n.cfg.NATSMonitor,
		Logger:      n.log,
		Secret:      n.cfg.ClusterSecret,
		TLSCert:     n.cfg.ClusterCert,
		TLSKey:      n.cfg.ClusterKey,
		TLSCA:       n.cfg.ClusterCA,
		Insecure:    n.cfg.InsecureCluster,
		Dir: bus.DirSubjects{
			Entries: n.subject("entry"),
			Own:     n.entrySubject(n.cfg.ID),
			Direct:  n.directSubject(),
			Sync:    n.subject("sync"),
		},
		ExternalCA:     n.cfg.BusCA,
		ExternalCert:   n.cfg.BusCert,
		ExternalKey:    n.cfg.BusKey,
		ExternalCreds:  n.cfg.BusCreds,
		ExternalSystem: n.cfg.BusSystem,
		DirReconnected: func() {
			// A new connection: publish the entry naming it at once.
			select {
			case n.syncReq <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		return err
	}
	n.metrics = newMetrics(n)
	if err := n.subscribe(); err != nil {
		return err
	}
	if err := n.watchDisconnects(); err != nil {
		return err
	}
	n.rooms = newRoomEngine(n)
	if err := n.rooms.start(); err != nil {
		return err
	}
	if n.cfg.DNS != "" {
		if err := n.startDNS(ctx); err != nil {
			return err
		}
	}
	if n.httpLn != nil {
		n.httpSrv = &http.Server{Handler: n.httpHandler(), ReadHeaderTimeout: httpHeaderTimeout, IdleTimeout: httpIdleTimeout, MaxHeaderBytes: maxHTTPHeader,
			ErrorLog: log.New(httpErrorLog{n}, "", 0)}
		n.wg.Go(func() {
			if err := n.httpSrv.Serve(n.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				n.log.Error("HTTP server stopped", "err", err)
			}
		})
	}
	n.wg.Go(n.run)
	if n.cfg.Bus == "" {
		n.wg.Go(func() { n.watchStorage(dataDir) })
	} else {
		n.wg.Go(func() { n.watchBusStorage(n.rooms.conns[0], n.rooms.js) })
	}
	if n.cfg.Rebalance.On() {
		n.wg.Go(n.rebalanceLoop)
	}
	if n.sec.tls != nil && n.cfg.ClusterSecret != "" {
		n.wg.Go(n.rotateTicketKeys)
	}
	if n.listener != nil {
		ln := n.listener
		n.wg.Go(func() { _ = n.Serve(ln) })
	}
	n.logPosture()
	n.logDescriptorHeadroom()
	n.log.Info("node started", "service", n.cfg.Service, "listen", n.addr, "http", n.HTTPAddr(), "http_advertised", n.httpAdvertised, "cluster", n.ClusterAddr(), "dns", n.dnsAddr)
	return nil
}

// subscribe listens, on the directory connection, for the peers' entries
// (subscribeEntries) and sync requests.
func (n *Node) subscribe() error {
	nc := n.bus.Dir
	subs, err := n.subscribeEntries()
	n.subs = append(n.subs, subs...)
	if err != nil {
		return err
	}
	sub, err := nc.Subscribe(n.subject("sync"), func(m *nats.Msg) {
		// A sync request names the node asking (an older node's is
		// empty, and gets the entry broadcast). A name no directory
		// would hold, or a full queue, drops the request: the asker
		// hears this node at its next heartbeat.
		if len(m.Data) == 0 {
			select {
			case n.syncReq <- struct{}{}:
			default:
			}
			return
		}
		if len(m.Data) > directory.DefaultLimits().MaxField {
			return
		}
		select {
		case n.answerReq <- string(m.Data):
		default:
		}
	})
	if err != nil {
		return fmt.Errorf("node: subscribing to sync requests: %w", err)
	}
	n.subs = append(n.subs, sub)
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("node: flushing subscriptions: %w", err)
	}
	return nil
}

// ID is the node's ID.
func (n *Node) ID() string { return n.cfg.ID }

// Service is the common service name.
func (n *Node) Service() string { return n.cfg.Service }

// Addr is the advertised client address.
func (n *Node) Addr() string { return n.addr }

// LocalAddr is where this process reaches its own client listener: the
// address it is bound to, loopback standing for all interfaces; Addr when
// the node has no listener of its own. The node's SIP and WebRTC fronts
// dial it, so their members' connections stay on the host whatever
// --advertise names (a NAT's public address, say, which the host may not
// reach, or reach only from elsewhere and count per address).
func (n *Node) LocalAddr() string {
	if n.listener == nil {
		return n.addr
	}
	// The TLS and PROXY protocol listeners wrapped around it say its address.
	tcp, ok := n.listener.Addr().(*net.TCPAddr)
	if !ok {
		return n.addr
	}
	ap := tcp.AddrPort()
	ip := ap.Addr().Unmap()
	if ip.IsUnspecified() {
		// [::] as well: the listener is dual-stack ("tcp"), and 127.0.0.1
		// is there on hosts without IPv6.
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	return netip.AddrPortFrom(ip, ap.Port()).String()
}

// HTTPAddr is the bound HTTP address, or "" when HTTP is off. The
// directory lists AdvertisedHTTP.
func (n *Node) HTTPAddr() string {
	if n.httpLn == nil {
		return ""
	}
	return n.httpLn.Addr().String()
}

// AdvertisedHTTP is the HTTP address the node puts in the directory
// (Config.AdvertiseHTTP), or "" when HTTP is off.
func (n *Node) AdvertisedHTTP() string { return n.httpAdvertised }

// ClusterAddr is the bound route listener, or "" without one.
func (n *Node) ClusterAddr() string {
	if n.bus == nil {
		return ""
	}
	if a := n.bus.ClusterAddr(); a != nil {
		return a.String()
	}
	return ""
}

// DNSAddr is the DNS responder's bound address, or "" when it is off.
func (n *Node) DNSAddr() string { return n.dnsAddr }

// Users is the number of attached sessions.
func (n *Node) Users() int { return int(n.users.Load()) }

// Ready reports whether the node has finished starting.
func (n *Node) Ready() bool { return n.ready.Load() }

// JetStreamCurrent reports whether the embedded JetStream knows its meta
// leader and is current with it; true with an external --bus.
func (n *Node) JetStreamCurrent() bool { return n.bus == nil || n.bus.JetStreamCurrent() }

// RoomsReady reports whether the node's room engine can store and load
// rooms: JetStream has elected its leaders and the rooms' stream exists.
// Until then joins wait, up to Config.StoreTimeout.
func (n *Node) RoomsReady() bool { return n.rooms != nil && n.rooms.Ready() }

// RoomReplicas returns the replicas the rooms' storage has as far as this
// node knows (0 before it is ready) and the replicas it means to raise
// them to: Config.Replicas, or min(3, nodes not down) in an embedded
// cluster. While have < want, losing one node may leave a room's stream
// without a quorum.
func (n *Node) RoomReplicas() (have, want int) {
	if n.rooms == nil {
		return 0, 0
	}
	return int(n.rooms.replicas.Load()), n.rooms.desiredReplicas()
}

// Status is the status the node reports about itself.
func (n *Node) Status() directory.Status {
	if n.leaving.Load() {
		return directory.Down
	}
	return directory.StatusFor(n.ready.Load(), n.degraded.Load(), n.draining.Load(), int(n.users.Load()), int(n.capacity.Load()))
}

// StatusReason says why a degraded node stepped aside (it cannot store,
// cannot reach its bus, or cannot see a majority of its cluster), for
// /readyz; "" for every other status.
func (n *Node) StatusReason() string {
	if n.Status() != directory.Degraded {
		return ""
	}
	return n.degradedWhy()
}

// SetDraining turns draining on or off: a draining node admits no new
// sessions and leaves the directory's available nodes, while its attached
// sessions stay (Drain moves them). Turning it off stops a drain under
// way.
func (n *Node) SetDraining(on bool) {
	if !on {
		// The cancel and the status change are one step to Drain (which
		// holds drainMu): one between them would start a drain the
		// status change then undoes, left running on a node not draining.
		n.drainMu.Lock()
		defer n.drainMu.Unlock()
		n.cancelDrainLocked()
		if n.afterDrainCancel != nil {
			n.afterDrainCancel()
		}
	}
	if n.draining.Swap(on) != on {
		n.log.Info("draining", "on", on)
		n.notifyChange()
	}
}

// Nodes returns the current directory, with ages as of now.
func (n *Node) Nodes() []directory.Node {
	v := n.view.Load()
	elapsed := time.Since(v.taken).Milliseconds()
	nodes := make([]directory.Node, len(v.nodes))
	for i, node := range v.nodes {
		node.AgeMS += elapsed
		nodes[i] = node
	}
	return nodes
}

// availableNodes is the lock-free, allocation-light read the DNS responder
// makes on every query; AgeMS is not adjusted.
func (n *Node) availableNodes() []directory.Node { return n.view.Load().nodes }

// Directory returns the directory message a hello is answered with.
func (n *Node) Directory() *wire.Directory {
	return &wire.Directory{Service: n.cfg.Service, Self: n.cfg.ID, Nodes: n.Nodes()}
}

// DirectoryChanges returns a channel that receives after each change of
// the directory's membership or of a node's status, once Nodes shows
// it; changes close together may arrive as one (web.Notifier).
func (n *Node) DirectoryChanges() <-chan struct{} { return n.dirChanged }

func (n *Node) notifyChange() {
	select {
	case n.changed <- struct{}{}:
	default:
	}
}

// Shutdown tells the peers this node is leaving, stops accepting on every
// listener, tells every session the server is shutting down, closes them
// and stops the node. It waits for every goroutine the node started until
// ctx ends, and then returns ctx's error wrapped. Serve calls return
// ErrClosed. Calling it again, or after Halt, does nothing.
func (n *Node) Shutdown(ctx context.Context) error {
	if n.closed.Swap(true) || n.cancel == nil {
		return nil
	}
	n.leaving.Store(true)
	// Say goodbye first so peers drop this node at once rather than after
	// missed heartbeats.
	n.publishSelf(time.Now(), directory.Down)
	if n.bus != nil {
		_ = n.bus.Conn.FlushTimeout(time.Second)
	}
	return n.shutdown(ctx, wire.Errorf(wire.CodeShutdown, "server is shutting down"))
}

// Halt stops the node without a goodbye, as a crash would look to its
// peers (who must notice the missed heartbeats) and its clients (whose
// connections drop). For failure tests.
func (n *Node) Halt() {
	if n.closed.Swap(true) || n.cancel == nil {
		return
	}
	_ = n.shutdown(context.Background(), nil)
}

func (n *Node) shutdown(ctx context.Context, reason *wire.Error) error {
	n.cancel()
	n.stopListeners()
	if n.bus != nil {
		for _, s := range n.subs {
			_ = s.Unsubscribe()
		}
	}
	if n.rooms != nil {
		// Before the sessions close: a graceful stop publishes their
		// leaves at once, and neither stop lets them publish one each.
		n.rooms.stop(reason != nil)
	}
	n.sessionsMu.Lock()
	sessions := make([]*session, 0, len(n.sessions))
	for s := range n.sessions {
		sessions = append(sessions, s)
	}
	n.sessionsMu.Unlock()
	closeSessions(sessions, reason)
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("node: waiting for goroutines: %w", ctx.Err())
	}
	if n.rooms != nil {
		n.rooms.wait()
	}
	if n.bus != nil {
		n.bus.Close()
	}
	n.log.Info("node stopped")
	return err
}

func (n *Node) stopListeners() {
	n.sessionsMu.Lock()
	for ln := range n.listeners {
		_ = ln.Close()
	}
	n.sessionsMu.Unlock()
	if n.listener != nil {
		_ = n.listener.Close()
	}
	if n.httpSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = n.httpSrv.Shutdown(sctx)
		cancel()
	} else if n.httpLn != nil {
		_ = n.httpLn.Close()
	}
	if n.dns != nil {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = n.dns.Shutdown(sctx)
		cancel()
	}
}

// Registry is the node's Prometheus registry.
func (n *Node) Registry() *prometheus.Registry { return n.metrics.registry }

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '-'
	}, s)
}
