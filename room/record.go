package room

import (
	"strings"
	"unicode/utf8"
)

// Operations of the records in a room's stream.
const (
	// OpJoin adds one session to the room.
	OpJoin = "join"
	// OpLeave removes one or more sessions from the room.
	OpLeave = "leave"
	// OpText is one chunk of text a session's user typed.
	OpText = "text"
	// OpBatch is several text chunks stored as one record, in order: the
	// chunks that waited on one node for one room while the record before
	// them was being stored. Applying it applies each of Recs as if it
	// had been stored alone, one after the other.
	OpBatch = "batch"
)

// Record is one entry of a room's stream, stored as this JSON object. Its
// field names are the stream's format: every node of every version reads
// them, so they never change. Apply and ApplyLive take a string that is
// not valid UTF-8 (which no record read from JSON holds) with each run of
// bytes that are not UTF-8 as one U+FFFD.
type Record struct {
	// Op is OpJoin, OpLeave, OpText or OpBatch. A record with another op
	// is counted as applied and otherwise ignored.
	Op string `json:"op"`
	// User is the user of a join or text.
	User string `json:"user,omitempty"`
	// Key is the session of a join or text, "node/session".
	Key string `json:"key,omitempty"`
	// Node and Inc say where a joining session lives: the node's ID and
	// its incarnation (join).
	Node string `json:"node,omitempty"`
	Inc  uint64 `json:"inc,omitempty"`
	// Keys are the sessions that leave (leave).
	Keys []string `json:"keys,omitempty"`
	// Seq and T are a text chunk: the sender's sequence number and the
	// text (text).
	Seq uint64 `json:"seq,omitempty"`
	T   string `json:"t,omitempty"`
	// Dev is the device that typed a text chunk: the attach's `device`,
	// the same for every session of one client (text; "" when the
	// client named none). It tells a resend from a chunk that another
	// device of the same user typed under the same seq (devices.go).
	Dev string `json:"dev,omitempty"`
	// Recs are the text chunks of a batch, each a text record (batch).
	// Records of other ops inside a batch are ignored.
	Recs []Record `json:"recs,omitempty"`
}

// Member is one session in a room, as the room's stream records it.
type Member struct {
	// User is the session's user.
	User string `json:"user"`
	// Node is the ID of the node the session is attached to.
	Node string `json:"node"`
	// Inc is that node's incarnation when the session joined.
	Inc uint64 `json:"inc"`
}

// valid returns rec with every string made valid UTF-8: each run of bytes
// that is not becomes one U+FFFD, the rule of package rtt. Records read
// from JSON always are valid, and valid returns them as they are; a Record
// built otherwise might not be, and then the text applied, the text
// delivered (which JSON encodes with one U+FFFD per byte) and the names a
// snapshot keeps would disagree.
func (rec Record) valid() Record {
	if rec.isValid() {
		return rec
	}
	fix := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
	rec.Op, rec.User, rec.Key, rec.Node, rec.T, rec.Dev = fix(rec.Op), fix(rec.User), fix(rec.Key), fix(rec.Node), fix(rec.T), fix(rec.Dev)
	keys := make([]string, len(rec.Keys))
	for i, k := range rec.Keys {
		keys[i] = fix(k)
	}
	recs := make([]Record, len(rec.Recs))
	for i, c := range rec.Recs {
		recs[i] = c.valid()
	}
	rec.Keys, rec.Recs = keys, recs
	return rec
}

// isValid reports whether every string of rec is valid UTF-8.
func (rec Record) isValid() bool {
	for _, s := range [...]string{rec.Op, rec.User, rec.Key, rec.Node, rec.T, rec.Dev} {
		if !utf8.ValidString(s) {
			return false
		}
	}
	for _, k := range rec.Keys {
		if !utf8.ValidString(k) {
			return false
		}
	}
	for _, c := range rec.Recs {
		if !c.isValid() {
			return false
		}
	}
	return true
}
