// Package bus connects a Switchboard node to the engine that carries
// traffic between servers: an embedded NATS server clustered by routes with
// the other nodes (the default), or an external NATS cluster.
//
// Open starts the embedded server (or dials the external one) and returns a
// Bus holding one NATS connection; Close drains that connection and stops
// the embedded server. Open blocks until the connection is usable; routes
// to peers form in the background.
//
// With Config.JetStream the embedded server also runs JetStream, storing
// under StoreDir. Without a cluster listener that is a standalone JetStream,
// ready at once. With one, the servers form a JetStream cluster whose
// metadata leader is elected only once at least two of them see each other
// (nats-server counts on at least two peers when it bootstraps): a seed
// started alone waits for its first peer before it can store anything. An
// external NATS (Config.External) brings its own JetStream, if enabled
// there.
//
// The embedded server logs through Config.Logger (component nats), its
// notices at debug level. Its warnings and errors are sampled: one line
// of a kind (one format of nats-server's) a minute at its level, the
// repeats in between at debug level, so that a long fault (a peer cut
// off, whose route is dialled again every second or two) does not flood
// the log.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/switchboard/switchboard/internal/pki"
)

// Config says which engine to use and how to reach it.
type Config struct {
	// Name names this server in the NATS cluster (the node ID).
	Name string
	// ClusterName is shared by every node of one service.
	ClusterName string
	// Cluster is the route listener, HOST:PORT; empty means no clustering
	// (a one-node cluster). ":0" and "HOST:0" pick a free port.
	Cluster string
	// Join lists seed nodes' cluster addresses, HOST:PORT.
	Join []string
	// External is a NATS URL (nats://...); when set no server is embedded.
	External string
	// JetStream enables JetStream on the embedded server, storing under
	// StoreDir. A clustered server's JetStream needs a configured route, so
	// a seed without Join gets a route to its own cluster listener, which
	// nats-server recognises and ignores.
	JetStream bool
	// StoreDir is where the embedded JetStream keeps its files.
	StoreDir string
	// Monitor is the embedded server's HTTP monitoring listener, HOST:PORT
	// ("127.0.0.1:8222"; ":0" and "HOST:0" pick a free port, an empty host
	// means every interface); empty, the default, turns it off. It serves
	// nats-server's /varz, /connz, /routez, /subsz, /jsz and /healthz
	// without authentication, so bind it to an address only operators
	// reach. An external NATS has its own: Open refuses Monitor with
	// External.
	Monitor string
	// Secret is the cluster's shared secret, at least MinSecret bytes.
	// Routes authenticate with a password derived from it (so the secret
	// itself never crosses the network), and the embedded server's
	// loopback client port admits OperatorUser with the secret as its
	// password. Without TLS the derived password travels in clear text.
	Secret string
	// TLSCert and TLSKey are this node's certificate and key (PEM files)
	// for the routes, and TLSCA the CA that signed every peer's: routes
	// then run TLS verified both ways, and a server without a certificate
	// from that CA forms none. The certificate must name the cluster
	// address peers dial (an IP or DNS SAN) and allow both server and
	// client authentication.
	TLSCert, TLSKey, TLSCA string
	// Insecure runs a cluster listener with neither Secret nor TLS: any
	// server that reaches it joins. Without it Open refuses such a
	// cluster with ErrInsecureCluster.
	Insecure bool
	// Dir names the directory exchange's subjects: only Bus.Dir may
	// publish entries, and only its own (embedded server only; an
	// external NATS enforces what its operator configured).
	Dir DirSubjects
	// ExternalCA is the CA file that verifies the external NATS's
	// certificate; ExternalCert and ExternalKey a client certificate for
	// it; ExternalCreds a NATS credentials file (JWT and nkey seed).
	ExternalCA, ExternalCert, ExternalKey, ExternalCreds string
	// ExternalSystem is a NATS URL with a user of the external NATS's
	// system account (nats://USER:PASSWORD@HOST:PORT,...), for
	// WatchDisconnects; ExternalCA and the client certificate apply to it
	// too, ExternalCreds does not. Empty: no watch.
	ExternalSystem string
	// DirReconnected, when set, is called (from nats.go's callback
	// goroutine) each time the directory connection reconnects, under a
	// new ConnName.
	DirReconnected func()
	// StartTimeout bounds how long Open waits for the embedded server
	// (default 30 s: a JetStream server on a busy machine can take
	// several seconds; a port in use is reported at once, before this).
	StartTimeout time.Duration
	// Logger receives the engine's warnings and errors.
	Logger *slog.Logger
}

// Bus is an open connection to the engine.
type Bus struct {
	// Conn is the NATS connection; it is safe for concurrent use. On the
	// embedded server it may not publish directory entries.
	Conn *nats.Conn
	// Dir is the directory exchange's connection: on the embedded server
	// it may publish only Config.Dir.Own and Config.Dir.Sync and subscribe
	// only to the directory. It does not receive its own messages.
	Dir    *nats.Conn
	server *server.Server
	cfg    Config
	// opts is a copy of the options the embedded server started with,
	// its JetStream's storage limit set to the one JetStream chose at the
	// start, for RestartJetStream.
	opts *server.Options
	// The embedded server's passwords for the node's users, and for the
	// system user (a clustered server with JetStream; ForgetPeer).
	nodePassword, dirPassword, sysPassword string
	external                               []nats.Option
	// systemOpts are external's options without the credentials file,
	// for the watch's connection (WatchDisconnects); watch is that
	// connection, nil without one.
	systemOpts []nats.Option
	watch      *nats.Conn
	// routeCert is the routes' certificate (Config.TLSCert); nil without
	// route TLS.
	routeCert *pki.KeyPair
	// regroupOn is the external server Regroup moves the node's
	// connections to (nil: none, or they are on one server again:
	// Regrouped); each connection's reconnect tries it first, once
	// (regroupTarget).
	regroupOn atomic.Pointer[regroupTo]
}

// Open starts or dials the engine described by cfg.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.External != "" {
		if cfg.Monitor != "" {
			return nil, errors.New("bus: Monitor serves the embedded server's monitoring; an external NATS has its own")
		}
		ext, err := externalOptions(cfg)
		if err != nil {
			return nil, err
		}
		sysCfg := cfg
		sysCfg.ExternalCreds = ""
		sys, err := externalOptions(sysCfg)
		if err != nil {
			return nil, err
		}
		cfg.External = serverOrder(cfg.External, rand.Shuffle)
		b := &Bus{cfg: cfg, external: ext, systemOpts: sys}
		if err := b.connectBoth(); err != nil {
			return nil, err
		}
		return b, nil
	}
	if err := checkSecurity(cfg); err != nil {
		return nil, err
	}
	b := &Bus{cfg: cfg}
	var err error
	if b.nodePassword, err = randomPassword(); err != nil {
		return nil, err
	}
	if b.dirPassword, err = randomPassword(); err != nil {
		return nil, err
	}
	if b.sysPassword, err = randomPassword(); err != nil {
		return nil, err
	}
	var ns *server.Server
	for attempt := 1; ; attempt++ {
		opts, routeCert, err := serverOptions(cfg)
		if err != nil {
			return nil, err
		}
		if cfg.JetStream && attempt == 1 {
			if err := writable(cfg.StoreDir); err != nil {
				return nil, err
			}
		}
		opts.Users = users(cfg, b.nodePassword, b.dirPassword)
		if cfg.JetStream && cfg.Cluster != "" {
			withSystemUser(opts, b.sysPassword)
		}
		if err = bindable(opts.Cluster.Host, opts.Cluster.Port); err == nil {
			b.opts, b.routeCert = opts.Clone(), routeCert
			ns, err = startServer(cfg, opts)
		}
		// A cluster port this node drew itself (freePort) may be taken
		// by anyone between the draw and nats-server's bind: draw again.
		if errors.Is(err, errRoutePort) && portDrawn(cfg, opts) && attempt < startAttempts {
			cfg.Logger.Warn("the cluster port drawn was taken before the embedded NATS bound it; drawing another", "port", opts.Cluster.Port, "err", err)
			continue
		}
		if err != nil {
			return nil, err
		}
		break
	}
	if a := ns.MonitorAddr(); a != nil {
		cfg.Logger.Warn("NATS monitoring is on and unauthenticated: anyone who reaches it reads the server's varz, connz, routez and jsz", "addr", a.String())
	}
	logPosture(cfg, ns)
	b.server = ns
	if jc := ns.JetStreamConfig(); jc != nil && b.opts.JetStreamMaxStore <= 0 {
		// Restart with the limit nats-server set itself now (75% of the
		// space free). Computed again from a disk that was just full, it
		// could fall below what JetStream already stores, and this
		// server's streams would refuse every write.
		b.opts.JetStreamMaxStore = jc.MaxStore
	}
	if err := b.connectBoth(); err != nil {
		ns.Shutdown()
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// serverOrder is urls (comma-separated, as Config.External) in an order
// drawn with shuffle once for the node, which every connection of the
// node tries in turn (nats.DontRandomize). The node's connections then
// start on one server and, as a rule, move to the same next one, and the
// node shares its server's fate: on a server cut off from the rest of
// the bus all of it is cut off, not one connection in three. Drawn per
// connection (nats.go's default), a node on a three-server bus had a
// connection on every server: its directory could come from one side of
// a cut and its rooms from the other. Nodes still spread over the
// servers, each drawing its own order. The rule has exceptions
// (Regroup), which the node mends.
func serverOrder(urls string, shuffle func(n int, swap func(i, j int))) string {
	list := strings.Split(urls, ",")
	shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
	return strings.Join(list, ",")
}

// Regroup moves those of conns (connections of this bus to its external
// servers) that are not on the server most of them are on to that
// server, and returns how many it moved. The node's connections try the
// servers in one order (serverOrder), but that order holds only while
// their lists in nats.go stay alike: a connection that reconnected alone
// (a write timed out, a slow consumer closed) has put its server last in
// its own list, and servers learned from the bus's gossip are added in
// an order of each connection's own. Split over two servers, the node
// may see its directory on one side of a cut in the bus and store its
// rooms on the other. A connection moved tries that server once, then
// goes on through its own list as before. Of servers holding as many,
// the one that reached that count first in the order of conns wins.
// Call Regrouped once they are on one server again.
func (b *Bus) Regroup(conns []*nats.Conn) int {
	count := map[string]int{}
	var target regroupTo
	for _, nc := range conns {
		if u := nc.ConnectedUrl(); u != "" {
			count[u]++
			if target.url == "" || count[u] > count[target.url] {
				target = regroupTo{url: u, id: nc.ConnectedServerId()}
			}
		}
	}
	if target.url == "" {
		return 0
	}
	b.regroupOn.Store(&target)
	moved := 0
	for _, nc := range conns {
		if u := nc.ConnectedUrl(); u != "" && u != target.url && nc.ForceReconnect() == nil {
			moved++
		}
	}
	return moved
}

// Regrouped forgets the server Regroup named: the node's connections are
// on one server, and a later reconnect goes through each connection's
// list as usual.
func (b *Bus) Regrouped() { b.regroupOn.Store(nil) }

// regroupTo is the server Regroup moves connections to: its URL as the
// connections' lists hold it, and its server ID.
type regroupTo struct{ url, id string }

// NextServer moves every connection of conns to the next server of its
// list (nats.go's ForceReconnect), forgetting the server Regroup named.
func (b *Bus) NextServer(conns []*nats.Conn) {
	b.regroupOn.Store(nil)
	for _, nc := range conns {
		_ = nc.ForceReconnect() // closed: the node stops
	}
}

// regroupTarget is a connection's nats.go ReconnectToServer handler: the
// server Regroup named, if the connection did not just lose it, has not
// tried it since it was last on a server (tried), and its list holds it;
// else nats.go's own next server.
func (b *Bus) regroupTarget(tried *atomic.Bool) nats.ReconnectToServerHandler {
	return func(servers []nats.Server, lost nats.ServerInfo) (*nats.Server, time.Duration) {
		target := b.regroupOn.Load()
		if target == nil || target.id == lost.ID || tried.Swap(true) {
			return nil, 0
		}
		for i := range servers {
			if servers[i].URL != nil && servers[i].URL.String() == target.url {
				return &servers[i], 0
			}
		}
		return nil, 0
	}
}

// connectBoth opens Conn and Dir.
func (b *Bus) connectBoth() error {
	nc, err := b.Connect(b.cfg.Name)
	if err != nil {
		return err
	}
	dc, err := b.connectDir(b.cfg.Name + "-dir")
	if err != nil {
		nc.Close()
		return err
	}
	b.Conn, b.Dir = nc, dc
	return nil
}

// logPosture says plainly what the cluster listener lets in.
func logPosture(cfg Config, ns *server.Server) {
	addr := ns.ClusterAddr()
	if addr == nil {
		return
	}
	switch {
	case cfg.Secret == "" && cfg.TLSCert == "":
		cfg.Logger.Warn("the cluster is OPEN (insecure cluster): any server that reaches the cluster port joins, reads every room and publishes directory entries; give a cluster secret or TLS certificates", "cluster", addr.String())
	case cfg.TLSCert == "":
		cfg.Logger.Info("cluster routes authenticate with the cluster secret but travel in clear text: use cluster TLS where others can watch the network", "cluster", addr.String())
	default:
		cfg.Logger.Info("cluster routes run TLS, verified both ways", "cluster", addr.String(), "secret", cfg.Secret != "")
	}
}

// Connect opens one more connection to the engine, named name: in process
// to the embedded server, or to the external NATS. The caller closes it
// before Close. Each connection writes under a lock of its own, so a busy
// user of the bus (the rooms) spreads its traffic over a few. opts are
// more nats.go options, such as nats.NoEcho.
func (b *Bus) Connect(name string, opts ...nats.Option) (*nats.Conn, error) {
	return b.connect(name, userNode, b.nodePassword, opts...)
}

// connectDir opens the directory connection: without echo, as the
// embedded server's directory user.
func (b *Bus) connectDir(name string) (*nats.Conn, error) {
	return b.connectNotifying(name, userDir, b.dirPassword, b.cfg.DirReconnected, nats.NoEcho())
}

func (b *Bus) connect(name, user, password string, extra ...nats.Option) (*nats.Conn, error) {
	return b.connectNotifying(name, user, password, nil, extra...)
}

// connectNotifying is connect, calling reconnected (when not nil) each
// time the connection is back after a loss.
func (b *Bus) connectNotifying(name, user, password string, reconnected func(), extra ...nats.Option) (*nats.Conn, error) {
	// Asynchronous errors (a permissions violation, a slow consumer) go
	// to the log, not to nats.go's default of stderr.
	log := b.cfg.Logger
	extra = append([]nats.Option{nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		log.Warn("NATS connection error", "conn", name, "err", err)
	})}, extra...)
	if b.server == nil {
		// An external server that goes away (killed, restarted, cut off)
		// is said in the log, and which server the connection found
		// instead (nats.go tries the URLs given and those the servers
		// gossip). The embedded server's in-process connections never
		// drop.
		//
		// on is the server the connection is on, or was on when it
		// dropped (nats.go no longer names it then). nats.go calls these
		// handlers one at a time, in order, on one goroutine: the connect
		// handler first.
		var on string
		var tried atomic.Bool // regroupTarget's, since the connection was last on a server
		opts := append([]nats.Option{
			nats.Name(name),
			nats.MaxReconnects(-1),
			reconnectBackoff(),
			nats.ConnectHandler(func(nc *nats.Conn) { on = nc.ConnectedServerName() }),
			nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
				if nc.IsClosed() || err == nil {
					// Close and Drain call it too, and ForceReconnect
					// without an error: the node's own doing.
					return
				}
				log.Warn("lost a connection to the bus; reconnecting", "conn", name, "server", on, "err", err)
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) {
				tried.Store(false)
				lost := on
				on = nc.ConnectedServerName()
				log.Info("reconnected to the bus", "conn", name, "server", on, "url", nc.ConnectedUrlRedacted(), "lost", lost)
				if reconnected != nil {
					reconnected()
				}
			}),
			// Every connection of the node tries the servers in one
			// order (serverOrder), not each in an order of its own.
			nats.DontRandomize(),
			nats.ReconnectToServer(b.regroupTarget(&tried)),
		}, append(staleDetection(), b.external...)...)
		nc, err := nats.Connect(b.cfg.External, append(opts, extra...)...)
		if err != nil {
			return nil, fmt.Errorf("bus: connecting to %s: %w", RedactURLs(b.cfg.External), withoutURL(err))
		}
		return nc, nil
	}
	opts := []nats.Option{nats.InProcessServer(b.server), nats.Name(name), nats.MaxReconnects(-1), nats.UserInfo(user, password)}
	if reconnected != nil {
		opts = append(opts, nats.ReconnectHandler(func(*nats.Conn) { reconnected() }))
	}
	nc, err := nats.Connect("", append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("bus: connecting in process: %w", err)
	}
	return nc, nil
}

// MaxPayload is the largest message the embedded server accepts (8 MiB,
// the most nats-server recommends): room snapshots can pass the NATS
// default of 1 MiB.
const MaxPayload = 8 << 20

// MaxLocalConns is the most connections the embedded server of a
// clustered node holds on its loopback client port, the node's own in
// process included (two, and one per room stream: at most 258); a
// connection past it gets nats-server's "maximum connections exceeded"
// and is closed.
const MaxLocalConns = 512

// serverOptions are the embedded server's options for cfg, and the
// routes' certificate when they use TLS.
func serverOptions(cfg Config) (*server.Options, *pki.KeyPair, error) {
	opts := &server.Options{
		ServerName: cfg.Name,
		DontListen: true,
		NoSigs:     true,
		NoLog:      false,
		JetStream:  cfg.JetStream,
		StoreDir:   cfg.StoreDir,
		MaxPayload: MaxPayload,
	}
	if cfg.JetStream && cfg.StoreDir == "" {
		return nil, nil, errors.New("bus: JetStream needs a store directory")
	}
	if cfg.Monitor != "" {
		host, port, err := monitorAddr(cfg.Monitor)
		if err != nil {
			return nil, nil, err
		}
		opts.HTTPHost, opts.HTTPPort = host, port
	}
	if cfg.Cluster == "" {
		if len(cfg.Join) > 0 {
			return nil, nil, errors.New("bus: joining peers needs a cluster listener")
		}
		return opts, nil, nil
	}
	host, portText, err := net.SplitHostPort(cfg.Cluster)
	if err != nil {
		return nil, nil, fmt.Errorf("bus: cluster address %q: %w", cfg.Cluster, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return nil, nil, fmt.Errorf("bus: cluster address %q: bad port", cfg.Cluster)
	}
	joins := 0
	for _, seed := range cfg.Join {
		if strings.TrimSpace(seed) != "" {
			joins++
		}
	}
	selfRoute := cfg.JetStream && joins == 0
	if host == "" {
		host = "0.0.0.0"
	}
	if port == 0 {
		port = server.RANDOM_PORT
		if selfRoute {
			// The self route must name the port before the server binds it.
			if port, err = freePort(host); err != nil {
				return nil, nil, err
			}
		}
	}
	// nats-server starts routing only after its client listener is up
	// (with DontListen it never does), so a clustered node listens for
	// NATS clients on a random loopback port. Every client there must
	// authenticate: the node's users have passwords drawn at random by
	// Open, and the operator's is the cluster secret.
	opts.DontListen = false
	opts.Host = "127.0.0.1"
	opts.Port = server.RANDOM_PORT
	// Any local user can dial that port, and nats-server holds each
	// connection, with a descriptor, until it authenticates or its auth
	// timeout (2 s) ends it: bounded, so that a local flood cannot take
	// the descriptors the node holds back for storage and peers. The
	// bound counts the node's own connections (in process, made at start:
	// two and one per room stream, at most 258 in all) and leaves the rest to
	// operators.
	opts.MaxConn = MaxLocalConns
	opts.Cluster = server.ClusterOpts{
		Name: sanitizeClusterName(cfg.ClusterName),
		Host: host,
		Port: port,
		// Peers learn each other's routes through gossip (implicit
		// routes). nats-server dials an implicit route that dropped
		// again ConnectRetries times only (none at 0 or below), a second
		// apart, and no one tells it of that peer again while both keep
		// their routes to a third: two nodes cut from each other alone
		// stayed apart for good, each seeing the other down. So they are
		// dialled again for an hour (implicitRouteRetries).
		ConnectRetries: implicitRouteRetries,
	}
	var routeAuth *url.Userinfo
	if cfg.Secret != "" {
		// Peers must present this; implicit routes (learnt by gossip)
		// present it too, explicit ones carry it in their URL.
		opts.Cluster.Username = routeUser
		opts.Cluster.Password = routePassword(cfg.Secret, opts.Cluster.Name)
		routeAuth = url.UserPassword(opts.Cluster.Username, opts.Cluster.Password)
	}
	var routeCert *pki.KeyPair
	if cfg.TLSCert != "" {
		tc, kp, err := routeTLS(cfg)
		if err != nil {
			return nil, nil, err
		}
		opts.Cluster.TLSConfig, routeCert = tc, kp
		opts.Cluster.TLSTimeout = 2
	}
	ip := net.ParseIP(host)
	if port > 0 && (ip != nil && !ip.IsUnspecified() || ip == nil && cfg.TLSCert != "") {
		// Gossip our own route address: without it peers learn the
		// address a route connection came from, which for nodes that
		// share a port on several loopback IPs is another node's, and for
		// a node named by DNS an IP its route certificate need not name
		// (peers that learnt it would fail to verify us and never route).
		// A name only with route TLS, where it is what the certificate
		// proves: peers that learn it must resolve it, and a name only
		// this node resolves (a bare host name) would cost the routes that
		// the IP a connection came from gives them.
		opts.Cluster.Advertise = net.JoinHostPort(host, strconv.Itoa(port))
	}
	for _, seed := range cfg.Join {
		seed = strings.TrimSpace(seed)
		if seed == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(seed); err != nil {
			return nil, nil, fmt.Errorf("bus: join address %q: %w", seed, err)
		}
		opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats", Host: seed, User: routeAuth})
	}
	if selfRoute {
		self := host
		if ip := net.ParseIP(self); ip != nil && ip.IsUnspecified() {
			self = "127.0.0.1"
		}
		opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats", Host: net.JoinHostPort(self, strconv.Itoa(port)), User: routeAuth})
	}
	return opts, routeCert, nil
}

// startAttempts bounds how often Open draws a cluster port again.
const startAttempts = 3

// implicitRouteRetries is how many times a dropped route to a peer
// learnt through gossip is dialled again, a second apart: an hour. That
// outlasts a cut between two nodes, and a peer gone for good (deleted,
// or back on another address) costs each node a failed dial a second per
// connection of the route pool for that hour only, not for ever (each
// an error of nats-server's, sampled by the log: at most one a minute at
// error level), and stops being offered the route password then.
const implicitRouteRetries = 3600

// errRoutePort marks an embedded server that could not bind its cluster
// port.
var errRoutePort = errors.New("bus: cluster listener")

// beforeStart, when set (tests), sees each server's options before it
// starts.
var beforeStart func(*server.Options)

// portDrawn reports whether opts' cluster port is one serverOptions drew
// (freePort) for a cfg that asked for any port.
func portDrawn(cfg Config, opts *server.Options) bool {
	_, port, err := net.SplitHostPort(cfg.Cluster)
	return err == nil && port == "0" && opts.Cluster.Port > 0
}

// startServer starts an embedded server with opts and waits until it
// takes connections, cfg.StartTimeout at most. nats-server reports a
// failure to start (a port it cannot bind, a JetStream that cannot
// start) only in its log and then never becomes ready: the first such
// line ends the wait at once, as the error.
func startServer(cfg Config, opts *server.Options) (*server.Server, error) {
	if beforeStart != nil {
		beforeStart(opts)
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("bus: configuring embedded NATS: %w", err)
	}
	// nats-server's debug lines (elections, Raft catch-up) go out only
	// when the node's log takes debug lines.
	debug := cfg.Logger.Enabled(context.Background(), slog.LevelDebug)
	logs := newLogAdapter(cfg.Logger.With("component", "nats"))
	ns.SetLoggerV2(logs, debug, false, false)
	ns.Start()
	deadline := time.Now().Add(cfg.StartTimeout)
	for !ns.ReadyForConnections(startPoll) {
		select {
		case line := <-logs.fatal:
			ns.Shutdown()
			if strings.HasPrefix(line, routeListenError) {
				return nil, fmt.Errorf("%w: %s", errRoutePort, line)
			}
			return nil, fmt.Errorf("bus: the embedded NATS did not start: %s", line)
		default:
		}
		if time.Now().After(deadline) {
			ns.Shutdown()
			return nil, fmt.Errorf("bus: embedded NATS not ready after %v (is %s free? did its JetStream start? the nats component's log says)", cfg.StartTimeout, cfg.Cluster)
		}
	}
	return ns, nil
}

// startPoll is how long each look at a starting server's listeners waits.
const startPoll = 100 * time.Millisecond

// routeListenError begins nats-server's fatal line for a cluster port it
// cannot bind (route.go).
const routeListenError = "Error listening on router port"

// monitorAddr parses Config.Monitor into nats-server's HTTPHost and
// HTTPPort, port 0 becoming its "any free port".
func monitorAddr(addr string) (string, int, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("bus: monitor address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bus: monitor address %q: bad port", addr)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// storeProbe is how much writable wants to write in the store
// directory: more than the files JetStream writes when it starts.
const storeProbe = 64 << 10

// writable fails at once when the store directory cannot be made or
// written, a full disk above all: nats-server would only log that it
// cannot start JetStream and then never become ready, so Open would wait
// StartTimeout and blame the cluster port.
func writable(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("bus: making the store directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("bus: writing in the store directory: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(make([]byte, storeProbe))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("bus: writing %d bytes in the store directory %s: %w", storeProbe, dir, err)
	}
	return nil
}

// bindable fails at once when the cluster port cannot be bound (in use,
// not an address of this host): nats-server only logs that and never
// becomes ready, so Open would wait StartTimeout before saying so.
func bindable(host string, port int) error {
	if port <= 0 {
		return nil // no cluster, or any free port
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("%w: %w", errRoutePort, err)
	}
	return ln.Close()
}

// freePort asks the kernel for a free TCP port on host.
func freePort(host string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("bus: finding a free cluster port on %q: %w", host, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// sanitizeClusterName keeps a NATS cluster name free of spaces and dots.
func sanitizeClusterName(name string) string {
	if name == "" {
		return "switchboard"
	}
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '.' || r == '*' || r == '>' {
			return '_'
		}
		return r
	}, name)
}

// ClusterAddr is the bound route listener, or nil without clustering.
func (b *Bus) ClusterAddr() *net.TCPAddr {
	if b.server == nil {
		return nil
	}
	return b.server.ClusterAddr()
}

// MonitorAddr is the bound HTTP monitoring listener (Config.Monitor), or
// nil when monitoring is off.
func (b *Bus) MonitorAddr() *net.TCPAddr {
	if b.server == nil {
		return nil
	}
	return b.server.MonitorAddr()
}

// Routes counts the embedded server's routes to peers.
func (b *Bus) Routes() int {
	if b.server == nil {
		return 0
	}
	return b.server.NumRoutes()
}

// RoutePeers names the servers the embedded server has routes to, sorted,
// each once (nats-server keeps a pool of several routes to each peer); nil
// without an embedded server.
func (b *Bus) RoutePeers() []string {
	if b.server == nil {
		return nil
	}
	rz, err := b.server.Routez(nil)
	if err != nil {
		return nil
	}
	var names []string
	for _, r := range rz.Routes {
		names = append(names, r.RemoteName)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// JetStreamCurrent reports whether the embedded server's JetStream has a
// metadata leader and has caught up with it (always true for a server
// alone), so that its API requests are answered. It reports true for an
// external NATS, whose state the bus cannot see.
func (b *Bus) JetStreamCurrent() bool {
	if b.server == nil {
		return true
	}
	// nats-server counts a Raft member that knows no leader as current
	// once it has applied the log it recovered from disk (raft.go,
	// isCurrent, in 2.15.2 and 2.15.3): after a restart, long before any election.
	// API requests sent then are lost, so the leader must be known too.
	return b.server.JetStreamIsCurrent() && b.JetStreamLeaderKnown()
}

// JetStreamLeaderKnown reports whether the embedded server's JetStream
// knows its metadata leader: false while its cluster elects one, and for
// as long as too few of its servers are left to elect one (a majority of
// the servers it has known, whether they stopped gracefully or not:
// nats-server does not shrink its peer set when one stops). Always true
// for a server alone and for an external NATS.
func (b *Bus) JetStreamLeaderKnown() bool {
	if b.server == nil || !b.server.JetStreamIsClustered() {
		return true
	}
	jsi, err := b.server.Jsz(&server.JSzOptions{Limit: 1})
	return err == nil && jsi.Meta != nil && jsi.Meta.Leader != ""
}

// JetStreamStopped reports whether the embedded server's JetStream is
// configured but not running. nats-server stops it by itself when a write
// finds the store directory full ("JetStream out of resources, will be
// DISABLED"), and leaves it stopped. False for an external NATS and
// without JetStream.
func (b *Bus) JetStreamStopped() bool {
	return b.server != nil && b.cfg.JetStream && !b.server.JetStreamEnabled()
}

// JetStreamStopping reports whether nats-server is still taking down a
// stopped JetStream (JetStreamStopped): handing its metadata leadership
// over, stopping its streams and their Raft groups, which takes a few
// seconds. A restart must wait for it, or the end of the stop would take
// down what the restart starts.
func (b *Bus) JetStreamStopping() bool {
	if !b.JetStreamStopped() {
		return false
	}
	if b.server.JetStreamConfig() != nil {
		return true
	}
	// The metadata group lives in the system account, the streams' groups
	// in the account of their streams: the node's users are in the global
	// one.
	for _, acc := range []string{"", b.server.GlobalAccount().GetName()} {
		rz := b.server.Raftz(&server.RaftzOptions{AccountFilter: acc})
		if rz == nil {
			continue
		}
		for _, groups := range *rz {
			if len(groups) > 0 {
				return true
			}
		}
	}
	return false
}

// ErrJetStreamStopping is RestartJetStream's error while nats-server is
// still taking JetStream down (JetStreamStopping).
var ErrJetStreamStopping = errors.New("bus: JetStream is still stopping")

// RestartJetStream starts the embedded server's stopped JetStream again
// on the same store directory, keeping its Raft state, as nats-server
// does when its configuration is reloaded (`nats-server --signal
// reload`): the server reloads the options it started with, and
// JetStream configured but not running is started. Its streams then catch
// up from their leaders. It does nothing while JetStream runs, fails with
// ErrJetStreamStopping while the stop is still under way, and with
// ErrNoJetStream for an external NATS or without JetStream.
func (b *Bus) RestartJetStream() error {
	if b.server == nil || !b.cfg.JetStream {
		return ErrNoJetStream
	}
	if b.server.JetStreamEnabled() {
		return nil
	}
	if b.JetStreamStopping() {
		return ErrJetStreamStopping
	}
	// The options are those the server started with, so nothing else
	// changes: the node's connections stay, and so do the routes (with
	// cluster TLS nats-server logs "Reloaded: cluster", as a cloned TLS
	// configuration never compares equal, and swaps it for its equal).
	if err := b.server.ReloadOptions(b.opts.Clone()); err != nil {
		return fmt.Errorf("bus: restarting JetStream: %w", err)
	}
	if !b.server.JetStreamEnabled() {
		// nats-server logs why (and stops it again) rather than failing
		// the reload.
		return ErrJetStreamNotStarted
	}
	return nil
}

// RouteKeyPair is the routes' certificate and key (Config.TLSCert,
// TLSKey), read at each route's handshake: its Reload makes new routes
// present a renewed certificate while routes up keep theirs. Nil without
// route TLS.
func (b *Bus) RouteKeyPair() *pki.KeyPair { return b.routeCert }

// StopJetStream stops the embedded server's JetStream, keeping its state
// on disk (nats-server's ShutdownJetStream, as it does itself when the
// store directory fills). First it asks each stream the server leads to
// step down (JetStream's leader stepdown, up to a second each), so that
// another copy leads it at once rather than after an election timeout;
// nats-server then hands over its metadata leadership (waiting up to
// 2 s) and stops the streams and their Raft groups. The node uses it to
// start again groups that stopped (StoppedGroups) with RestartJetStream.
// ErrNoJetStream for an external NATS or without JetStream.
func (b *Bus) StopJetStream() error {
	if b.server == nil || !b.cfg.JetStream {
		return ErrNoJetStream
	}
	streams, _ := b.localStreams(server.JSzOptions{Streams: true, Config: true, StreamLeaderOnly: true})
	for _, st := range streams {
		if st.Cluster == nil || st.Cluster.Leader != b.server.Name() || st.Config == nil || st.Config.Replicas <= 1 || b.Conn == nil {
			continue
		}
		// A stream that cannot step down (a lone copy) is elected afresh
		// after the restart: nothing to do about the error.
		_, _ = b.Conn.Request("$JS.API.STREAM.LEADER.STEPDOWN."+st.Name, nil, time.Second)
	}
	if err := b.server.ShutdownJetStream(); err != nil {
		return fmt.Errorf("bus: stopping JetStream: %w", err)
	}
	return nil
}

// ErrJetStreamNotStarted is RestartJetStream's error when nats-server
// could not start JetStream again; its log says why.
var ErrJetStreamNotStarted = errors.New("bus: restarting JetStream: it did not start (the nats component's log says why)")

// ErrNoJetStream is RestartJetStream's error for a bus whose JetStream is
// not embedded.
var ErrNoJetStream = errors.New("bus: no embedded JetStream")

// StreamLeaders reports, for each stream of the node's account that the
// embedded server holds a replica of, the leader that replica knows, or ""
// while its Raft group has none. It reads the server's own state (what
// nats-server's /jsz shows), where asking JetStream's API about a stream
// without a leader goes unanswered until the request times out. It returns
// nil for an external NATS and for an embedded server without a
// JetStream cluster, where nothing is elected, and while the account's
// JetStream is not up yet.
func (b *Bus) StreamLeaders() map[string]string {
	streams, ok := b.localStreams(server.JSzOptions{Streams: true})
	if !ok {
		return nil
	}
	leaders := make(map[string]string, len(streams))
	for _, st := range streams {
		leader := ""
		if st.Cluster != nil {
			leader = st.Cluster.Leader
		}
		leaders[st.Name] = leader
	}
	return leaders
}

// Close closes the connections and stops the embedded server.
func (b *Bus) Close() {
	if b.watch != nil {
		b.watch.Close()
	}
	if b.Dir != nil {
		b.Dir.Close()
	}
	if b.Conn != nil {
		b.Conn.Close()
	}
	if b.server != nil {
		b.server.Shutdown()
		b.server.WaitForShutdown()
	}
}
