package room

import (
	"errors"
	"hash/fnv"
)

// Devices: two sessions of one user that type the same seq.
//
// Seqs are the user's, not the session's: a client counts on from where
// the room's state says its user stopped. Two clients of one user (a
// phone and a laptop) that type at the same moment, each before it has
// seen the other's chunk, can therefore send the same seq with other
// text. Taken for a resend, the second chunk would be acknowledged (its
// record was stored) and dropped: text its typist saw acknowledged, lost.
//
// A client that names its device at attach (Record.Dev) lets the room
// tell the two apart. A device sends its chunks under rising seqs (it
// numbers a chunk once, and keeps the seq until the chunk is
// acknowledged, and after a reconnect or a refusal sends them all again
// in order), and the node stores a session's chunks in the order sent,
// holding back every later one after a refusal until the refused one
// comes again or a state shows its seq stored: so the seqs a device sent
// of the chunks the room stored are all those up to the highest. The
// room keeps that highest seq for each of a user's last RecentDevices
// devices (those that stored a chunk last), while the user is in it. A
// chunk with a device at or below its user's last stored seq is then
//
//   - a resend, dropped as before, when its device is known and sent it
//     at or below that device's highest, or when its device is not known
//     and its seq is at or below the user's floor: the user's last seq
//     when the room began to keep the user's devices, raised to the
//     highest seq of each device it stopped keeping (the room does not
//     know, and takes it for a resend, as it always did);
//   - otherwise another device's chunk under a seq already taken: the
//     room stores it under the user's next seq (the last stored plus
//     one), so it is delivered, kept in the history and counted in the
//     state's seqs like any other; the ack its session gets still names
//     the seq it sent.
//
// The first version kept the user's last 16 chunks instead, and took a
// chunk older than all of them for a resend: a device that failed over
// for a few seconds while another typed more than 16 chunks had its
// resends of chunks that died with its node dropped.
//
// The session that typed a moved chunk gets the room's state once the
// record is applied: its own view holds the chunk under the seq it sent,
// where the room holds the other device's, and its client drops that one
// as its own text. The state puts the room's view in place of its own
// and shows it the seq to count on from. It gets at most one such state
// every MovedStateEvery records, so that a session sending seqs it knows
// taken, to be moved, cannot have a state (up to a line of 64 KiB)
// encoded and sent for each of its chunks; meanwhile its chunks are
// moved all the same, and its view lacks the other device's text until
// its next state.
//
// A chunk without a device is always judged by its seq alone. The
// decision depends only on the records applied and on what a snapshot
// holds (the devices are part of it), so every node takes the same one.
// When the user's last session leaves, the room keeps the user's last
// LeftDevices devices (raising the floor to the highest seq of each it
// drops), for as long as it remembers the sender: a phone that lost its
// connection with a chunk on the way, and comes back after the user's
// laptop typed over its seq and closed, still has its resend moved, not
// dropped. It keeps them for at most MaxUsers users who left, those
// whose text came last (as SnapshotWithin orders senders), so that they
// add little to a snapshot: devices for each of the MaxSenders senders
// would double a small room's. The room forgets them with the sender
// (Config.MaxSenders), or when MaxUsers users who left typed since: a
// later resend of the user's is then judged by its seq alone.

// MovedStateEvery is how many records the room applies at least between
// two states it sends a session for its moved chunks: its own records,
// not the stream's, which carries other rooms' too.
const MovedStateEvery = 16

// RecentDevices is how many of a user's devices the room keeps, those
// that stored a chunk last, while the user is in it.
const RecentDevices = 16

// LeftDevices is how many of a user's devices the room keeps, those that
// stored a chunk last, once the user has left (for the last MaxUsers
// users who left to type): few, to keep snapshots small.
const LeftDevices = 4

// maxSeq is the largest seq a chunk is stored under: 2^53-1, the largest
// integer every JSON reader holds exactly. A chunk that would have to be
// stored above it is taken for a resend.
const maxSeq = 1<<53 - 1

// devices is what the room keeps of a user's devices.
type devices struct {
	// floor: a chunk from a device not listed, at or below it, is taken
	// for a resend.
	floor uint64
	// list: the devices that stored a chunk last, the latest last.
	list []device
}

// device is one device of a user.
type device struct {
	dev  uint64 // devHash of its name
	sent uint64 // the highest seq it sent of the chunks the room stored
}

// devHash is the 64-bit FNV-1a hash of a device name, 0 for none (and 1
// for a name that hashes to 0).
func devHash(dev string) uint64 {
	if dev == "" {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(dev))
	if v := h.Sum64(); v != 0 {
		return v
	}
	return 1
}

// storeSeq is the seq a text chunk of user with seq sent, from the device
// hashed to dev, is stored under: sent itself when it is above the user's
// last stored seq or is a resend (then Apply drops it), the user's next
// seq when it is another device's chunk under a seq already taken.
func (r *Room) storeSeq(user string, sent, dev uint64) uint64 {
	last := r.text.Seq(user)
	if sent == 0 || sent > last || dev == 0 || last >= maxSeq {
		return sent
	}
	ds := r.devices[user]
	if ds == nil {
		return sent // no device of the user known: a resend
	}
	for _, d := range ds.list {
		if d.dev == dev {
			if sent <= d.sent {
				return sent // this device's own: a resend
			}
			return last + 1
		}
	}
	if sent <= ds.floor {
		return sent // older than what the room knows: a resend
	}
	return last + 1
}

// remember notes a chunk of user stored under seq, sent under sent from
// the device hashed to dev, if the chunk named its device and the user is
// in the room or the room keeps the user's devices. Chunks without one
// need no note: none can be a resend of a chunk with a device, and no
// chunk without one is judged by the notes.
func (r *Room) remember(user string, seq, sent, dev uint64) {
	ds := r.devices[user]
	if seq == 0 || dev == 0 || (ds == nil && r.users[user] == 0) {
		return
	}
	if ds == nil {
		// What came before is judged by seq alone.
		ds = &devices{floor: seq - 1}
		r.devices[user] = ds
	}
	i := 0
	for i < len(ds.list) && ds.list[i].dev != dev {
		i++
	}
	d := device{dev: dev, sent: sent}
	if i < len(ds.list) {
		d.sent = max(d.sent, ds.list[i].sent)
		ds.list = append(ds.list[:i], ds.list[i+1:]...)
	}
	ds.list = append(ds.list, d)
	ds.keep(r.keptDevices(user))
}

// boundLeftDevices forgets the devices of the users who left, beyond
// the MaxUsers whose text came last.
func (r *Room) boundLeftDevices() {
	var left []string
	for user := range r.devices {
		if r.users[user] == 0 {
			left = append(left, user)
		}
	}
	if len(left) <= r.cfg.MaxUsers {
		return
	}
	r.oldestFirst(left)
	for _, user := range left[:len(left)-r.cfg.MaxUsers] {
		delete(r.devices, user)
	}
}

// keptDevices is how many devices of user the room keeps: RecentDevices
// while the user is in it, LeftDevices after.
func (r *Room) keptDevices(user string) int {
	if r.users[user] == 0 {
		return LeftDevices
	}
	return RecentDevices
}

// keep drops all but the n devices that stored last, raising the floor
// to the highest seq each dropped one sent.
func (ds *devices) keep(n int) {
	if len(ds.list) <= n {
		return
	}
	drop := len(ds.list) - n
	for _, d := range ds.list[:drop] {
		ds.floor = max(ds.floor, d.sent)
	}
	ds.list = append(ds.list[:0], ds.list[drop:]...)
}

// restoreDevices takes a snapshot's devices of user, checking that a room
// could have kept them: at most RecentDevices while the user is in the
// room (listed under "devices") and LeftDevices after (under "left"),
// each named once, none that sent or a floor above the user's last seq.
func (r *Room) restoreDevices(user string, floor uint64, list []deviceV2, left bool) error {
	switch {
	case left && r.users[user] != 0:
		return errors.New("devices kept for a user who left, of a user in the room")
	case !left && r.users[user] == 0:
		return errors.New("devices of a user not in the room")
	}
	if len(list) > r.keptDevices(user) {
		return errors.New("too many devices")
	}
	last := r.text.Seq(user)
	if floor > last {
		return errors.New("devices' floor above the user's seq")
	}
	ds := &devices{floor: floor, list: make([]device, len(list))}
	for i, d := range list {
		if d.Dev == 0 || d.Sent == 0 || d.Sent > last {
			return errors.New("a device without a name, or that sent above the user's seq")
		}
		for _, e := range list[:i] {
			if e.Dev == d.Dev {
				return errors.New("a device listed twice")
			}
		}
		ds.list[i] = device{dev: d.Dev, sent: d.Sent}
	}
	r.devices[user] = ds
	return nil
}

// restoreRecent takes a snapshot's recent chunks of user, the form of the
// first version, checking that a room could have kept them: the user in
// the room, at most 16, stored seqs rising up to the user's last, none
// sent above its own. It keeps each device's highest sent seq, and the
// seq before the oldest chunk for the floor.
func (r *Room) restoreRecent(user string, recent []recentV2) error {
	if r.users[user] == 0 {
		return errors.New("recent chunks of a user not in the room")
	}
	if len(recent) > 16 {
		return errors.New("too many recent chunks")
	}
	for i, c := range recent {
		if c.Seq == 0 || c.Sent == 0 || c.Sent > c.Seq || (i > 0 && c.Seq <= recent[i-1].Seq) || c.Seq > r.text.Seq(user) {
			return errors.New("recent chunks out of order")
		}
	}
	for _, c := range recent {
		r.remember(user, c.Seq, c.Sent, c.Dev) // notes only chunks with a device
	}
	if ds := r.devices[user]; ds != nil {
		ds.floor = recent[0].Seq - 1
	}
	return nil
}

// resendMoved sends the room's state to the active local sessions whose
// chunks Apply moved, unless they got one since epoch (resendStates) or
// one for a moved chunk within the last MovedStateEvery records.
func (r *Room) resendMoved(epoch uint64) {
	keys := r.moved
	r.moved = nil
	line, err := r.StateLine()
	if err != nil {
		return // it keeps its view; its next join brings the state
	}
	var next uint64
	for _, key := range keys {
		lm := r.local[key]
		if lm == nil || !lm.active || lm.since > epoch || (lm.movedAt != 0 && r.records-lm.movedAt < MovedStateEvery) {
			continue
		}
		lm.movedAt, lm.owed = r.records, false
		if next == 0 {
			r.epoch++
			next = r.epoch
		}
		lm.since = next
		r.cfg.Sink.Deliver(key, line)
	}
}
