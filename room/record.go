package room

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
// them, so they never change.
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
