package node

import (
	"bytes"
	"cmp"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/drain"
	"github.com/switchboard/switchboard/internal/bus"
	"github.com/switchboard/switchboard/internal/forwarded"
	"github.com/switchboard/switchboard/internal/pki"
	"github.com/switchboard/switchboard/wire"
)

// Default addresses of `switchboard serve` with no flags.
const (
	DefaultListen  = "127.0.0.1:7070"
	DefaultHTTP    = "127.0.0.1:7071"
	DefaultCluster = "127.0.0.1:7072"
	DefaultService = "switchboard.local"
)

// Config configures one node. DefaultConfig gives working values for every
// field; zero values are filled in by New.
type Config struct {
	// Service is the common service name shared by every node (default
	// "switchboard.local").
	Service string
	// ID names this node within the service; default derived from the
	// advertised client address ("127.0.0.2:7070").
	ID string
	// Listen is the client TCP listener, HOST:PORT (default 127.0.0.1:7070;
	// ":0" picks a free port). Empty with Advertise set means Start opens
	// no client listener: the caller hands the node listeners with Serve
	// and connections with ServeConn.
	Listen string
	// Advertise is the client address put in the directory; default the
	// bound Listen address, with the host's name if it listens on all
	// interfaces.
	Advertise string
	// HTTP is the HTTP listener (API, health, metrics), HOST:PORT; empty
	// disables it.
	HTTP string
	// AdvertiseHTTP is the HTTP address put in the directory, where
	// browsers and the drain command reach the node; default the bound
	// HTTP address, or, when it listens on all interfaces, the host of
	// the advertised client address with the HTTP port.
	AdvertiseHTTP string
	// DNS is the DNS responder's listener (UDP and TCP), HOST:PORT; empty
	// disables it.
	DNS string
	// DNSTTL is the TTL of DNS answers (default 5 s).
	DNSTTL time.Duration
	// DNSRateLimit is how many full UDP replies a second the DNS
	// responder gives one client network (an IPv4 /24, an IPv6 /56;
	// loopback exempt); beyond it a query gets an empty reply with TC, so
	// a spoofed query is never amplified. 0: the default, 100; negative:
	// no limit.
	DNSRateLimit int
	// DNSMaxTCP is how many TCP connections the DNS responder holds at
	// once, a sixteenth of them from one client host (0: the default,
	// 256).
	DNSMaxTCP int
	// Cluster is the embedded NATS route listener, HOST:PORT; empty means a
	// one-node cluster.
	Cluster string
	// Join lists seed nodes' cluster addresses.
	Join []string
	// Bus is an external NATS URL; when set no NATS server is embedded and
	// Cluster and Join are ignored.
	Bus string
	// ClusterSecret is the cluster's shared secret, the same on every node
	// (at least 16 bytes): routes authenticate with a password derived from
	// it, and the embedded NATS's loopback client port admits the
	// "operator" user with it as password. Without TLS the derived
	// password crosses the network in clear text. Default none.
	ClusterSecret string
	// ClusterSecretFile is a file holding ClusterSecret (surrounding
	// whitespace trimmed); New reads it when ClusterSecret is empty.
	// Default none.
	ClusterSecretFile string
	// ClusterCert and ClusterKey are this node's certificate and key (PEM
	// files) for the routes, and ClusterCA the CA that signed every
	// node's: routes then run TLS verified both ways. The certificate must
	// name the host of this node's cluster address (IP or DNS SAN) and
	// allow server and client authentication. Default none.
	ClusterCert, ClusterKey, ClusterCA string
	// InsecureCluster lets a node with a Cluster listener run with neither
	// ClusterSecret nor ClusterCert: any server that reaches the listener
	// joins, reads every room and publishes directory entries. Without it
	// such a node is refused (bus.ErrInsecureCluster). Default false.
	InsecureCluster bool
	// BusCA is the CA file that verifies an external NATS's certificate
	// (Bus tls://...); BusCert and BusKey a client certificate for it;
	// BusCreds a NATS credentials file (user JWT and nkey seed). Default
	// none.
	BusCA, BusCert, BusKey, BusCreds string
	// BusSystem is a NATS URL with a user of the external NATS's system
	// account (nats://USER:PASSWORD@HOST:PORT,...). With it the node
	// watches the servers' disconnect events, marks a peer down the moment
	// its bus connection closes (kill -9 included) and slows its
	// heartbeats as the cluster grows (HeartbeatMax). BusCA and the client
	// certificate apply to it too. Default none: peers are found dead by
	// their heartbeats alone, which then keep the Heartbeat interval.
	BusSystem string
	// NATSMonitor is the embedded NATS server's HTTP monitoring listener
	// (/varz, /connz, /routez, /jsz), HOST:PORT; empty, the default, turns
	// it off. It is unauthenticated: bind it where only operators reach.
	// It cannot be combined with Bus.
	NATSMonitor string
	// Group is this node's "region/zone".
	Group string
	// Capacity is the most attached sessions this node admits (default
	// 10,000).
	Capacity int
	// Heartbeat is how often the node publishes its entry when nothing
	// changes (default 200 ms). Peers mark it down after three missed
	// heartbeats.
	Heartbeat time.Duration
	// HeartbeatMax is the slowest the heartbeat gets as the cluster grows
	// (directory.HeartbeatFor: from Heartbeat, so that each node receives
	// about 50 heartbeats a second in all), when the node learns of a
	// peer's death from its bus (BusSystem); without that it keeps
	// Heartbeat. Default 2 s; a silent peer (paused, cut off) is then down
	// after at most three of them. Below Heartbeat it is taken as
	// Heartbeat: no slowing.
	HeartbeatMax time.Duration
	// Coalesce is how long a change of users waits for more changes before
	// the entry is published (default 2 ms).
	Coalesce time.Duration
	// PushDelay is how long membership changes are gathered before a fresh
	// directory is pushed to attached clients (default 100 ms): long
	// enough for a burst of changes (ten deaths, a scale-out) to go out
	// together, and for the other nodes to have read a change before this
	// one spends its CPU writing it to every session.
	PushDelay time.Duration
	// RemoveAfter is how long a down peer stays listed (default 1 min).
	RemoveAfter time.Duration
	// HelloTimeout closes a connection that has not sent a whole hello
	// line this long after it was accepted, however slowly its bytes
	// trickle in (default 10 s).
	HelloTimeout time.Duration
	// AttachTimeout closes a session that said hello but has not attached
	// this long after its first hello (default 30 s): a client reads the
	// directory, picks a node and attaches within a few round trips.
	AttachTimeout time.Duration
	// IdleTimeout closes a session that sends nothing, not even a ping, for
	// this long (default 5 min).
	IdleTimeout time.Duration
	// LineTimeout closes an attached session when one line takes longer
	// than this from its first byte to its newline (default 30 s): a line
	// of at most MaxLine bytes needs only about 2 KiB/s.
	LineTimeout time.Duration
	// MaxConns is the most client connections (attached or not) the node
	// holds open at once; the next is accepted, answered with the error
	// too_many_connections and closed (default: the process's descriptor
	// limit, RLIMIT_NOFILE, less max(1024, limit/4) held back for the
	// stored rooms, the cluster's routes and the HTTP listener; see
	// DefaultMaxConns). It should stay above Capacity.
	MaxConns int
	// MaxConnsPerIP is the most client connections one source address
	// holds open at once (an IPv6 address counts by its /64), refused the
	// same way (default 256: an office or a carrier's NAT behind one
	// address still fits, while filling the node takes dozens of
	// addresses). Connections handed to ServeConn without a TCP address,
	// and those from the node's own host to the address they came from
	// (its SIP and WebRTC fronts, a reverse proxy beside it), count only
	// towards MaxConns.
	MaxConnsPerIP int
	// WriteTimeout bounds one write to a client (default 10 s).
	WriteTimeout time.Duration
	// MaxLine is the longest protocol line accepted, in bytes (default
	// and least wire.MaxLine, 64 KiB: clients send lines that long).
	MaxLine int
	// MaxQueue is how many bytes may wait for a slow client before its
	// session is closed (default 1 MiB), besides those of the write under
	// way: past it while that write has taken stalledAfter (1 s) or
	// longer, or past slowQueueFactor (8) times it at all.
	MaxQueue int
	// MaxQueueTotal bounds the bytes waiting for clients in all sessions
	// together (default 256 MiB): past it, a session whose own queue
	// holds queueShare or more is closed as slow at its next line, where
	// MaxQueue alone let 15,000 clients that never read hold 2 MiB each.
	MaxQueueTotal int
	// DataDir holds the engine's stored state (the embedded JetStream's
	// files); default switchboard-SERVICE-ID under the system's temporary
	// directory, made with mode 0700, and refused (ErrUnsafeDataDir) when
	// it is there already as a link, another user's, or writable by
	// others. Nodes sharing a machine need different ones; a node
	// restarted with the same one recovers its copy of the rooms.
	DataDir string

	// MaxRooms is how many rooms one session may be in at once (default
	// 16).
	MaxRooms int
	// MaxParticipants is how many users one room holds (default 100). A
	// join past it is refused with a limit error; every node applies the
	// limit at the same point of the room's stream, so it is exact across
	// the cluster as long as every node has the same value.
	MaxParticipants int
	// MaxChunk is the longest text chunk a client may send, in bytes of
	// UTF-8 (default 4096; at most 8192, so that a delivery stays under
	// the protocol's line limit however it is escaped).
	MaxChunk int
	// ChunkRate and ChunkBurst bound how many text chunks one session
	// sends: a token bucket holding ChunkBurst chunks, refilled at
	// ChunkRate chunks a second (defaults 50/s and 200). Joins and leaves
	// have a bucket of their own (RoomOpRate, RoomOpBurst).
	ChunkRate  float64
	ChunkBurst int
	// ByteRate and ByteBurst bound the bytes of text one session sends: a
	// token bucket holding ByteBurst bytes, refilled at ByteRate bytes a
	// second (defaults 8 KiB/s and 64 KiB): fast typing and a paste of a
	// few KiB pass, a flood does not. A chunk counts wire.TextCost bytes:
	// a control character that travels escaped to six bytes counts six.
	ByteRate  float64
	ByteBurst int
	// StoreTimeout bounds how long a join waits for its room to be loaded
	// and a text chunk waits to be stored, retrying through JetStream
	// leader changes, before the client gets an "unavailable" error
	// (default 15 s: a JetStream leader elected after a crash can take
	// up to about 10 s).
	StoreTimeout time.Duration
	// Replicas is how many copies JetStream keeps of the rooms' stream and
	// snapshots (1..5). Zero (the default) means, in an embedded cluster,
	// 3 when it is expected to have three nodes or more (Join names two
	// others, or three are seen) and JetStream can place them within 5 s,
	// else min(3, nodes seen); with Bus, min(3, the bus's servers); 1 for
	// a node without a cluster. It is raised as the cluster grows and
	// never lowered (docs/operations.md, "The rooms' replicas").
	Replicas int
	// RoomStreams is how many JetStream streams the rooms are spread over,
	// by a hash of their names (default 8): each stream has a leader of
	// its own, and a room's consumer skips only the records of the rooms
	// that share its stream. The first node to set up the service stores
	// the number; later nodes use the stored one whatever their own.
	RoomStreams int
	// SnapshotEvery is how many records of a room are applied between two
	// snapshots of its state (default 256); a node loading the room
	// replays at most about this many records after the snapshot.
	SnapshotEvery int
	// RoomRetention is how long the rooms nobody is in are kept (default
	// 30 days; negative: for ever). A room's records leave its stream
	// this long after they were stored, and its snapshot this long and a
	// quarter after it was written; the steward of a room with members
	// writes its snapshot again every quarter of it, so a room is
	// forgotten only between RoomRetention and 1.25 times it after its
	// last member left (docs/rooms.md, "Retention"). At least 1 s.
	RoomRetention time.Duration
	// FeedHeartbeat is the idle heartbeat of each room feed's JetStream
	// consumer (default 1 s, 500 ms..30 s): a feed whose consumer lived on
	// a dead server notices after two missed heartbeats and resumes.
	FeedHeartbeat time.Duration
	// Rebalance evens out the load (rebalance.go): a node whose load
	// (sessions over capacity) stays above the up nodes' mean load by
	// more than its Threshold for its Hold asks its surplus to move, at
	// most Rate a second,
	// never a session attached less than RebalanceMinAge ago. The zero
	// value (Threshold 0) is off, the default.
	Rebalance drain.RebalanceConfig
	// RebalanceMinAge is how long a session stays before rebalancing may
	// ask it to move (default 5 min): a session that just moved, or just
	// arrived, never moves again for it.
	RebalanceMinAge time.Duration
	// MoveReaskAfter is how long after asking a session to move a drain
	// or the rebalancer may ask it again, if it is still attached
	// (default drain.ReaskAfter, 20 s: the clients' move timeout and
	// cool-down, with a margin); at most drain.MaxAsks times.
	MoveReaskAfter time.Duration
	// Pprof serves Go's profiles (net/http/pprof) under /debug/pprof/ on
	// the HTTP listener, without authentication (default off): for
	// measuring a node, not for a listener strangers reach.
	Pprof bool
	// TLSCert and TLSKey are PEM files (the certificate chain and its
	// key) with which the client listener speaks TLS; both or neither.
	// The certificate must name the service (Service) as a DNS SAN:
	// clients verify that name. Empty, the default, serves plain TCP and
	// the node logs that clients cannot verify it. TLS covers the
	// listener Start opens; listeners and connections handed to Serve and
	// ServeConn are served as they come.
	TLSCert string
	TLSKey  string
	// HTTPTLS serves the HTTP listener with the same certificate (HTTPS);
	// it needs TLSCert (default off).
	HTTPTLS bool
	// WSOrigins lists the pages of other origins that may open a
	// WebSocket (GET /v1/ws on the HTTP listener) to this node: patterns
	// (path.Match, case-insensitive) over the host, with its port, of the
	// request's Origin; "*" allows every page on the web. Empty, the
	// default, allows only the service's own pages: the node's origin,
	// any node's HTTP address in the directory, and the service name on
	// any port. Clients that send no Origin (not browsers) are not
	// checked.
	WSOrigins []string
	// TrustedProxies are the reverse proxies in front of the HTTP
	// listener whose X-Forwarded-For is believed (default none): a
	// WebSocket through one counts against MaxConnsPerIP as the client it
	// forwards, and the proxy's own connections to the HTTP listener are
	// not counted per address. The WebRTC front counts its peers the
	// same way.
	TrustedProxies forwarded.Proxies
	// ProxyProtocolFrom are the TCP load balancers in front of the client
	// listener (Listen) and the HTTP listener (HTTP) that send a PROXY
	// protocol header, version 1 or 2, before each client's bytes
	// (default none). A connection from one of them must begin with a
	// header, read below TLS (within HelloTimeout on the client listener,
	// 5 s on the HTTP one), and counts against the per-address limits as
	// the client the header names; one without a valid header is closed.
	// From anyone else a header is not read: its bytes are taken for the
	// client's, so no one else can claim another address.
	ProxyProtocolFrom forwarded.Proxies
	// TokenKey is a PEM file holding the Ed25519 public key that signs
	// user tokens, or several (any of them may sign; Reload reads the
	// file again). Set, attach needs a valid token naming the user; empty,
	// the default, leaves users unauthenticated (and the node logs so).
	TokenKey string
	// RequiredTokenKeys are public keys TokenKey's file must hold, at
	// start and at each Reload: the SIP front's signing key, say, without
	// which the node would refuse every caller's token. A file without
	// one of them is refused, and on Reload the keys in use stay.
	RequiredTokenKeys []ed25519.PublicKey
	// AdminToken is a file holding the secret (at least 16 bytes; spaces
	// around it are ignored) that HTTP requests which change state (the
	// drain switch) must present as "Authorization: Bearer SECRET". Empty,
	// the default, admits such requests from loopback addresses only.
	AdminToken string
	// Version is the software version reported in the directory.
	Version string
	// Logger receives the node's logs (default: discard).
	Logger *slog.Logger

	// leaderlessFor, set by tests alone, shortens how long the embedded
	// JetStream may know no metadata leader before the node steps aside
	// (storage.go, leaderlessFor).
	leaderlessFor time.Duration
}

// DefaultConfig returns the configuration of `switchboard serve` with no
// flags: a one-node cluster on loopback.
func DefaultConfig() Config {
	return Config{
		Service:      DefaultService,
		Listen:       DefaultListen,
		HTTP:         DefaultHTTP,
		Capacity:     10000,
		Heartbeat:    200 * time.Millisecond,
		HeartbeatMax: 2 * time.Second,
		Coalesce:     2 * time.Millisecond,
		PushDelay:    100 * time.Millisecond,
		RemoveAfter:  time.Minute,
		HelloTimeout: 10 * time.Second,
		IdleTimeout:  5 * time.Minute,
		WriteTimeout: 10 * time.Second,
		DNSTTL:       5 * time.Second,

		AttachTimeout: 30 * time.Second,
		LineTimeout:   30 * time.Second,
		MaxConns:      DefaultMaxConns(),
		MaxConnsPerIP: 256,

		MaxRooms:        16,
		MaxParticipants: 100,
		MaxChunk:        4096,
		ChunkRate:       50,
		ChunkBurst:      200,
		ByteRate:        8 << 10,
		ByteBurst:       64 << 10,
		StoreTimeout:    15 * time.Second,
		RoomStreams:     8,
		SnapshotEvery:   256,
		RoomRetention:   30 * 24 * time.Hour,
		FeedHeartbeat:   time.Second,
	}
}

// validate fills zero values with defaults and rejects nonsense.
func (c *Config) validate() error {
	d := DefaultConfig()
	fill(&c.Service, d.Service)
	if c.Advertise == "" {
		fill(&c.Listen, d.Listen)
	}
	fill(&c.Heartbeat, d.Heartbeat)
	fill(&c.HeartbeatMax, d.HeartbeatMax)
	c.HeartbeatMax = max(c.HeartbeatMax, c.Heartbeat) // below the base: no slowing
	fill(&c.Coalesce, d.Coalesce)
	fill(&c.PushDelay, d.PushDelay)
	fill(&c.RemoveAfter, d.RemoveAfter)
	fill(&c.HelloTimeout, d.HelloTimeout)
	fill(&c.IdleTimeout, d.IdleTimeout)
	fill(&c.AttachTimeout, d.AttachTimeout)
	fill(&c.LineTimeout, d.LineTimeout)
	fill(&c.MaxConns, d.MaxConns)
	fill(&c.MaxConnsPerIP, d.MaxConnsPerIP)
	fill(&c.WriteTimeout, d.WriteTimeout)
	fill(&c.DNSTTL, d.DNSTTL)
	fill(&c.StoreTimeout, d.StoreTimeout)
	fill(&c.FeedHeartbeat, d.FeedHeartbeat)
	fill(&c.Capacity, d.Capacity)
	fill(&c.MaxRooms, d.MaxRooms)
	fill(&c.MaxParticipants, d.MaxParticipants)
	fill(&c.MaxChunk, d.MaxChunk)
	fill(&c.ChunkBurst, d.ChunkBurst)
	fill(&c.ByteBurst, d.ByteBurst)
	fill(&c.SnapshotEvery, d.SnapshotEvery)
	fill(&c.RoomRetention, d.RoomRetention)
	fill(&c.RoomStreams, d.RoomStreams)
	fill(&c.ChunkRate, d.ChunkRate)
	fill(&c.ByteRate, d.ByteRate)
	fill(&c.MaxLine, 64<<10)
	fill(&c.MaxQueue, 1<<20)
	fill(&c.MaxQueueTotal, 256<<20)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	fill(&c.Version, "dev")
	var errs []error
	if c.Capacity < 0 {
		errs = append(errs, fmt.Errorf("capacity %d is negative", c.Capacity))
	}
	if c.MaxConns < 0 || c.MaxConnsPerIP < 0 {
		errs = append(errs, fmt.Errorf("negative connection limit (total %d, per address %d)", c.MaxConns, c.MaxConnsPerIP))
	}
	if c.HelloTimeout < 0 || c.AttachTimeout < 0 || c.IdleTimeout < 0 || c.LineTimeout < 0 {
		errs = append(errs, fmt.Errorf("negative timeout (hello %v, attach %v, idle %v, line %v)", c.HelloTimeout, c.AttachTimeout, c.IdleTimeout, c.LineTimeout))
	}
	if c.MaxRooms < 0 || c.MaxParticipants < 0 || c.SnapshotEvery < 0 {
		errs = append(errs, fmt.Errorf("negative room limit (rooms %d, participants %d, snapshot every %d)", c.MaxRooms, c.MaxParticipants, c.SnapshotEvery))
	}
	if c.MaxQueue < 0 || c.MaxQueueTotal < c.MaxQueue {
		errs = append(errs, fmt.Errorf("max queue total %d below max queue %d", c.MaxQueueTotal, c.MaxQueue))
	}
	if c.MaxLine < wire.MaxLine {
		// Clients send lines up to wire.MaxLine (a chunk of MaxChunk
		// bytes escaped, a state's answer): a node reading less would
		// end sessions that keep within every limit it announced.
		errs = append(errs, fmt.Errorf("max line %d below the protocol's %d bytes", c.MaxLine, wire.MaxLine))
	}
	if c.MaxChunk < 0 || c.MaxChunk > MaxChunkLimit {
		errs = append(errs, fmt.Errorf("max chunk %d outside 1..%d bytes", c.MaxChunk, MaxChunkLimit))
	}
	// Written !(x >= 0) so that NaN, which compares false with anything
	// and would make every chunk pass the limiter, is refused too.
	if !(c.ChunkRate >= 0) || !(c.ByteRate >= 0) || c.ChunkBurst < 1 || c.ByteBurst < c.MaxChunk {
		errs = append(errs, fmt.Errorf("text rate: chunk rate %v burst %d, byte rate %v burst %d (the byte burst must hold a whole chunk of %d)", c.ChunkRate, c.ChunkBurst, c.ByteRate, c.ByteBurst, c.MaxChunk))
	}
	if c.RoomStreams < 0 || c.RoomStreams > 256 {
		errs = append(errs, fmt.Errorf("room streams %d outside 1..256", c.RoomStreams))
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("replicas %d outside 0..5", c.Replicas))
	}
	if !(c.Rebalance.Threshold >= 0) || !(c.Rebalance.Rate >= 0) || c.Rebalance.Hold < 0 || c.RebalanceMinAge < 0 || c.MoveReaskAfter < 0 {
		errs = append(errs, fmt.Errorf("rebalance: threshold %v, rate %v, hold %v, min age %v and move reask-after %v may not be negative", c.Rebalance.Threshold, c.Rebalance.Rate, c.Rebalance.Hold, c.RebalanceMinAge, c.MoveReaskAfter))
	}
	c.Rebalance = c.Rebalance.WithDefaults()
	fill(&c.RebalanceMinAge, 5*time.Minute)
	fill(&c.MoveReaskAfter, drain.ReaskAfter)
	if c.FeedHeartbeat < 500*time.Millisecond || c.FeedHeartbeat > 30*time.Second {
		errs = append(errs, fmt.Errorf("feed heartbeat %v outside 500ms..30s", c.FeedHeartbeat))
	}
	if c.RoomRetention > 0 && c.RoomRetention < time.Second {
		errs = append(errs, fmt.Errorf("room retention %v under 1s (negative keeps rooms for ever)", c.RoomRetention))
	}
	if c.StoreTimeout < 0 {
		errs = append(errs, fmt.Errorf("store timeout %v is negative", c.StoreTimeout))
	}
	if c.Heartbeat < time.Millisecond || c.Heartbeat > time.Minute {
		errs = append(errs, fmt.Errorf("heartbeat %v outside 1ms..1m", c.Heartbeat))
	}
	if c.HeartbeatMax > time.Minute {
		errs = append(errs, fmt.Errorf("heartbeat max %v past 1m", c.HeartbeatMax))
	}
	if strings.ContainsAny(c.Service, " \t*>") {
		errs = append(errs, fmt.Errorf("service name %q has spaces or wildcards", c.Service))
	}
	if c.Group != "" && (strings.Count(c.Group, "/") > 1 || strings.HasPrefix(c.Group, "/") || strings.HasSuffix(c.Group, "/")) {
		errs = append(errs, fmt.Errorf("group %q is not REGION or REGION/ZONE", c.Group))
	}
	errs = append(errs, c.validateEntry()...)
	for _, a := range []struct{ name, addr string }{{"listen", c.Listen}, {"http", c.HTTP}, {"dns", c.DNS}, {"cluster", c.Cluster}, {"advertise", c.Advertise}, {"advertise-http", c.AdvertiseHTTP}} {
		if a.addr == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s address %q: %v", a.name, a.addr, err))
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("%s address %q: bad port", a.name, a.addr))
		}
	}
	// Every item a URL with its scheme: nats.go would take HOST:PORT, or
	// USER:PASSWORD@HOST:PORT, alone, and a value whose items are not
	// all URLs is where a password with a comma in it ends up.
	for _, v := range []struct{ name, value string }{{"bus", c.Bus}, {"bus-system", c.BusSystem}} {
		for item := range strings.SplitSeq(v.value, ",") {
			item = strings.TrimSpace(item)
			if _, err := url.Parse(item); v.value != "" && (err != nil || !strings.HasPrefix(item, "nats://") && !strings.HasPrefix(item, "tls://")) {
				errs = append(errs, fmt.Errorf("%s %q is not a list of nats:// or tls:// URLs", v.name, bus.RedactURLs(v.value)))
				break
			}
		}
	}
	if c.Bus != "" && c.NATSMonitor != "" {
		errs = append(errs, errors.New("nats-monitor serves the embedded NATS's monitoring; with bus the external NATS has its own"))
	}
	if c.Bus == "" && c.Cluster == "" && len(c.Join) > 0 {
		// What the embedded bus refuses at start, said now.
		errs = append(errs, errors.New("join names peers to route to, which needs a cluster listener (cluster HOST:PORT)"))
	}
	if c.DNS != "" {
		// What the responder would refuse at start, said now (serve
		// --check runs this).
		if err := c.dnsConfig(func() []directory.Node { return nil }).Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, c.validateSecurity()...)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("node: invalid config: %w", err)
	}
	return nil
}

// maxConnName is the longest Entry.Conn a peer accepts (directory's
// Entry.Validate), at which validateEntry counts this node's: the bus's
// ConnName is shorter (a server's ID, "/", a client ID).
const maxConnName = 200

// validateEntry refuses an ID, group, version or advertised address that
// the peers would not take into their directories: one longer than
// directory.DefaultLimits().MaxField (their tables refuse the entry), or
// all of them together making an entry, at its widest, larger than
// maxEntrySize (their subscriptions drop it unread, as JSON escaping
// makes a control character six bytes). Such a node would start and
// show itself up while no peer ever listed it. An address found at start
// (no advertise) is a host name or an IP address and a port, counted at
// the field limit.
func (c *Config) validateEntry() []error {
	limit := directory.DefaultLimits().MaxField
	var errs []error
	for _, f := range []struct{ name, v string }{
		{"id", c.ID}, {"group", c.Group}, {"version", c.Version}, {"advertise", c.Advertise}, {"advertise-http", c.AdvertiseHTTP},
	} {
		if len(f.v) > limit {
			errs = append(errs, fmt.Errorf("%s %q... is %d bytes, the most a peer's directory holds is %d", f.name, f.v[:20], len(f.v), limit))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	found := strings.Repeat("x", limit)
	e := directory.Entry{
		Node: directory.Node{
			ID: c.ID, Addr: cmp.Or(c.Advertise, found), HTTP: cmp.Or(c.AdvertiseHTTP, found), Group: c.Group, Version: c.Version,
			Status: directory.Starting, Users: math.MaxInt, Capacity: math.MaxInt, HeartbeatMS: directory.MaxHeartbeat.Milliseconds(),
		},
		Incarnation: math.MaxUint64, Seq: math.MaxUint64, Conn: strings.Repeat("x", maxConnName),
	}
	if e.ID == "" {
		e.ID = e.Addr // Start names the node after its address
	}
	data, err := json.Marshal(e)
	if err != nil {
		return []error{fmt.Errorf("encoding this node's directory entry: %w", err)}
	}
	if len(data) > maxEntrySize {
		return []error{fmt.Errorf("this node's directory entry (id, group, version, advertised addresses) takes up to %d bytes as JSON, the most a peer takes is %d: shorten them, or use fewer characters that JSON escapes", len(data), maxEntrySize)}
	}
	return nil
}

// validateSecurity reads the cluster secret file and rejects a cluster
// open to strangers, half a TLS setup and bus credentials without a bus.
func (c *Config) validateSecurity() []error {
	var errs []error
	if c.ClusterSecret == "" && c.ClusterSecretFile != "" {
		secret, err := readSecret(c.ClusterSecretFile, c.Logger)
		if err != nil {
			errs = append(errs, err)
		}
		c.ClusterSecret = secret
	}
	// The other files that hold secrets get the cluster secret's warning:
	// an admin token other users may read lets them drain the node, a
	// private key lets them pose as it.
	for _, f := range []struct{ setting, file string }{
		{"admin-token", c.AdminToken}, {"tls-key", c.TLSKey}, {"cluster-key", c.ClusterKey},
		{"bus-key", c.BusKey}, {"bus-creds", c.BusCreds},
	} {
		WarnIfReadable(c.Logger, f.setting, f.file)
	}
	if c.Bus != "" {
		// Cluster and its credentials are ignored; the bus's files are
		// read now, so that serve --check finds what start would.
		switch {
		case c.BusCert != "" && c.BusKey != "":
			errs = append(errs, loadPair("bus certificate (bus-cert, bus-key)", c.BusCert, c.BusKey))
		case c.BusCert != "" || c.BusKey != "":
			errs = append(errs, errors.New("a client certificate for the external bus needs both bus-cert and bus-key"))
		}
		if c.BusCA != "" {
			errs = append(errs, loadCA("bus CA (bus-ca)", c.BusCA))
		}
		if c.BusCreds != "" {
			if _, err := os.ReadFile(c.BusCreds); err != nil {
				errs = append(errs, fmt.Errorf("bus credentials (bus-creds): %w", err))
			}
		}
		return errs
	}
	if c.BusCA != "" || c.BusCert != "" || c.BusKey != "" || c.BusCreds != "" || c.BusSystem != "" {
		errs = append(errs, errors.New("bus CA, certificate, key, credentials or system user without an external bus"))
	}
	if c.ClusterSecret != "" && len(c.ClusterSecret) < bus.MinSecret {
		errs = append(errs, bus.ErrWeakSecret)
	}
	switch countSet(c.ClusterCert, c.ClusterKey, c.ClusterCA) {
	case 0:
	case 3:
		// Read now, as the client listener's certificate is: serve
		// --check called a node valid whose certificate files were
		// missing or did not match, and the node then failed at start.
		pairErr, caErr := loadPair("cluster TLS certificate (cluster-cert, cluster-key)", c.ClusterCert, c.ClusterKey),
			loadCA("cluster CA (cluster-ca)", c.ClusterCA)
		errs = append(errs, pairErr, caErr)
		if pairErr == nil && caErr == nil {
			// And that the CA verifies the certificate for both of a
			// route's ends, as start does.
			if err := bus.CheckRouteTLS(c.ClusterCert, c.ClusterKey, c.ClusterCA); err != nil {
				errs = append(errs, fmt.Errorf("cluster TLS certificate (cluster-cert, cluster-ca): %w", err))
			}
		}
	default:
		errs = append(errs, bus.ErrTLSIncomplete)
	}
	if c.Cluster != "" && c.ClusterSecret == "" && c.ClusterCert == "" && !c.InsecureCluster {
		// Named by the settings serve and its config file know them by
		// (InsecureCluster is insecure-cluster), not bus.Config's.
		errs = append(errs, errorAs{
			msg: fmt.Sprintf("cluster listener %s without a cluster secret (cluster-secret-file) or certificate (cluster-cert): give one, or run it open (insecure-cluster)", c.Cluster),
			err: bus.ErrInsecureCluster,
		})
	}
	return errs
}

// errorAs is err (errors.Is finds it) told in msg alone.
type errorAs struct {
	msg string
	err error
}

func (e errorAs) Error() string { return e.msg }
func (e errorAs) Unwrap() error { return e.err }

// WarnIfReadable warns on log when users other than the file's owner may
// read or write the secret file that setting names (serve's fronts hold
// such files too).
func WarnIfReadable(log *slog.Logger, setting, file string) {
	if file == "" || log == nil {
		return
	}
	if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("a secret file is readable by other users: chmod 600 it", "setting", setting, "file", file, "mode", fi.Mode().Perm().String())
	}
}

// readSecret reads a cluster secret file, warning when others may read it.
func readSecret(file string, log *slog.Logger) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("cluster secret: %w", err)
	}
	if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("the cluster secret file is readable by other users: chmod 600 it", "file", file, "mode", fi.Mode().Perm().String())
	}
	secret := strings.TrimSpace(string(data))
	if secret == "" {
		return "", fmt.Errorf("cluster secret file %s is empty", file)
	}
	if isPEM(data) {
		return "", fmt.Errorf("cluster secret file %s holds a PEM block (a certificate or key, which may be public), not a secret: make one with openssl rand -hex 32", file)
	}
	return secret, nil
}

// isPEM reports whether a secret file's content is a PEM block (a
// certificate, a public or private key): a file named by mistake, and a
// certificate or public key is handed out freely, so a secret it would
// make is none.
func isPEM(data []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN "))
}

// loadPair reads a certificate and its key as a TLS listener would; nil
// when they load and match.
func loadPair(what, cert, key string) error {
	if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// loadCA reads a CA file as the routes or the bus client would; nil when
// it holds a certificate.
func loadCA(what, file string) error {
	if _, err := pki.LoadPool(file); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func countSet(ss ...string) int {
	n := 0
	for _, s := range ss {
		if s != "" {
			n++
		}
	}
	return n
}

// advertised returns the address to publish for a bound listener.
func advertised(explicit string, bound net.Addr) string {
	if explicit != "" {
		return explicit
	}
	tcp, ok := bound.(*net.TCPAddr)
	if !ok {
		return bound.String()
	}
	if tcp.IP.IsUnspecified() {
		host, err := os.Hostname()
		if err != nil {
			host = "localhost"
		}
		return net.JoinHostPort(host, strconv.Itoa(tcp.Port))
	}
	return tcp.String()
}

// advertisedHTTP returns the HTTP address to publish for the bound HTTP
// listener: explicit when set; for a listener on all interfaces, whose
// address ("[::]:7071") no browser can dial, the host of the advertised
// client address with the listener's port, as the host users reach the
// node by; else the bound address.
func advertisedHTTP(explicit string, bound net.Addr, client string) string {
	if explicit != "" {
		return explicit
	}
	tcp, ok := bound.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return bound.String()
	}
	host, _, err := net.SplitHostPort(client)
	if err != nil || host == "" {
		return advertised("", bound) // the host's name, as for clients
	}
	return net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// fill sets *v to def when it holds the zero value.
func fill[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}
