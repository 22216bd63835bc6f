// Package room is the pure core of one real-time text room on one node:
// the rules that turn the records of the room's stream into the room's
// state and into deliveries to this node's sessions, and the cluster's
// state into the records this node should store. It does no I/O, reads no
// clock and starts no goroutine; the node's room feed (internal/node) owns
// a Room, feeds it records and time, delivers what it hands to its Sink
// and stores what Reconcile returns.
//
// # Walk-through
//
//	cfg := room.DefaultConfig("n1", inc)
//	cfg.Sink = sink                       // delivers lines to local sessions
//	r, err := room.New("lobby", cfg)      // or room.Restore("lobby", snap, cfg)
//	r.Register("n1/7", "ann")             // before ann's join is stored
//	r.Apply(41, room.Record{Op: room.OpJoin, User: "ann", Key: "n1/7", Node: "n1", Inc: inc})
//	line, err := r.Activate("n1/7")      // once seq 41 is applied: ann's state line
//	r.Apply(42, textRecord)               // text goes to the Sink, not to its typist
//	recs := r.Reconcile(now, view)        // leaves of stale members, lost joins: store them
//	data, err := r.SnapshotWithin(limit)  // {"v":2,...} as of r.Applied(), at most limit bytes
//
// # Records and presence
//
// A room's history is a stream of Records: join, leave and text, in one
// order on every node, so every node computes the same members, users and
// text. Members are sessions ("node/session" keys); a user is in the
// room while at least one of their sessions is. Sessions join, and a
// session that ends stores its leave. Sessions whose node died cannot;
// Reconcile finds them and the room's steward (see Steward) stores one
// leave for them. Leaves are idempotent: a member removed twice is
// removed once.
//
// Presence changes only on evidence the cluster agrees on. A foreign
// member is stale when its own node said so (a newer incarnation), or
// when its node was down or missing in this node's directory for Grace
// while this node saw a majority of the cluster up all along and kept
// watching without a gap; see Reconcile. A node paused (SIGSTOP) or cut
// off for a while sees every peer down when it returns, but not a
// majority up: it removes nobody. On an external bus the node's view may
// be vouched for instead (View.Vouched): the bus's JetStream answers the
// node, so the peers it does not see are gone or cut off from the bus.
//
// # Snapshots
//
// Snapshot writes, and Restore reads, this JSON object (version 2):
//
//	{
//	  "v": 2,                     // the format's version
//	  "seq": 1234,                // the stream sequence of the last record it covers
//	  "lines": [                  // completed lines, oldest first
//	    {"from": "ann", "text": "hello"}
//	  ],
//	  "senders": {                // every sender the text knows
//	    "ann": {"live": "wor", "seq": 17, "cr": true, "at": 1230}
//	  },                          // live: current line; seq: last seq applied;
//	                              // cr: the last chunk ended in CR; at: the
//	                              // stream sequence of the record that last
//	                              // brought their text. Each is left out
//	                              // when "", 0 or false.
//	  "members": {                // sessions in the room, by key
//	    "n1/7": {"user": "ann", "node": "n1", "inc": 1718000000000000000}
//	  }
//	}
//
// Snapshots written before "at" existed lack it: Restore takes their
// senders as of unknown age (0), and nodes that predate it ignore it.
// SnapshotWithin bounds a snapshot's size, for a bus that carries
// messages of a limited size: past the limit it cuts the unfinished
// lines of senders who are not in the room to a U+FFFD (oldest first), then the
// oldest completed lines, then cuts the start of the longest unfinished
// lines; members and seqs are always kept.
//
// Restore also reads version 1, which has no "v": {"seq": N, "state":
// {"Lines": [{"From", "Text"}], "Live": {}, "Seqs": {}, "PendingCR": {}},
// "members": {}} (the state in rtt.State's Go field names of the time).
// A snapshot of another version, damaged, or breaking a room's rules
// (text that is not valid UTF-8, a member without a user) is an error
// wrapping ErrSnapshot: the caller rebuilds the room from its stream.
// Every version keeps the covered sequence in the top-level "seq"
// (SnapshotSeq reads it), so that no node replaces a newer snapshot with
// an older one, whatever their formats.
// docs/rooms.md documents the format for operators.
//
// # The caller's duties
//
//   - One goroutine owns a Room; Sink.Deliver is called on it, during
//     Apply, ApplyLive and Reconcile, and must not block or call back
//     into the Room.
//   - Apply every record of the room's stream once, in stream order,
//     starting after Applied (after the snapshot the room came from).
//   - Register a local session before storing its join; Activate it once
//     its join is applied (the join's stream sequence is at or below
//     Applied); Detach it when it ends or once its leave is applied.
//   - Call Reconcile every few heartbeats with the time of the call and a
//     fresh View, and store the records it returns (their loss is
//     harmless: the next call asks again after Retry). It also sends the
//     states the room owes sessions (live.go), so call it even when
//     nothing else is due.
//   - Write snapshots only from the steward, and never let an older one
//     replace a newer one (SnapshotSeq reads a stored one's sequence).
package room
