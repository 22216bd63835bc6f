package directory

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/switchboard/switchboard/jsonlen"
)

// Errors a Change of kind Refused carries, wrapped with the details.
var (
	// ErrTooMany: the table already holds Limits.MaxEntries nodes.
	ErrTooMany = errors.New("directory: too many entries")
	// ErrTooLarge: the entries would take more than Limits.MaxBytes.
	ErrTooLarge = errors.New("directory: entries too large")
	// ErrFieldTooLong: a field of the entry is longer than Limits.MaxField.
	ErrFieldTooLong = errors.New("directory: entry field too long")
)

// Limits bound what a Table holds, so that a flood of entries, or a few
// huge ones, cannot take a node's memory. (What a client is sent is
// bounded apart from them: Sample chooses a view that fits one protocol
// line, however large the table.) A zero field sets no bound. The self
// entry is never refused, but it counts.
type Limits struct {
	// MaxEntries is the most nodes held, down ones and self included.
	MaxEntries int
	// MaxBytes is the most bytes the nodes held may take in a directory
	// message, as EncodedSize counts them with their numbers and status
	// at their widest (see Table.Bytes).
	MaxBytes int
	// MaxField is the longest ID, Addr, HTTP, Group or Version, in bytes.
	MaxField int
}

// DefaultLimits holds a cluster of up to 2,000 nodes: at most 2,000
// entries, 4 MiB of them (a few hundred bytes each is typical), and fields
// of at most 300 bytes (a host name of 253 and a port). Clients are sent
// views of it (Sample), never more than one protocol line.
func DefaultLimits() Limits {
	return Limits{MaxEntries: 2000, MaxBytes: 4 << 20, MaxField: 300}
}

// admit checks an entry about to be held: known says whether its ID is
// held already, held is how many entries are held, and total the bytes
// they would take with it.
func (l Limits) admit(n Node, known bool, held, total int) error {
	if l.MaxField > 0 {
		for _, f := range []struct{ name, v string }{{"id", n.ID}, {"addr", n.Addr}, {"http", n.HTTP}, {"group", n.Group}, {"version", n.Version}} {
			if len(f.v) > l.MaxField {
				return fmt.Errorf("%w: %s is %d bytes, the most is %d", ErrFieldTooLong, f.name, len(f.v), l.MaxField)
			}
		}
	}
	if !known && l.MaxEntries > 0 && held >= l.MaxEntries {
		return fmt.Errorf("%w: %d held, the most is %d", ErrTooMany, held, l.MaxEntries)
	}
	if l.MaxBytes > 0 && total > l.MaxBytes {
		return fmt.Errorf("%w: %d bytes with this one, the most is %d", ErrTooLarge, total, l.MaxBytes)
	}
	return nil
}

// nodeFrame is a Node's JSON with every string empty and every number
// left out: what EncodedSize adds the strings and numbers to.
const nodeFrame = `{"id":"","addr":"","http":"","group":"","status":"","users":,"capacity":,"version":"","hb":,"age_ms":},`

// maxIntLen is the longest decimal int64, sign included.
const maxIntLen = 20

// EncodedSize is an upper bound of the bytes n takes in a directory
// message encoded as JSON, followed by a comma: its strings as escaped at
// worst, its users and capacity as they are, and its age at the widest.
// It reads no clock and encodes nothing, so a Table can count it on every
// Apply.
func EncodedSize(n Node) int {
	size := len(nodeFrame) + maxIntLen
	size += len(strconv.Itoa(n.Users)) + len(strconv.Itoa(n.Capacity)) + len(strconv.FormatInt(n.HeartbeatMS, 10))
	for _, s := range []string{n.ID, n.Addr, n.HTTP, n.Group, string(n.Status), n.Version} {
		size += escapedLen(s)
	}
	return size
}

// heldSize is what a Table counts n for against Limits.MaxBytes:
// EncodedSize with its numbers at their widest and its status at the
// longest a status may be (maxStatus letters: a later version's status
// too), so that a peer's updates take no more room than it holds
// whatever users, status and heartbeat they carry; only longer strings
// need more. At the byte bound (a flood of long entries)
// a peer whose users gain a digit, or that starts draining, is then
// never refused, which would have left it to be marked down while it
// spoke.
func heldSize(n Node) int {
	n.Users, n.Capacity, n.HeartbeatMS = math.MinInt, math.MinInt, math.MinInt64
	if escapedLen(string(n.Status)) <= maxStatus {
		n.Status = longestStatus
	}
	return EncodedSize(n)
}

// escapedLen is the most bytes s takes as a JSON string's contents as
// json.Marshal writes it (HTML-sensitive characters escaped too).
func escapedLen(s string) int { return jsonlen.Escaped(s, true) }
