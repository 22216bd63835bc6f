package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/logsample"
	"github.com/switchboard/switchboard/room"
	"github.com/switchboard/switchboard/wire"
)

// Room engine: the server side of real-time text rooms across the cluster.
//
// Storage. Every room's history is a sequence of records (join, leave,
// text) in JetStream. The rooms of a service are spread by a hash of their
// names over Config.RoomStreams streams SB_<service>_ROOMS_<k> (the first
// node to set up the service stores the number in the snapshot bucket, so
// every node maps rooms alike); a room's records are on the subject
// switchboard.<service>.room.<k>.<room>, dots of the name mapped to "=".
// Several streams give several leaders, spread over the nodes, and keep a
// room's consumer from stepping over the records of many other rooms.
// Each stream is replicated on min(3, nodes up) servers, raised as the
// cluster grows; a new cluster expected to have three nodes or more
// creates them with 3 from the start (replicas.go). A client's text is
// acknowledged only after JetStream acknowledged the record, that is
// once a quorum of replicas stored it.
// Text records carry the message ID room/user/seq, so JetStream's
// duplicate window drops a resend before it is stored again; a resend
// after the window is stored but dropped when applied (rtt.Room drops by
// (sender, seq)), on every node alike.
//
// Replay. Each node that has members in a room runs one feed for it: one
// goroutine that owns the room's state machine (a room.Room: text,
// members, local sessions, presence rules) and the room's local
// sessions, fed by one JetStream ordered consumer filtered on the room's
// subject. The ordered consumer delivers every record once and in stream
// order, resuming after the last record it delivered when its server
// dies, so replay and live delivery join without a gap or a double. To
// bound replay, the feed of the room's steward (below) writes a snapshot
// every Config.SnapshotEvery records to the KV bucket SB_<service>_ROOMSNAP:
// the room's state in room's versioned JSON format (docs/rooms.md) with
// the stream sequence it covers, written with optimistic concurrency on
// the key's revision so that an older snapshot never replaces a newer
// one. A feed starts from the snapshot and consumes from its sequence + 1;
// a snapshot it cannot use (damaged, or of a newer format) it ignores,
// rebuilding the room from the stream's first record. The streams keep at
// most max(10000, 50*SnapshotEvery) records per room, far more than one
// snapshot interval.
//
// Seqs are never reset by a leave (rtt.Room.Forget would reset them), so
// that a client's resend after it left and came back is still a
// duplicate; a room forgets senders only beyond 1000, the departed ones
// with empty lines first.
//
// Live text. Text is also published as it is read on a core NATS subject
// per room and shown from there before it is stored; the stored copy
// then goes only to members that did not see it (rooms_live.go and
// room/live.go).
//
// Presence. Members are sessions, identified by node ID and session ID;
// a user is in the room while at least one of their sessions is. Joins and
// leaves are records of the stream too, so every node applies presence
// and text in the same order. A session that closes publishes its leave; a
// node that closes gracefully publishes the leave of all its members. A
// node that dies cannot: each feed checks its members against this
// node's view of the cluster (peers: the directory and the incarnations
// heard) a few times a second, and the room's steward, the lowest node ID
// among this node and the live nodes of the room's members, publishes one
// leave for the stale members. Presence changes only on evidence the
// cluster agrees on: a foreign member is stale when its node announced a
// newer incarnation, or when its node has been down or missing for the
// grace period (max(3 s, 10 heartbeats)) while this node saw a majority
// of the cluster up throughout, watching without a gap. A node paused or
// cut off sees its peers down when it returns, but no majority: it
// removes nobody (room.Room.Reconcile has the rule; room's transcripts
// replay it). A node's own stale members (a session it no longer has) it
// removes itself. Leaves are idempotent, so two nodes that both clean up
// do no harm. A user who reattaches elsewhere joins again with a new
// session and stays listed throughout when that join lands first; a
// session whose membership was removed while it lived on (its node was
// cut off longer than the grace) is joined again by its node; if the
// room filled meanwhile, that join is refused and the session is out
// (room.Result.Lost): told with a removed error, then taken off its rooms
// by its reader (session.dropLostRooms).

// MaxChunkLimit is the largest Config.MaxChunk allowed, in bytes.
const MaxChunkLimit = wire.MaxChunkLimit

// MaxRoomName is the longest room name, in bytes.
const MaxRoomName = wire.MaxRoomName

// roomConns is how many connections to the bus the room engine spreads
// its rooms over: one connection writes under one lock, and a node's
// publishes and deliveries of all rooms through one of them wait on it.
const roomConns = 4

// Record operations in the rooms' stream, and the record itself: their
// format belongs to package room.
const (
	recJoin  = room.OpJoin
	recLeave = room.OpLeave
	recText  = room.OpText
	recBatch = room.OpBatch
)

// record is one entry of a room's stream, as JSON.
type record = room.Record

// MaxUserSessionsInRoom is how many sessions of one user a room admits at
// once; a join from one more is refused with CodeLimit on every node
// alike. It bounds, with Config.MaxParticipants, the members a room
// holds, and so its snapshot and the state each joiner gets.
const MaxUserSessionsInRoom = 8

// Errors of the room engine; sessions turn them into wire codes.
var (
	errRoomsNotReady = errors.New("node: rooms are not ready (JetStream has no leader yet)")
	errRoomFull      = errors.New("node: room is full")
	errUserSessions  = errors.New("node: the user is in the room from too many sessions")
	errFeedClosed    = errors.New("node: room feed closed")
)

// roomEngine runs the rooms of one node: it sets up the stream and the
// snapshot bucket, keeps their replicas in step with the cluster, stores
// records, and starts and stops the feeds of the rooms with local members.
type roomEngine struct {
	n          *Node
	log        *slog.Logger
	conns      []*nats.Conn          // the engine's own connections to the bus
	jss        []jetstream.JetStream // one per connection
	js         jetstream.JetStream   // jss[0], for setup
	stream     string                // SB_<service>_ROOMS; the streams are SB_<service>_ROOMS_<k>
	bucket     string                // SB_<service>_ROOMSNAP
	prefix     string                // switchboard.<service>.room.
	livePrefix string                // switchboard.<service>.live. (rooms_live.go)
	inc        uint64                // this node's incarnation
	batches    atomic.Uint64         // batch records stored, for their message IDs
	stored     atomic.Uint64         // records JetStream acknowledged: the bus stores (storage.go)

	ready  chan struct{}      // closed once the streams and bucket exist
	kv     jetstream.KeyValue // set before ready is closed
	shards int                // the number of streams; set before ready is closed
	// replicas is what the streams and bucket were created with or last
	// raised to, as run knows it: 0 until ready.
	replicas atomic.Int32

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closing atomic.Bool // no more goodbyes from sessions: stop publishes them; set under mu
	// joins counts the first joins that passed beginJoin and have not
	// ended: a graceful stop waits for them before it lists its members.
	joins   sync.WaitGroup
	halting atomic.Bool // crash-like stop: no goodbyes, no final snapshots

	// incs tells a restarted peer (same ID, new run) from the one whose
	// sessions are in the rooms: node ID -> the newest incarnation of the
	// entries the directory's table took, while it lists the node
	// (noteIncarnation, forgetIncarnation).
	incs atomic.Pointer[map[string]uint64]

	peerView atomic.Pointer[peerView]      // the last peers(), while current
	leaders  atomic.Pointer[streamLeaders] // the last read of the streams' leaders (streamLeader)
	reading  atomic.Bool                   // a read of the streams' leaders is under way
	// elected holds the leader each of the rooms' streams last elected,
	// by server name, as JetStream's advisories said or, before the
	// first, its stream info: for the streams this node holds no
	// replica of. Guarded by electedMu.
	electedMu sync.Mutex
	elected   map[string]string
	clock     atomic.Pointer[func() time.Time] // tests: the feeds' clock

	mu    sync.Mutex // guards feeds
	feeds map[string]*feed

	metrics *roomMetrics
	// unstoredLog samples the lines about text shown live and never
	// stored (rooms_feed.go).
	unstoredLog logsample.Sampler
}

func newRoomEngine(n *Node) *roomEngine {
	svc := sanitize(n.cfg.Service)
	e := &roomEngine{
		n:          n,
		log:        n.log.With("component", "rooms"),
		stream:     "SB_" + svc + "_ROOMS",
		bucket:     "SB_" + svc + "_ROOMSNAP",
		prefix:     "switchboard." + strings.ReplaceAll(n.cfg.Service, ".", "_") + ".room.",
		livePrefix: livePrefix(n.cfg.Service),
		inc:        n.incarnation,
		ready:      make(chan struct{}),
		feeds:      make(map[string]*feed),
	}
	e.unstoredLog.Period = dropLogEvery
	e.incs.Store(&map[string]uint64{})
	e.elected = make(map[string]string)
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e
}

// start begins setting up JetStream in the background; rooms work once
// it is done (Ready).
func (e *roomEngine) start() error {
	for i := range roomConns {
		// Without echo: the node shows its own sessions' live text to
		// its members directly (rooms_live.go).
		nc, err := e.n.bus.Connect(sanitize(e.n.cfg.ID)+"-rooms-"+strconv.Itoa(i), nats.NoEcho())
		if err != nil {
			return fmt.Errorf("node: connecting the room engine: %w", err)
		}
		e.conns = append(e.conns, nc)
		js, err := jetstream.New(nc)
		if err != nil {
			return fmt.Errorf("node: opening JetStream: %w", err)
		}
		e.jss = append(e.jss, js)
	}
	e.js = e.jss[0]
	e.watchElections()
	e.warnIfRoomsOutgrowSnapshots()
	e.metrics = newRoomMetrics()
	e.metrics.streams = streamsCollectors(e)
	if err := e.n.metrics.registry.Register(e.metrics); err != nil {
		return fmt.Errorf("node: registering room metrics: %w", err)
	}
	e.wg.Go(e.run)
	return nil
}

// warnIfRoomsOutgrowSnapshots warns when a room at its bounds
// (MaxParticipants users of the longest names, each from
// MaxUserSessionsInRoom sessions, and the senders it remembers) would not
// fit a snapshot on this bus: such a room's replay would grow past the
// stream's retention. It happens only with a raised --max-participants
// on a bus with a small largest message (an external nats-server's 1 MiB
// default).
func (e *roomEngine) warnIfRoomsOutgrowSnapshots() {
	// A session's key: the node's ID, "/", and an ID of at most 4 + 1 + 13
	// characters (session.go).
	size, err := room.SizeAtBounds(e.roomConfig(nil), MaxUserName, len(e.n.cfg.ID)+19)
	if err != nil {
		e.log.Error("sizing a room at its bounds", "err", err)
		return
	}
	if limit := e.snapshotLimit(); size > limit {
		e.log.Warn("a full room with the longest user names would not fit a snapshot on this bus; its replay would grow: lower --max-participants or raise the bus's max_payload",
			"max_participants", e.n.cfg.MaxParticipants, "sessions_per_user", MaxUserSessionsInRoom, "room_bytes", size, "snapshot_limit", limit)
	}
}

// noteIncarnation records inc for id if it is the newest seen. Only the
// directory exchange's goroutine (Node.run) calls it, with each entry its
// table took.
func (e *roomEngine) noteIncarnation(id string, inc uint64) {
	old := *e.incs.Load()
	if old[id] >= inc {
		return
	}
	next := maps.Clone(old)
	next[id] = inc
	e.incs.Store(&next)
}

// forgetIncarnation drops what noteIncarnation recorded for id, once the
// directory has removed that node: a node back under the same ID with a
// lower incarnation (another host, an emptied --data, a clock behind)
// would otherwise have every member it joins taken for a stale one, and
// the map would grow with every ID ever heard. Only the directory
// exchange's goroutine calls it.
func (e *roomEngine) forgetIncarnation(id string) {
	old := *e.incs.Load()
	if _, ok := old[id]; !ok {
		return
	}
	next := maps.Clone(old)
	delete(next, id)
	e.incs.Store(&next)
}

// Ready reports whether the room engine can store and load rooms.
func (e *roomEngine) Ready() bool {
	select {
	case <-e.ready:
		return true
	default:
		return false
	}
}

// run creates the streams and the bucket, retrying while JetStream
// elects its leaders, waits until each has a leader, then raises their
// replicas as the cluster grows.
//
// While JetStream has no metadata leader its API requests go unanswered
// rather than fail, so each call is short at first (the next try comes
// soon after the election) and lengthens after every timeout, so that a
// loaded machine's slow answers still arrive. Requests about a stream
// without a leader go unanswered too: where the embedded server holds a
// replica, its own state says when the stream has one (electing), for
// at most localElections, after which only the API is believed.
//
// The replicas it creates them with are startReplicas': a node that
// expects three nodes or more waits, for at most fullReplicasWait after
// JetStream first answered, until JetStream can place three (replicas.go).
func (e *roomEngine) run() {
	call := newCallTimeout()
	var replicas int
	var answered time.Time // when JetStream first answered
	local := time.Now().Add(localElections)
	began, warned := time.Now(), time.Now()
	for {
		// A request sent before the metadata leader is elected is lost
		// and costs its whole timeout; the embedded server says when
		// one is, and when its replicas of the rooms' streams have
		// their leaders (after a full restart every Raft group waits
		// out nats-server's election timeout, 4 to 9 s).
		current := e.n.bus.JetStreamCurrent()
		if !current && time.Since(warned) >= stuckWarning {
			// Otherwise silent: the node stays starting, and only the
			// operator can tell a cluster still forming from one stuck.
			warned = time.Now()
			e.log.Warn("rooms wait for JetStream: this node knows no metadata leader it is current with",
				"waited", time.Since(began).Round(time.Second), "routes", len(e.n.bus.RoutePeers()))
		}
		if !current || (time.Now().Before(local) && e.electing() != "") {
			if !e.pause(20 * time.Millisecond) {
				return
			}
			continue
		}
		if answered.IsZero() {
			answered = time.Now()
		}
		want, full := e.startReplicas(time.Since(answered))
		r, err := e.setup(want, call.next())
		if err == nil {
			replicas = r
			break
		}
		call.failed(err)
		if full && noPlacement(err) {
			e.log.Debug("waiting for JetStream to place the rooms' third replica", "err", err, "waited", time.Since(answered))
		} else {
			e.log.Debug("setting up JetStream for rooms; retrying", "err", err, "call_timeout", call.timeout)
		}
		if !e.pause(50 * time.Millisecond) {
			return
		}
	}
	// The streams exist; a room can be loaded and stored once each has a
	// leader. Until then the node is not up.
	for {
		missing, err := e.leaderless(call.next(), time.Now().Before(local))
		if err == nil && missing == "" {
			break
		}
		call.failed(err)
		e.log.Debug("waiting for the rooms' streams to elect leaders", "stream", missing, "err", err, "call_timeout", call.timeout)
		if !e.pause(50 * time.Millisecond) {
			return
		}
	}
	e.setReplicas(replicas)
	close(e.ready)
	e.log.Info("rooms ready", "streams", e.shards, "replicas", replicas)

	// The first check at once: storage created with fewer replicas than
	// the nodes now up survives no loss until it is raised.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if want := e.desiredReplicas(); want > replicas {
			if err := e.raiseReplicas(want); err != nil {
				e.log.Warn("raising the rooms' replicas", "to", want, "err", err)
			} else {
				e.log.Info("rooms' replicas raised", "from", replicas, "to", want)
				replicas = want
				e.setReplicas(replicas)
			}
		}
		select {
		case <-e.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// setReplicas records the replicas the rooms' storage now has, for
// /metrics and Node.RoomReplicas.
func (e *roomEngine) setReplicas(n int) {
	e.metrics.replicas.Set(float64(n))
	e.replicas.Store(int32(n))
}

// pause waits d, or reports false when the engine stops first.
func (e *roomEngine) pause(d time.Duration) bool {
	select {
	case <-e.ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// callTimeout bounds JetStream API calls while the rooms start: 250 ms at
// first, doubled after each call that timed out, up to 1 s. A stream
// without a leader leaves requests about it unanswered, so most timeouts
// mean "not elected yet", not "slow": a long timeout would only delay the
// first try after the election.
type callTimeout struct{ timeout time.Duration }

func newCallTimeout() *callTimeout { return &callTimeout{timeout: 250 * time.Millisecond} }

func (c *callTimeout) next() time.Duration { return c.timeout }

func (c *callTimeout) failed(err error) {
	if errors.Is(err, context.DeadlineExceeded) {
		c.timeout = min(2*c.timeout, time.Second)
	}
}

// desiredReplicas is Config.Replicas, or else min(3, peers): peers are
// the nodes up in the directory for an embedded cluster, the servers the
// connection knows for an external bus, and 1 for a node alone.
func (e *roomEngine) desiredReplicas() int {
	cfg := e.n.cfg
	if cfg.Replicas > 0 {
		return cfg.Replicas
	}
	peers := 1
	switch {
	case cfg.Bus != "":
		peers = len(e.n.bus.Conn.Servers())
	case cfg.Cluster != "":
		peers = 0
		for _, node := range e.n.availableNodes() {
			if node.Status != directory.Down {
				peers++
			}
		}
	}
	return min(3, max(peers, 1))
}

func (e *roomEngine) recordsPerRoom() int64 {
	return int64(max(10000, 50*e.n.cfg.SnapshotEvery))
}

// streamName is the name of shard k's stream.
func (e *roomEngine) streamName(k int) string { return e.stream + "_" + strconv.Itoa(k) }

func (e *roomEngine) streamConfig(k, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              e.streamName(k),
		Description:       "Switchboard real-time text rooms of " + e.n.cfg.Service + ", shard " + strconv.Itoa(k),
		Subjects:          []string{e.prefix + strconv.Itoa(k) + ".*"},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		MaxMsgsPerSubject: e.recordsPerRoom(),
		Discard:           jetstream.DiscardOld,
		MaxAge:            e.retention(),
		Duplicates:        e.duplicateWindow(),
	}
}

// retention is how long rooms nobody is in are kept, 0 for ever: the
// MaxAge of the rooms' streams.
func (e *roomEngine) retention() time.Duration { return max(e.n.cfg.RoomRetention, 0) }

// duplicateWindow is the streams' duplicate window: 2 min, or the
// retention when shorter (JetStream wants it within MaxAge).
func (e *roomEngine) duplicateWindow() time.Duration {
	if r := e.retention(); r > 0 && r < 2*time.Minute {
		return r
	}
	return 2 * time.Minute
}

// snapshotEvery is how often the steward of a room writes its snapshot
// again however little happened, under a retention (0 without one): a
// quarter of it, so that neither the snapshot nor the records after it
// expire while the room has members.
func (e *roomEngine) snapshotEvery() time.Duration { return e.retention() / 4 }

// snapshotTTL is how long a snapshot is kept after it was written under
// a retention (0: for ever): the retention and a quarter, so that it
// outlives every record stored before its steward could write the next
// one, and a room is forgotten from its oldest end.
func (e *roomEngine) snapshotTTL() time.Duration {
	if r := e.retention(); r > 0 {
		return r + r/4
	}
	return 0
}

// keepStreamConfig reports whether cfg, an existing stream of the rooms,
// already has the retention of this node's configuration, and if not
// sets it in cfg.
func (e *roomEngine) keepStreamConfig(cfg *jetstream.StreamConfig) bool {
	age, dups := e.retention(), e.duplicateWindow()
	if cfg.MaxAge == age && cfg.Duplicates == dups {
		return true
	}
	cfg.MaxAge, cfg.Duplicates = age, dups
	return false
}

func (e *roomEngine) bucketConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      e.bucket,
		Description: "Switchboard room snapshots of " + e.n.cfg.Service,
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}
}

// shardsKey holds the service's number of room streams in the bucket. Room
// keys hold no dots, so it is no room's.
const shardsKey = "meta.shards"

// setup makes sure the bucket and the streams exist, creating them with
// want replicas (each call bounded by timeout), and returns the lowest replicas among them. It never
// lowers the replicas of what exists: another node may have raised them.
// The number of streams is the one the first node stored in the bucket,
// so that every node maps a room to the same stream.
//
// What it creates it logs ("created the rooms' storage"), so that a
// cluster can tell with how many replicas its storage began.
func (e *roomEngine) setup(want int, timeout time.Duration) (int, error) {
	var created []string
	defer func() {
		if len(created) > 0 {
			e.log.Info("created the rooms' storage", "replicas", want, "created", strings.Join(created, ","))
		}
	}()
	ctx, cancel := context.WithTimeout(e.ctx, timeout)
	defer cancel()
	kv, err := e.js.KeyValue(ctx, e.bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = e.js.CreateKeyValue(ctx, e.bucketConfig(want))
		if err == nil {
			created = append(created, "KV_"+e.bucket)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("node: opening snapshot bucket %s: %w", e.bucket, err)
	}
	if e.retention() > 0 {
		// Snapshots carry a TTL (writeSnapshot), which the bucket's
		// stream must allow; JetStream never turns it off again.
		if err := e.allowTTL(ctx, "KV_"+e.bucket); err != nil {
			return 0, err
		}
	}
	shards := e.n.cfg.RoomStreams
	if _, err := kv.Create(ctx, shardsKey, []byte(strconv.Itoa(shards))); err != nil {
		entry, gerr := kv.Get(ctx, shardsKey)
		if gerr != nil {
			return 0, fmt.Errorf("node: reading the number of room streams: %w (storing it: %w)", gerr, err)
		}
		stored, perr := strconv.Atoi(string(entry.Value()))
		if perr != nil || stored < 1 {
			return 0, fmt.Errorf("node: the bucket %s holds a bad number of room streams %q", e.bucket, entry.Value())
		}
		if stored != shards {
			e.log.Warn("using the service's number of room streams, not this node's", "stored", stored, "configured", shards)
		}
		shards = stored
	}
	replicas := want
	for k := range shards {
		ctx, cancel := context.WithTimeout(e.ctx, timeout)
		defer cancel()
		st, err := e.js.Stream(ctx, e.streamName(k))
		switch {
		case err == nil:
		case errors.Is(err, jetstream.ErrStreamNotFound):
			st, err = e.js.CreateStream(ctx, e.streamConfig(k, want))
			if err != nil {
				return 0, fmt.Errorf("node: creating stream %s with %d replicas: %w", e.streamName(k), want, err)
			}
			created = append(created, e.streamName(k))
		default:
			return 0, fmt.Errorf("node: looking up stream %s: %w", e.streamName(k), err)
		}
		if cfg := st.CachedInfo().Config; !e.keepStreamConfig(&cfg) {
			// The retention changed, or the stream is older than it.
			if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
				return 0, fmt.Errorf("node: setting the retention of stream %s to %v: %w", e.streamName(k), cfg.MaxAge, err)
			}
			e.log.Info("set the rooms' retention", "stream", e.streamName(k), "max_age", cfg.MaxAge)
		}
		replicas = min(replicas, st.CachedInfo().Config.Replicas)
	}
	e.kv, e.shards = kv, shards
	return replicas, nil
}

// allowTTL lets the stream name take messages with a TTL of their own.
func (e *roomEngine) allowTTL(ctx context.Context, name string) error {
	st, err := e.js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("node: looking up stream %s: %w", name, err)
	}
	cfg := st.CachedInfo().Config
	if cfg.AllowMsgTTL {
		return nil
	}
	cfg.AllowMsgTTL = true
	if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("node: letting the snapshots of %s expire (the retention needs nats-server 2.11 or later; --room-retention 0 keeps rooms for ever): %w", name, err)
	}
	return nil
}

// stuckWarning is how often the room engine says that it still waits for
// JetStream's metadata leader.
const stuckWarning = 30 * time.Second

// localElections bounds how long the room engine believes the embedded
// server's own view of its replicas' leaders (electing, leaderless): more
// than nats-server's longest election timeout (9 s) with room for a
// second election and a loaded machine. Past it, only answers of
// JetStream's API count, as for an external NATS.
const localElections = 20 * time.Second

// electing names a stream of the rooms (a shard's or the snapshot
// bucket's) that this node's embedded server holds a replica of and whose
// Raft group has no leader yet, or "" when there is none or the bus
// cannot tell (an external NATS).
func (e *roomEngine) electing() string {
	leaders := e.n.bus.StreamLeaders()
	for _, name := range slices.Sorted(maps.Keys(leaders)) {
		if leaders[name] == "" && e.roomsStream(name) {
			return name
		}
	}
	return ""
}

// streamNames names the rooms' streams: the snapshot bucket's, then each
// shard's.
func (e *roomEngine) streamNames() []string {
	names := []string{"KV_" + e.bucket}
	for k := range e.shards {
		names = append(names, e.streamName(k))
	}
	return names
}

// roomsStream reports whether name is one of the rooms' shard streams or
// the snapshot bucket's stream.
func (e *roomEngine) roomsStream(name string) bool {
	if name == "KV_"+e.bucket {
		return true
	}
	k, ok := strings.CutPrefix(name, e.stream+"_")
	if !ok || k == "" {
		return false
	}
	for _, c := range k {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// leaderless returns the name of a room stream, or of the snapshot
// bucket's stream, that has no leader yet, or "" when all have one. With
// local, a stream the embedded server holds a replica of is judged by
// that replica (StreamLeaders) without an API request.
func (e *roomEngine) leaderless(timeout time.Duration, local bool) (string, error) {
	ctx, cancel := context.WithTimeout(e.ctx, timeout)
	defer cancel()
	var leaders map[string]string
	if local {
		leaders = e.n.bus.StreamLeaders()
	}
	for _, name := range e.streamNames() {
		if leader, ok := leaders[name]; ok {
			if leader == "" {
				return name, nil
			}
			continue
		}
		st, err := e.js.Stream(ctx, name)
		if err != nil {
			return name, fmt.Errorf("node: looking up stream %s: %w", name, err)
		}
		if c := st.CachedInfo().Cluster; c != nil && c.Leader == "" {
			return name, nil
		}
	}
	return "", nil
}

// raiseReplicas raises the streams' and the bucket's replicas to want
// where they are lower.
func (e *roomEngine) raiseReplicas(want int) error {
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	for k := range e.shards {
		st, err := e.js.Stream(ctx, e.streamName(k))
		if err != nil {
			return fmt.Errorf("node: looking up stream %s: %w", e.streamName(k), err)
		}
		if cfg := st.CachedInfo().Config; cfg.Replicas < want {
			cfg.Replicas = want
			if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
				return fmt.Errorf("node: updating stream %s to %d replicas: %w", cfg.Name, want, err)
			}
		}
	}
	status, err := e.kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("node: reading bucket %s: %w", e.bucket, err)
	}
	if kvs, ok := status.(*jetstream.KeyValueBucketStatus); ok && kvs.StreamInfo().Config.Replicas < want {
		// Its stream's config as it is, replicas raised: the bucket's own
		// config would not say that it allows TTLs (setup), and JetStream
		// refuses to take that back.
		cfg := kvs.StreamInfo().Config
		cfg.Replicas = want
		if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("node: updating bucket %s to %d replicas: %w", e.bucket, want, err)
		}
	}
	return nil
}

// shardOf is the shard holding room. Only after ready.
func (e *roomEngine) shardOf(room string) int {
	h := fnv.New32a()
	h.Write([]byte(room))
	return int(h.Sum32() % uint32(e.shards))
}

// streamOf is the stream holding room. Only after ready.
func (e *roomEngine) streamOf(room string) string { return e.streamName(e.shardOf(room)) }

// jsOf is the JetStream handle, on one of the engine's connections, that
// carries room's records. Only after ready.
func (e *roomEngine) jsOf(room string) jetstream.JetStream {
	return e.jss[e.shardOf(room)%len(e.jss)]
}

// subjectOf is the subject of room's records. Only after ready.
func (e *roomEngine) subjectOf(room string) string {
	return e.prefix + strconv.Itoa(e.shardOf(room)) + "." + roomToken(room)
}

// roomToken maps a valid room name to one subject token and KV key: its
// dots become "=", which room names cannot hold.
func roomToken(room string) string { return strings.ReplaceAll(room, ".", "=") }

// textID is the JetStream message ID of a text chunk: a resend of it
// within the stream's duplicate window is not stored again. Room names
// hold neither "/" nor "#", and seqs are digits, so the ID is unique
// however the user is named: "ROOM/USER/SEQ" for a chunk without a
// device (as nodes wrote before devices), "ROOM#SEQ/LEN/USERDEVICE" for
// one with, LEN the user name's length. With its device in its ID,
// another device's chunk under the same seq is stored, not taken for
// the first one (room/devices.go).
func textID(room, user, dev string, seq uint64) string {
	if dev == "" {
		return room + "/" + user + "/" + strconv.FormatUint(seq, 10)
	}
	return room + "#" + strconv.FormatUint(seq, 10) + "/" + strconv.Itoa(len(user)) + "/" + user + dev
}

// publish stores rec in room's stream and returns its stream sequence. It
// retries through leader changes and missing responders, with backoff,
// until ctx ends; it returns only once JetStream acknowledged the record
// (a duplicate of msgID counts as stored).
func (e *roomEngine) publish(ctx context.Context, room string, rec record, msgID string) (uint64, error) {
	seq, _, err := e.publishAck(ctx, room, rec, msgID)
	return seq, err
}

// publishAck is publish, and says whether JetStream took the record for
// a duplicate of msgID: then seq is the stream sequence of the record
// stored under msgID before.
func (e *roomEngine) publishAck(ctx context.Context, room string, rec record, msgID string) (seq uint64, duplicate bool, err error) {
	select {
	case <-e.ready:
	case <-ctx.Done():
		return 0, false, fmt.Errorf("node: storing %s for room %s: %w", rec.Op, room, errRoomsNotReady)
	}
	data, err := wire.AppendJSON(nil, rec)
	if err != nil {
		return 0, false, fmt.Errorf("node: encoding %s for room %s: %w", rec.Op, room, err)
	}
	opts := []jetstream.PublishOpt{jetstream.WithExpectStream(e.streamOf(room))}
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	subject, js := e.subjectOf(room), e.jsOf(room)
	backoff := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ack, err := js.PublishMsg(actx, &nats.Msg{Subject: subject, Data: data}, opts...)
		cancel()
		if err == nil {
			e.metrics.stored.WithLabelValues(rec.Op).Inc()
			e.stored.Add(1)
			return ack.Sequence, ack.Duplicate, nil
		}
		if !retryable(err) || ctx.Err() != nil {
			e.metrics.storeErrors.Inc()
			return 0, false, fmt.Errorf("node: storing %s for room %s (attempt %d): %w", rec.Op, room, attempt, err)
		}
		e.log.Debug("storing a room record; retrying", "room", room, "op", rec.Op, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			e.metrics.storeErrors.Inc()
			return 0, false, fmt.Errorf("node: storing %s for room %s (attempt %d): %w", rec.Op, room, attempt, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// storedRecord reads the record at stream sequence seq of room's stream,
// trying again through a leader change until ctx ends, as publish does;
// a record no longer there is jetstream.ErrMsgNotFound.
func (e *roomEngine) storedRecord(ctx context.Context, room string, seq uint64) (record, error) {
	var msg *jetstream.RawStreamMsg
	backoff := 10 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		stream, err := e.jsOf(room).Stream(actx, e.streamOf(room))
		if err == nil {
			msg, err = stream.GetMsg(actx, seq)
		}
		cancel()
		if err == nil {
			break
		}
		if errors.Is(err, jetstream.ErrMsgNotFound) || ctx.Err() != nil {
			return record{}, fmt.Errorf("node: reading record %d of room %s: %w", seq, room, err)
		}
		select {
		case <-ctx.Done():
			return record{}, fmt.Errorf("node: reading record %d of room %s: %w", seq, room, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
	var rec record
	if err := json.Unmarshal(msg.Data, &rec); err != nil {
		return record{}, fmt.Errorf("node: reading record %d of room %s: %w", seq, room, err)
	}
	return rec, nil
}

// retryable reports whether a publish may succeed when tried again:
// everything but a closed connection and JetStream refusing the message
// itself.
func retryable(err error) bool {
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrMaxPayload) {
		return false
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case 10054, // JSStreamMessageExceedsMaximumErr
			10060: // JSStreamNotMatchErr
			return false
		}
	}
	return true
}

// acquire returns room's feed, starting it if needed, and counts key as
// one of its local sessions. Every acquire is paired with a release.
func (e *roomEngine) acquire(room, key string) *feed {
	e.mu.Lock()
	defer e.mu.Unlock()
	f := e.feeds[room]
	if f == nil {
		f = newFeed(e, room)
		e.feeds[room] = f
		e.wg.Go(f.run)
		e.wg.Go(f.writeTexts)
	}
	f.keys[key] = true
	return f
}

// release forgets key as a local session of f, and has f drop key's
// registration if its detach gave up (feed.dropReleased). After its last,
// f stops once the room lists no member of this node and linger has
// passed (feed.stopIfUnheld): a leave that was not stored, or a join
// stored after its session gave up, leaves a membership only this node's
// feed removes, and a store whose answer was lost may land for a while
// yet.
func (e *roomEngine) release(f *feed, key string, linger time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(f.keys, key)
	if until := time.Now().Add(linger); linger > 0 && until.After(f.lingerTill) {
		f.lingerTill = until
	}
	select {
	case f.released <- struct{}{}:
	default: // a check is already asked for
	}
}

// openFeeds counts the rooms this node holds.
func (e *roomEngine) openFeeds() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.feeds)
}

// stop ends the engine's work. A graceful stop first publishes, bounded
// to two seconds, the leave of every member of this node in each room it
// holds: its local sessions', and those a feed still lists after their
// session went (a leave the stream refused, a detach that gave up; the
// feed's own cleanup would store them, but not while the node stops), so
// that peers drop them at once rather than after the presence grace. A
// crash-like stop (Halt) leaves them to the peers' cleanup. Sessions that
// finish afterwards publish nothing.
func (e *roomEngine) stop(graceful bool) {
	e.mu.Lock()
	stopped := e.closing.Swap(true)
	e.mu.Unlock()
	if stopped {
		return
	}
	e.halting.Store(!graceful)
	if graceful && e.Ready() {
		type held struct {
			f    *feed
			keys []string
		}
		// A first join under way is stored before the leaves, if it
		// ends within a second: stored after them, it would list its
		// session until the peers' grace passed. The leaves keep their
		// own 2 s.
		joined := make(chan struct{})
		go func() {
			e.joins.Wait()
			close(joined)
		}()
		select {
		case <-joined:
		case <-time.After(time.Second):
		}
		ctx, cancel := context.WithTimeout(e.ctx, 2*time.Second)
		e.mu.Lock()
		rooms := make(map[string]held, len(e.feeds))
		for room, f := range e.feeds {
			rooms[room] = held{f, slices.Collect(maps.Keys(f.keys))}
		}
		e.mu.Unlock()
		var wg sync.WaitGroup
		for room, h := range rooms {
			wg.Go(func() {
				keys := h.f.ownMembers(ctx, h.keys)
				if len(keys) == 0 {
					return
				}
				if _, err := e.publish(ctx, room, record{Op: recLeave, Keys: keys}, ""); err != nil {
					e.log.Warn("publishing the leave of this node's members", "room", room, "err", err)
				}
			})
		}
		wg.Wait()
		cancel()
	}
	e.cancel()
}

// beginJoin reports whether a first join may go on: not once the engine
// stops. A join that may ends with endJoin; a graceful stop waits for it.
func (e *roomEngine) beginJoin() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closing.Load() {
		return false
	}
	e.joins.Add(1)
	return true
}

// endJoin ends a first join that beginJoin let go on.
func (e *roomEngine) endJoin() { e.joins.Done() }

// wait waits for the engine's goroutines after stop, then closes its
// connections.
func (e *roomEngine) wait() {
	e.wg.Wait()
	for _, nc := range e.conns {
		nc.Close()
	}
}

// streamLeaders is what this node knew of the rooms' streams' leaders
// at one moment (readStreamLeaders): stream name -> the leader's node
// ID, "" while it has none. A stream is missing when the node knows
// nothing of it yet, or its leader's name matched no node the directory
// listed.
type streamLeaders struct {
	at      time.Time
	leaders map[string]string
}

// streamLeader returns the node that leads stream, one of the rooms',
// as this node knows it (readStreamLeaders), "" while it has none; known is false
// when the node cannot tell (an external NATS, or nothing heard of the
// stream yet). The embedded server's state is read off the caller's
// goroutine, at most once a
// heartbeat for all the rooms (it takes the streams' locks, which a
// stalled store may hold): the caller gets the last read, and known
// false before the first. Safe for concurrent use.
func (e *roomEngine) streamLeader(stream string) (id string, known bool) {
	sl := e.leaders.Load()
	if (sl == nil || time.Since(sl.at) >= e.n.cfg.Heartbeat) && e.reading.CompareAndSwap(false, true) {
		e.wg.Go(func() {
			defer e.reading.Store(false)
			e.leaders.Store(&streamLeaders{at: time.Now(), leaders: e.readStreamLeaders()})
		})
	}
	if sl == nil {
		return "", false
	}
	id, known = sl.leaders[stream]
	return id, known
}

// watchElections keeps e.elected from JetStream's advisories of stream
// leaders elected, so that a node without a replica of a room's stream
// (with more than three nodes, most of them) still knows its leader.
// Only with an embedded cluster, whose servers are the nodes.
func (e *roomEngine) watchElections() {
	if e.n.cfg.Bus != "" {
		return // an external NATS: its servers are no nodes of ours
	}
	_, err := e.conns[0].Subscribe(jsLeaderElected+">", func(msg *nats.Msg) {
		var adv struct {
			Stream string `json:"stream"`
			Leader string `json:"leader"`
		}
		if json.Unmarshal(msg.Data, &adv) != nil || adv.Leader == "" || !e.roomsStream(adv.Stream) {
			return
		}
		e.electedMu.Lock()
		e.elected[adv.Stream] = adv.Leader
		e.electedMu.Unlock()
	})
	if err != nil {
		e.log.Warn("watching the rooms' stream elections; a node without a copy of a stream counts a dead leader's grace from the death", "err", err)
	}
}

// jsLeaderElected is the prefix of JetStream's advisory subjects of a
// stream leader elected (nats-server's JSAdvisoryStreamLeaderElectedPre).
const jsLeaderElected = "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED."

// electedLeaders returns the leaders of the rooms' streams this node
// holds no replica of (not in local), by server name: what the
// advisories said, or for a stream none has named yet, its stream info
// (asked once, here, off the feeds' goroutines).
func (e *roomEngine) electedLeaders(local map[string]string) map[string]string {
	out := make(map[string]string)
	for _, name := range e.streamNames() {
		if _, ok := local[name]; ok {
			continue
		}
		e.electedMu.Lock()
		leader, ok := e.elected[name]
		e.electedMu.Unlock()
		if !ok && e.Ready() {
			leader = e.askLeader(name)
			e.electedMu.Lock()
			if _, ok := e.elected[name]; !ok {
				e.elected[name] = leader // "" when unanswered: asked once
			} else {
				leader = e.elected[name] // an advisory came meanwhile
			}
			e.electedMu.Unlock()
		}
		if leader != "" {
			out[name] = leader
		}
	}
	return out
}

// askLeader asks JetStream's API for the leader of stream name, "" if
// it has none or the question goes unanswered within a second.
func (e *roomEngine) askLeader(name string) string {
	ctx, cancel := context.WithTimeout(e.ctx, time.Second)
	defer cancel()
	st, err := e.js.Stream(ctx, name)
	if err != nil {
		return ""
	}
	if c := st.CachedInfo().Cluster; c != nil {
		return c.Leader
	}
	return ""
}

// readStreamLeaders maps the leaders of the rooms' streams (by server
// name: this node's replicas' view, StreamLeaders, or for the others
// the elections it heard of) to node IDs: a server is named after its
// node (sanitize). A name that two IDs sanitize to names no one: its
// streams are left out.
func (e *roomEngine) readStreamLeaders() map[string]string {
	byServer := e.n.bus.StreamLeaders()
	if len(byServer) == 0 {
		return nil // an external NATS, or JetStream not up yet
	}
	maps.Copy(byServer, e.electedLeaders(byServer))
	ids := map[string]string{}
	note := func(id string) {
		name := sanitize(id)
		if other, ok := ids[name]; ok && other != id {
			ids[name] = "" // ambiguous
			return
		}
		ids[name] = id
	}
	note(e.n.cfg.ID)
	if v := e.n.view.Load(); v != nil {
		for _, n := range v.nodes {
			note(n.ID)
		}
	}
	leaders := make(map[string]string, len(byServer))
	for stream, server := range byServer {
		if server == "" {
			leaders[stream] = ""
		} else if id := ids[server]; id != "" {
			leaders[stream] = id
		}
	}
	return leaders
}

// peerView caches the room.View of one directory view and one map of
// incarnations, both immutable, so that the feeds of all rooms share it.
type peerView struct {
	dir      *view
	incs     *map[string]uint64
	answered time.Time // when the question was asked whose answer vouches (zero: none)
	v        *room.View
	vouched  *room.View // v.Vouched(answered); nil when answered is zero
}

// peers returns this node's view of the cluster as of now, for the rooms'
// presence rules: vouched for by the latest answer of the node's
// external bus while it is recent (busAnswered, busVouchFor) and the
// node is connected to its bus, so that a node its bus answers removes
// the members of peers gone from the bus as a majority would. Safe for
// concurrent use.
func (e *roomEngine) peers() *room.View {
	dir, incs := e.n.view.Load(), e.incs.Load()
	answered := e.n.busAnswered()
	if !answered.IsZero() && (time.Since(answered) > busVouchFor || !e.n.bus.Conn.IsConnected()) {
		answered = time.Time{} // too old, or the bus is out of reach: that wins
	}
	pv := e.peerView.Load()
	if pv == nil || pv.dir != dir || pv.incs != incs || !pv.answered.Equal(answered) {
		var v *room.View
		if pv != nil && pv.dir == dir && pv.incs == incs {
			v = pv.v // only the answer changed
		} else {
			v = room.NewView(dir.nodes, *incs)
		}
		pv = &peerView{dir: dir, incs: incs, answered: answered, v: v}
		if !answered.IsZero() {
			pv.vouched = v.Vouched(answered)
		}
		e.peerView.Store(pv)
	}
	if pv.vouched != nil {
		return pv.vouched
	}
	return pv.v
}

// now is the time the feeds' presence rules run at: time.Now, or a test's
// clock.
func (e *roomEngine) now() time.Time {
	if clock := e.clock.Load(); clock != nil {
		return (*clock)()
	}
	return time.Now()
}
