package node

import "time"

// snapshotHeadroom is what a room's snapshot leaves of the bus's largest
// message for the message's subject and headers (its TTL among them).
const snapshotHeadroom = 4096

// snapshotLimit is the largest room snapshot, in bytes, that the bus
// carries: the server's largest message (the embedded server's
// bus.MaxPayload, or what an external server announces) less
// snapshotHeadroom. room.Room.SnapshotWithin cuts a larger one to it.
func (e *roomEngine) snapshotLimit() int {
	return int(e.n.bus.Conn.MaxPayload()) - snapshotHeadroom
}

// keepDue reports whether, at now, the steward of a room with members
// must write its snapshot again so that what the room needs from storage
// never expires: from is when the oldest of it was stored (zero: it
// needs nothing), every a quarter of the retention (0: no retention), and
// retry the earliest time for another attempt after one that was made
// (keepBackoff).
func keepDue(now, from, retry time.Time, every time.Duration) bool {
	return every > 0 && !from.IsZero() && now.Sub(from) >= every && !now.Before(retry)
}

// keepBackoff is how long the steward waits after an attempt to keep a
// room's snapshot before the next one, should it fail (a snapshot too
// large, a bus without a quorum): an eighth of every. What the room needs
// expires four times every after from, so about two dozen attempts fit
// before it does, and a failing one costs an encoding of the room and a
// log line that often, not at every tick of every room.
func keepBackoff(every time.Duration) time.Duration { return every / 8 }
