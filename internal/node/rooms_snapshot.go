package node

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
