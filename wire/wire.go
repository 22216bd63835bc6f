package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/jsonlen"
	"github.com/switchboard/switchboard/rtt"
)

// Version is the protocol version this package speaks.
const Version = 1

// MaxLine is the longest line, in bytes without its newline, that a peer
// may send.
const MaxLine = 64 << 10

// Ops: what a message is. Clients send hello, attach, ping, join, leave and
// text; servers send directory, attached, pong, error, text, ack, presence,
// room and move.
const (
	OpHello     = "hello"
	OpDirectory = "directory"
	OpAttach    = "attach"
	OpAttached  = "attached"
	OpPing      = "ping"
	OpPong      = "pong"
	OpError     = "error"
	OpJoin      = "join"
	OpLeave     = "leave"
	OpText      = "text"
	OpAck       = "ack"
	OpPresence  = "presence"
	OpRoom      = "room"
	// OpMove asks an attached session to move to another node: the node
	// is draining. It carries a fresh directory (Dir) in which the node is
	// draining, and Message. The client attaches elsewhere, joins its
	// rooms there, and only then closes this connection; a session still
	// here at the drain's deadline is closed with CodeShutdown.
	OpMove = "move"
)

// Error codes carried by error messages.
const (
	CodeLineTooLong  = "line_too_long" // framing: the session is closed
	CodeBadJSON      = "bad_json"
	CodeBadUTF8      = "bad_utf8"
	CodeUnknownOp    = "unknown_op"
	CodeBadRequest   = "bad_request"
	CodeVersion      = "version"        // the hello named a version the server does not speak
	CodeNoHello      = "hello_required" // a message other than hello came first
	CodeNotAttached  = "not_attached"   // a room message before attach
	CodeHelloTimeout = "hello_timeout"  // no hello in time: the session is closed
	CodeFull         = "full"           // carries a fresh directory
	CodeDraining     = "draining"       // carries a fresh directory
	CodeIdle         = "idle_timeout"   // the session was silent too long: closed
	CodeLimit        = "limit"          // a per-session limit was passed
	CodeRate         = "rate"           // text arrives faster than allowed
	CodeUnavailable  = "unavailable"    // the room engine could not store or load in time: retry
	CodeShutdown     = "shutdown"       // the server is stopping: closed
	CodeUnauthorized = "unauthorized"   // attach without a valid token, or a join the token does not allow
	// CodeTooManyConns is sent on a connection the node accepted only to
	// refuse: it holds as many connections as it admits in total or from
	// the client's address. The connection is closed; retry later or on
	// another node.
	CodeTooManyConns  = "too_many_connections"
	CodeAttachTimeout = "attach_timeout" // hello but no attach in time: the session is closed
	CodeLineTimeout   = "line_timeout"   // one line took too long to arrive whole: the session is closed
	// CodeRemoved says, unasked, that the session is no longer in the
	// room the error names: its membership was removed while its node was
	// cut off, and the room was full when the node joined it again.
	CodeRemoved = "removed"
)

// Directory is the body of a directory message: every node of the service
// as the answering node knows it.
type Directory struct {
	// Service is the common service name.
	Service string `json:"service"`
	// Self is the ID of the node that answered.
	Self string `json:"self"`
	// Nodes lists every node, sorted by ID, or the view of them chosen
	// for the client (see Total).
	Nodes []directory.Node `json:"nodes"`
	// Total is how many nodes the answering node knows when Nodes holds
	// only some of them (a view: the client asked for at most Max, or
	// all would not fit in a line); 0 when Nodes holds them all. A delta
	// always says how many nodes there are.
	Total int `json:"total,omitempty"`
	// Delta marks a push of changes to a client whose hello asked for
	// them (Message.Deltas): Nodes are then the entries of the nodes that
	// changed, as they are now, and Gone the IDs of nodes no longer
	// listed at all; the client applies them to the directory it holds.
	Delta bool     `json:"delta,omitempty"`
	Gone  []string `json:"gone,omitempty"`
}

// Message is any protocol message; which fields are set depends on Op.
// Unknown fields are ignored so that newer peers can add some.
type Message struct {
	Op string `json:"op"`
	// V is the protocol version (hello, directory).
	V int `json:"v,omitempty"`

	// Client names the client software, "NAME/VERSION" (hello).
	Client string `json:"client,omitempty"`
	// Group is the client's preferred "region/zone" (hello).
	Group string `json:"group,omitempty"`
	// Max is the most nodes the client wants in a directory (hello); 0
	// for as many as fit in a line. See Directory.Total.
	Max int `json:"max,omitempty"`
	// Deltas says the client can apply a pushed directory's changes to
	// the one it holds (hello): the node then pushes only what changed
	// (Delta, Gone) where it can.
	Deltas bool `json:"deltas,omitempty"`

	// Service, Self and Nodes are the directory a directory message
	// carries, at the top level of the line (directory); see Directory.
	// DirectoryMessage builds such a message and Message.Directory reads
	// the directory back out of either kind of message that carries one.
	Service string           `json:"service,omitempty"`
	Self    string           `json:"self,omitempty"`
	Nodes   []directory.Node `json:"nodes,omitzero"`
	Total   int              `json:"total,omitempty"`
	Delta   bool             `json:"delta,omitempty"`
	Gone    []string         `json:"gone,omitempty"`

	// User is the user name (attach, attached, presence).
	User string `json:"user,omitempty"`
	// Token is the signed token naming the user (attach), required by
	// services that have a token key; see docs/security.md.
	Token string `json:"token,omitempty"`
	// Device names the client instance a session belongs to (attach):
	// the same for every session of one client, different for each
	// client of one user, so that two of them typing the same seq are
	// not taken for a resend. Optional; at most 64 bytes.
	Device string `json:"device,omitempty"`
	// Node is the ID of the node a session is attached to (attached).
	Node string `json:"node,omitempty"`
	// Session identifies an attached session (attached).
	Session string `json:"session,omitempty"`
	// Limits are the node's limits on the session's text (attached);
	// nil from nodes older than them.
	Limits *Limits `json:"limits,omitempty"`

	// Code and Message describe an error (error); Dir is a fresh directory
	// sent with full and draining errors, and with move.
	Code    string     `json:"code,omitempty"`
	Message string     `json:"message,omitempty"`
	Dir     *Directory `json:"directory,omitempty"`

	// Room names a conversation (join, leave, text, ack, presence, room).
	Room string `json:"room,omitempty"`
	// Seq is the sender's sequence number of a text chunk (text, ack).
	Seq uint64 `json:"seq,omitempty"`
	// T is the text of a chunk (text).
	T string `json:"t,omitempty"`
	// From is the sender of a delivered text chunk (text).
	From string `json:"from,omitempty"`
	// Event is "join" or "leave" (presence).
	Event string `json:"event,omitempty"`
	// State is a room's full state for a joiner (room).
	State *RoomState `json:"state,omitempty"`
}

// DirectoryMessage returns the directory message that carries d. Its
// nodes are sent as [] when d lists none.
func DirectoryMessage(d *Directory) Message {
	nodes := d.Nodes
	if nodes == nil {
		nodes = []directory.Node{}
	}
	return Message{Op: OpDirectory, V: Version, Service: d.Service, Self: d.Self, Nodes: nodes, Total: d.Total, Delta: d.Delta, Gone: d.Gone}
}

// Directory returns the directory m carries: a directory message's own,
// or the fresh one a full or draining error or a move comes with; nil for
// any other message.
func (m *Message) Directory() *Directory {
	switch {
	case m.Op == OpDirectory:
		return &Directory{Service: m.Service, Self: m.Self, Nodes: m.Nodes, Total: m.Total, Delta: m.Delta, Gone: m.Gone}
	case m.Dir != nil:
		return m.Dir
	}
	return nil
}

// RoomState is what a room looks like now: its last completed lines and
// every participant's unfinished line. Load it into an rtt.Room with
// TextState, which carries every field the text model needs.
type RoomState struct {
	// Lines are the last completed lines, oldest first.
	Lines []Line `json:"lines"`
	// Live maps each participant to their current, unfinished line.
	Live map[string]string `json:"live"`
	// Seqs maps each sender to the last seq the state includes.
	Seqs map[string]uint64 `json:"seqs,omitempty"`
	// PendingCR holds the senders whose last chunk ended with a CR: an LF
	// at the start of their next chunk ends no line (rtt.State.PendingCR).
	// Nodes and clients that predate it ignore it.
	PendingCR map[string]bool `json:"pending_cr,omitempty"`
	// Users lists who is in the room.
	Users []string `json:"users"`
}

// TextState returns the text of s as the rtt model holds it, for
// rtt.FromState or rtt.Room.Load: its lines, live lines, seqs and pending
// CRs. It shares the maps of s (Load copies what it keeps).
func (s *RoomState) TextState() rtt.State {
	st := rtt.State{Lines: make([]rtt.Line, len(s.Lines)), Live: s.Live, Seqs: s.Seqs, PendingCR: s.PendingCR}
	for i, l := range s.Lines {
		st.Lines[i] = rtt.Line{From: l.From, Text: l.Text}
	}
	return st
}

// Line is one completed line of a room.
type Line struct {
	From string `json:"from"`
	Text string `json:"t"`
}

// Error is a protocol error: a code from the Code constants and a message
// for people. Fatal errors close the session after they are sent.
type Error struct {
	Code  string
	Text  string
	Fatal bool
}

// Error gives the code and the text, after "wire: ".
func (e *Error) Error() string { return "wire: " + e.Code + ": " + e.Text }

// Errorf returns a non-fatal *Error with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Text: fmt.Sprintf(format, args...)}
}

// ErrorMessage turns err into the error message sent to a peer.
func ErrorMessage(err error) Message {
	var we *Error
	if errors.As(err, &we) {
		return Message{Op: OpError, Code: we.Code, Message: we.Text}
	}
	return Message{Op: OpError, Code: CodeBadRequest, Message: err.Error()}
}

var knownOps = map[string]bool{
	OpHello: true, OpDirectory: true, OpAttach: true, OpAttached: true,
	OpPing: true, OpPong: true, OpError: true, OpJoin: true, OpLeave: true,
	OpText: true, OpAck: true, OpPresence: true, OpRoom: true, OpMove: true,
}

// Limits are a node's limits on one session's text, sent with attached
// (docs/protocol.md, "Limits"): a client that keeps within them is not
// refused for its rate or for a chunk's length.
type Limits struct {
	// MaxChunk is the longest text chunk, in bytes.
	MaxChunk int `json:"max_chunk"`
	// ChunkRate and ChunkBurst are the session's bucket of chunks: it
	// holds ChunkBurst and refills at ChunkRate a second.
	ChunkRate  float64 `json:"chunk_rate"`
	ChunkBurst int     `json:"chunk_burst"`
	// ByteRate and ByteBurst are its bucket of text bytes.
	ByteRate  float64 `json:"byte_rate"`
	ByteBurst int     `json:"byte_burst"`
}

// Decode parses one line (without its newline). It checks that the line is
// valid UTF-8, one JSON object, and names a known op.
func Decode(line []byte) (Message, error) {
	var m Message
	if err := unmarshalLine(line, &m); err != nil {
		return Message{}, err
	}
	return m, checkOp(m.Op)
}

// DecodeFromClient is Decode for a line a client sent to a node: it reads
// only the fields a client may send (op, v, client, group, max, deltas,
// user, token, device, room, seq, t) and skips the others, such as a directory's
// nodes or a room's state, at the cost of scanning their bytes. Decoded
// into a Message, a line of 64 KiB of empty node objects took 15 MB; the
// node must not build what a client has no business sending.
func DecodeFromClient(line []byte) (Message, error) {
	var c struct {
		Op     string `json:"op"`
		V      int    `json:"v"`
		Client string `json:"client"`
		Group  string `json:"group"`
		Max    int    `json:"max"`
		Deltas bool   `json:"deltas"`
		User   string `json:"user"`
		Token  string `json:"token"`
		Device string `json:"device"`
		Room   string `json:"room"`
		Seq    uint64 `json:"seq"`
		T      string `json:"t"`
	}
	if err := unmarshalLine(line, &c); err != nil {
		return Message{}, err
	}
	m := Message{Op: c.Op, V: c.V, Client: c.Client, Group: c.Group, Max: c.Max, Deltas: c.Deltas,
		User: c.User, Token: c.Token, Device: c.Device, Room: c.Room, Seq: c.Seq, T: c.T}
	return m, checkOp(m.Op)
}

// unmarshalLine decodes line into v, with the errors of a line that is not
// UTF-8 or not a JSON object of v's shape.
func unmarshalLine(line []byte, v any) error {
	if !utf8.Valid(line) {
		return Errorf(CodeBadUTF8, "line is not valid UTF-8")
	}
	if err := json.Unmarshal(line, v); err != nil {
		return Errorf(CodeBadJSON, "line is not a JSON object: %v", err)
	}
	// Unmarshal takes null for a struct without a word; it is no object.
	if t := bytes.TrimLeft(line, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return Errorf(CodeBadJSON, "line is not a JSON object")
	}
	return nil
}

// checkOp is the error of a message without op or with an unknown one.
func checkOp(op string) error {
	if op == "" {
		return Errorf(CodeBadRequest, `message has no "op"`)
	}
	if !knownOps[op] {
		return Errorf(CodeUnknownOp, "unknown op %q", Clip(op, 64))
	}
	return nil
}

// Append encodes m as one JSON line, newline included, appended to buf.
// It leaves <, > and & as they are (encoding/json's Marshal would write
// each as six bytes, for JSON embedded in HTML, which lines never are),
// so a line is never more than twice its strings' bytes plus its frame.
func Append(buf []byte, m Message) ([]byte, error) {
	out, err := AppendJSON(buf, m)
	if err != nil {
		return buf, fmt.Errorf("wire: encoding %s message: %w", m.Op, err)
	}
	return append(out, '\n'), nil
}

// AppendJSON appends v encoded as JSON the way Append encodes a line's
// fields (no HTML escaping), without a newline: for callers that build a
// line from parts encoded ahead.
func AppendJSON(buf []byte, v any) ([]byte, error) {
	e := lineEncoders.Get().(*lineEncoder)
	e.buf = buf
	err := e.enc.Encode(v) // one Write of the whole value and a newline
	out := e.buf
	e.buf = nil
	lineEncoders.Put(e)
	if err != nil {
		return buf, err
	}
	return out[:len(out)-1], nil
}

// lineEncoder is a JSON encoder that appends to buf.
type lineEncoder struct {
	buf []byte
	enc *json.Encoder
}

func (e *lineEncoder) Write(p []byte) (int, error) {
	e.buf = append(e.buf, p...)
	return len(p), nil
}

var lineEncoders = sync.Pool{New: func() any {
	e := &lineEncoder{}
	e.enc = json.NewEncoder(e)
	e.enc.SetEscapeHTML(false)
	return e
}}

// Encode returns m as one JSON line, newline included.
func Encode(m Message) ([]byte, error) { return Append(nil, m) }

// MaxChunkLimit is the largest max_chunk a node may announce, in bytes:
// a chunk that long, escaped, fits a line whatever its characters.
const MaxChunkLimit = 8 << 10

// MaxSeq is the largest seq a text chunk may carry: 2^53-1, the largest
// integer every JSON reader holds exactly (JavaScript's
// Number.MAX_SAFE_INTEGER). A client counting up from 1 never reaches it,
// so seqs never wrap.
const MaxSeq = 1<<53 - 1

// MaxRoomName is the longest room name, in bytes.
const MaxRoomName = 64

// RoomNameProblem says what is wrong with a room name, or returns "" for a
// good one: 1 to MaxRoomName bytes of ASCII letters, digits, '-', '_' and
// '.'.
func RoomNameProblem(room string) string {
	if room == "" {
		return `room name missing ("room")`
	}
	if len(room) > MaxRoomName {
		return fmt.Sprintf("room name longer than %d bytes", MaxRoomName)
	}
	for i := 0; i < len(room); i++ {
		switch c := room[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return "room names hold only letters, digits, '-', '_' and '.'"
		}
	}
	return ""
}

// Clip is s cut to at most n bytes, at a character's start, followed by
// "…" when it was cut: for echoing a peer's string in a message.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// StringLen is an upper bound of the bytes s takes as a JSON string in a
// line, its quotes included: what Append writes for it, except that it
// counts six bytes for every control character (Append writes two for
// some). It lets a caller size a message before encoding it.
func StringLen(s string) int { return 2 + jsonlen.Escaped(s, false) }

// TextCost is what a chunk's text t counts against a session's byte
// rate (Limits.ByteRate, ByteBurst): its length in bytes, each control
// character that a line carries as a six-byte escape (\u0001, every C0
// control but BACKSPACE, TAB, LF, FORM FEED and CR, which take two)
// counted as those six. Every member of the room receives the text so
// escaped: counted by its length alone, a chunk of control characters
// cost its sender a sixth of what it cost each member's connection.
func TextCost(t string) int {
	n := len(t)
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c >= 0x20, c == '\b', c == '\t', c == '\n', c == '\f', c == '\r':
		default:
			n += 5
		}
	}
	return n
}
