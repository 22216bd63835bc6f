package room

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/switchboard/switchboard/rtt"
	"github.com/switchboard/switchboard/wire"
)

// SnapshotVersion is the version of the snapshots Snapshot writes.
const SnapshotVersion = 2

// ErrSnapshot is wrapped by the errors Restore and SnapshotSeq return for
// a snapshot they cannot use: damaged, breaking the rules of a room, or
// of a version this package does not know (written by a newer node). The
// caller rebuilds the room from its stream instead, from the first
// record.
var ErrSnapshot = errors.New("room: unusable snapshot")

// snapshotV2 is the snapshot format, version 2. Every field has an
// explicit JSON name: the Go names may change, the stored ones may not.
type snapshotV2 struct {
	V       int                 `json:"v"`
	Seq     uint64              `json:"seq"`
	Lines   []lineV2            `json:"lines"`
	Senders map[string]senderV2 `json:"senders"`
	Members map[string]Member   `json:"members"`
}

type lineV2 struct {
	From string `json:"from"`
	Text string `json:"text"`
}

type senderV2 struct {
	Live string `json:"live,omitempty"`
	Seq  uint64 `json:"seq,omitempty"`
	CR   bool   `json:"cr,omitempty"`
	// At is the stream sequence of the record that last brought new text
	// of the sender (0: not known). Nodes that predate it ignore it.
	At uint64 `json:"at,omitempty"`
	// Devices are the sender's devices the room keeps (devices.go), the
	// one that stored a chunk last last, and Floor the seq at or below
	// which a chunk of a device not among them is a resend. Nodes that
	// predate them ignore them.
	Devices []deviceV2 `json:"devices,omitempty"`
	Floor   uint64     `json:"floor,omitempty"`
	// Left are the devices the room keeps of a sender who left it, in
	// the same form. Nodes that predate them ignore them (and keep no
	// devices of a sender who left).
	Left []deviceV2 `json:"left,omitempty"`
	// Recent are the last chunks stored of a sender, the form of the
	// first version of devices: read, never written.
	Recent []recentV2 `json:"recent,omitempty"`
}

type deviceV2 struct {
	Dev  uint64 `json:"dev"`
	Sent uint64 `json:"sent"`
}

type recentV2 struct {
	Seq  uint64 `json:"seq"`
	Sent uint64 `json:"sent"`
	Dev  uint64 `json:"dev,omitempty"`
}

// snapshotV1 is the format nodes wrote before version 2: no "v", and the
// text as rtt.State encoded with its Go field names. It is spelled out
// here so that renaming rtt.State's fields cannot change what loads.
type snapshotV1 struct {
	Seq   uint64 `json:"seq"`
	State struct {
		Lines []struct {
			From string `json:"From"`
			Text string `json:"Text"`
		} `json:"Lines"`
		Live      map[string]string `json:"Live"`
		Seqs      map[string]uint64 `json:"Seqs"`
		PendingCR map[string]bool   `json:"PendingCR"`
	} `json:"state"`
	Members map[string]Member `json:"members"`
}

// header is what every version shares.
type header struct {
	V   *int   `json:"v"`
	Seq uint64 `json:"seq"`
}

// ErrSnapshotTooLarge is wrapped by the error SnapshotWithin returns when
// even with everything it may cut gone the snapshot is larger than asked:
// the room's members and its senders' seqs alone do not fit.
var ErrSnapshotTooLarge = errors.New("room: snapshot too large")

// Snapshot encodes the room's state as of Applied in the current format
// (see the package documentation), whatever its size. Local sessions and
// presence evidence are this node's own and are not part of it.
func (r *Room) Snapshot() ([]byte, error) {
	data, err := wire.AppendJSON(nil, r.snapshot()) // as lines are: < > & left as they are
	if err != nil {
		return nil, fmt.Errorf("room %s: encoding its snapshot: %w", r.name, err)
	}
	return data, nil
}

// SnapshotWithin is Snapshot in at most limit bytes (limit <= 0: no
// bound). A snapshot that would be larger loses, until it fits:
//
//  1. the unfinished lines of the senders who are not in the room, the
//     one whose text last came longest ago first (by stream sequence,
//     then name): each becomes a U+FFFD, text lost. Their seqs stay, so
//     that every node still takes their resends for resends, and their
//     lines stay unfinished, so that every node forgets the same senders
//     first (Config.MaxSenders: those with an empty line go first);
//  2. its oldest completed lines, one by one;
//  3. the start of its longest unfinished lines, members' too: each
//     longer than half the longest keeps its last half-the-longest bytes
//     after a U+FFFD, until none is longer than 16 bytes.
//
// Then it returns an error wrapping ErrSnapshotTooLarge. The same state
// and limit give the same bytes on every node. A room restored from a cut
// snapshot holds what it kept; nodes that applied the records themselves
// keep the rest until they load the room again.
func (r *Room) SnapshotWithin(limit int) ([]byte, error) {
	snap := r.snapshot()
	data, err := wire.AppendJSON(nil, snap)
	if err != nil {
		return nil, fmt.Errorf("room %s: encoding its snapshot: %w", r.name, err)
	}
	if limit <= 0 || len(data) <= limit {
		return data, nil
	}
	// What each cut below saves is at least what it subtracts, so size
	// stays an upper bound and the encoding it allows fits.
	const lineFrame = len(`{"from":,"text":}`)
	size := len(data)
	var departed []string // senders not in the room with a line longer than lost
	for from, x := range snap.Senders {
		if len(x.Live) > len(lost) && r.users[from] == 0 {
			departed = append(departed, from)
		}
	}
	r.oldestFirst(departed)
	for {
		switch {
		case len(departed) > 0:
			from := departed[0]
			departed = departed[1:]
			x := snap.Senders[from]
			size -= wire.StringLen(x.Live) - wire.StringLen(lost)
			x.Live = lost
			snap.Senders[from] = x
		case len(snap.Lines) > 0:
			l := snap.Lines[0]
			size -= lineFrame + wire.StringLen(l.From) + wire.StringLen(l.Text)
			snap.Lines = snap.Lines[1:]
		default:
			longest := 0
			for _, x := range snap.Senders {
				longest = max(longest, len(x.Live))
			}
			if longest <= 16 {
				return nil, fmt.Errorf("room %s: %w: %d bytes with nothing left to cut, %d allowed (%d members, %d senders)",
					r.name, ErrSnapshotTooLarge, size, limit, len(snap.Members), len(snap.Senders))
			}
			keep := longest / 2
			for from, x := range snap.Senders {
				if len(x.Live) <= keep {
					continue
				}
				size -= wire.StringLen(x.Live)
				x.Live = cutLive(x.Live, keep)
				size += wire.StringLen(x.Live)
				snap.Senders[from] = x
			}
		}
		if size > limit {
			continue
		}
		if data, err = wire.AppendJSON(data[:0], snap); err != nil {
			return nil, fmt.Errorf("room %s: encoding its snapshot: %w", r.name, err)
		}
		if len(data) <= limit {
			return data, nil
		}
		size = len(data) // not an upper bound after all: cut on
	}
}

// snapshot is the room's state as of Applied in the current format.
func (r *Room) snapshot() snapshotV2 {
	st := r.text.State()
	snap := snapshotV2{
		V:       SnapshotVersion,
		Seq:     r.applied,
		Lines:   make([]lineV2, len(st.Lines)),
		Senders: make(map[string]senderV2, len(st.Live)),
		Members: r.members,
	}
	for i, l := range st.Lines {
		snap.Lines[i] = lineV2{From: l.From, Text: l.Text}
	}
	for from, live := range st.Live {
		x := senderV2{Live: live, Seq: st.Seqs[from], CR: st.PendingCR[from], At: r.senders[from]}
		if ds := r.devices[from]; ds != nil {
			list := make([]deviceV2, len(ds.list))
			for i, d := range ds.list {
				list[i] = deviceV2{Dev: d.dev, Sent: d.sent}
			}
			x.Floor = ds.floor
			if r.users[from] != 0 {
				x.Devices = list
			} else {
				x.Left = list
			}
		}
		snap.Senders[from] = x
	}
	return snap
}

// SnapshotSeq returns the stream sequence a snapshot covers, without
// restoring it. Every version, past and future, keeps it in the top-level
// "seq" field, so that a node never replaces a newer snapshot, even one
// it cannot read, with an older one.
func SnapshotSeq(data []byte) (uint64, error) {
	var h header
	if err := json.Unmarshal(data, &h); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	return h.Seq, nil
}

// Restore returns the room called name as a snapshot (version 1 or 2)
// left it, with no local sessions. It returns an error wrapping
// ErrSnapshot if the snapshot is damaged, of an unknown version or breaks
// the rules of a room, and one wrapping ErrConfig if cfg is unusable.
func Restore(name string, data []byte, cfg Config) (*Room, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("room %s: %w", name, err)
	}
	var h header
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("room %s: %w: %w", name, ErrSnapshot, err)
	}
	// Every field a snapshot of its version is written with must be
	// there: {"seq":500} alone would restore an empty room at 500 and
	// skip the records before it.
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		return nil, fmt.Errorf("room %s: %w: %w", name, ErrSnapshot, err)
	}
	var need []string
	switch {
	case h.V == nil:
		need = []string{"seq", "state", "members"}
	case *h.V == SnapshotVersion:
		need = []string{"seq", "lines", "senders", "members"}
	}
	for _, k := range need {
		if _, ok := keys[k]; !ok {
			return nil, fmt.Errorf("room %s: %w: no %q", name, ErrSnapshot, k)
		}
	}
	var (
		seq     uint64
		st      rtt.State
		members map[string]Member
		ats     = make(map[string]uint64)   // sender -> "at", where known
		devs    = make(map[string]senderV2) // sender -> its devices, where kept
	)
	switch {
	case h.V == nil:
		var s snapshotV1
		if err := json.Unmarshal(data, &s); err != nil {
			return nil, fmt.Errorf("room %s: %w: version 1: %w", name, ErrSnapshot, err)
		}
		seq, members = s.Seq, s.Members
		st = rtt.State{Live: s.State.Live, Seqs: s.State.Seqs, PendingCR: s.State.PendingCR}
		for _, l := range s.State.Lines {
			st.Lines = append(st.Lines, rtt.Line{From: l.From, Text: l.Text})
		}
	case *h.V == SnapshotVersion:
		var s snapshotV2
		if err := json.Unmarshal(data, &s); err != nil {
			return nil, fmt.Errorf("room %s: %w: version 2: %w", name, ErrSnapshot, err)
		}
		seq, members = s.Seq, s.Members
		st = rtt.State{
			Lines:     make([]rtt.Line, len(s.Lines)),
			Live:      make(map[string]string, len(s.Senders)),
			Seqs:      make(map[string]uint64),
			PendingCR: make(map[string]bool),
		}
		for i, l := range s.Lines {
			st.Lines[i] = rtt.Line{From: l.From, Text: l.Text}
		}
		for from, x := range s.Senders {
			st.Live[from] = x.Live
			if x.Seq != 0 {
				st.Seqs[from] = x.Seq
			}
			if x.CR {
				st.PendingCR[from] = true
			}
			ats[from] = x.At
			if len(x.Devices) > 0 || len(x.Left) > 0 || len(x.Recent) > 0 {
				devs[from] = x
			}
		}
	default:
		return nil, fmt.Errorf("room %s: %w: version %d, this node reads 1 and %d", name, ErrSnapshot, *h.V, SnapshotVersion)
	}
	// No stream gets near 2^53 records, and no chunk is stored above
	// maxSeq: a seq past it would have every later record skipped, or
	// every later chunk of its sender taken for a duplicate.
	if seq > maxSeq {
		return nil, fmt.Errorf("room %s: %w: seq %d past %d", name, ErrSnapshot, seq, uint64(maxSeq))
	}
	for from, n := range st.Seqs {
		if n > maxSeq {
			return nil, fmt.Errorf("room %s: %w: %s's seq %d past %d", name, ErrSnapshot, from, n, uint64(maxSeq))
		}
	}
	text, err := rtt.FromState(cfg.MaxLines, st)
	if err != nil {
		return nil, fmt.Errorf("room %s: %w: %w", name, ErrSnapshot, err)
	}
	r := newRoom(name, cfg, text)
	r.applied = seq
	for key, m := range members {
		if key == "" || m.User == "" {
			return nil, fmt.Errorf("room %s: %w: member %q without a key or user", name, ErrSnapshot, key)
		}
		r.members[key] = m
		r.users[m.User]++
	}
	for from := range st.Live {
		r.senders[from] = ats[from]
	}
	for from := range st.Seqs {
		r.senders[from] = ats[from]
	}
	for from, x := range devs {
		var err error
		switch {
		case len(x.Devices) > 0 && len(x.Left) > 0:
			err = errors.New("devices listed both in the room and left")
		case len(x.Devices) > 0:
			err = r.restoreDevices(from, x.Floor, x.Devices, false)
		case len(x.Left) > 0:
			err = r.restoreDevices(from, x.Floor, x.Left, true)
		default:
			err = r.restoreRecent(from, x.Recent)
		}
		if err != nil {
			return nil, fmt.Errorf("room %s: %w: sender %q: %w", name, ErrSnapshot, from, err)
		}
	}
	r.boundLeftDevices() // a node with a larger MaxUsers wrote it
	return r, nil
}

// SizeAtBounds is about the size in bytes (a few more a sender) of the
// snapshot of a room at cfg's bounds with nothing SnapshotWithin may cut:
// MaxUsers users, each in it from MaxUserSessions sessions under keys of
// keyLen bytes and with RecentDevices devices, and the rest of
// MaxSenders senders gone, the MaxUsers who typed last with LeftDevices
// devices each; every sender at a seq of 16 digits, every user name
// nameLen bytes of a character JSON doubles. A snapshot limit below it
// lets a full room with hostile names outgrow its snapshots
// (ErrSnapshotTooLarge), so that its replay grows.
func SizeAtBounds(cfg Config, nameLen, keyLen int) (int, error) {
	cfg.Sink = discard{}
	r, err := New("r", cfg)
	if err != nil {
		return 0, err
	}
	cfg = r.cfg // the defaults filled
	name := func(i int) string {
		s := strconv.Itoa(i)
		return s + strings.Repeat(`"`, max(0, nameLen-len(s)))
	}
	var seq uint64
	apply := func(rec Record) {
		seq++
		r.Apply(seq, rec)
	}
	// sender stores a chunk of user without a device, then one from
	// each of n devices. The gap from seq 0 leaves each a U+FFFD as its
	// line: a few bytes more than SnapshotWithin would keep of the
	// departed.
	sender := func(user string, n int) {
		apply(Record{Op: OpText, User: user, Seq: maxSeq - uint64(n)})
		for i := range n {
			apply(Record{Op: OpText, User: user, Seq: maxSeq - uint64(n) + 1 + uint64(i), Dev: "device" + strconv.Itoa(i)})
		}
	}
	for u := cfg.MaxUsers; u < cfg.MaxSenders; u++ {
		user, key := name(u), "gone"
		apply(Record{Op: OpJoin, Key: key, User: user, Node: cfg.Self, Inc: math.MaxUint64})
		sender(user, LeftDevices)
		apply(Record{Op: OpLeave, Keys: []string{key}})
	}
	for u := range cfg.MaxUsers {
		user := name(u)
		for k := range cfg.MaxUserSessions {
			id := strconv.Itoa(u*cfg.MaxUserSessions + k)
			key := id + strings.Repeat("k", max(0, keyLen-len(id)))
			apply(Record{Op: OpJoin, Key: key, User: user, Node: cfg.Self, Inc: math.MaxUint64})
		}
		sender(user, RecentDevices)
	}
	data, err := wire.AppendJSON(nil, r.snapshot())
	if err != nil {
		return 0, fmt.Errorf("room: encoding a snapshot at the bounds: %w", err)
	}
	return len(data), nil
}

// lost is what a state or snapshot keeps of a departed sender's
// unfinished line when it must cut it: the mark of text left out.
const lost = "\uFFFD"
