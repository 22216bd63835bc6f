// Package rtt is the pure core of Switchboard's real-time text: the model
// of a conversation in which every character travels as it is typed, with
// the editing rules of ITU-T T.140 as RFC 4103 carries them and several
// senders in one room as in RFC 9071.
//
// # Walk-through
//
// A Room holds one conversation: the last completed lines of all senders
// (100 by default) and each sender's current, unfinished line. Text
// arrives in chunks, each from one sender with that sender's sequence
// number:
//
//	room := rtt.NewRoom(0)          // keeps the last 100 lines
//	room.Apply("ann", 1, "Helo")    // ann's line: "Helo"
//	room.Apply("ann", 2, "\blo")    // erase the "o", type "lo": "Hello"
//	room.Apply("bob", 1, "Hi")      // bob's line, apart from ann's: "Hi"
//	res := room.Apply("ann", 3, "\r\n")
//	// res.Lines: [{ann Hello}]; ann's line is empty again, bob's still "Hi"
//	room.Apply("ann", 3, "\r\n")    // a resend: res.Duplicate, ignored
//	room.Apply("bob", 3, "!")       // seq 2 was lost: bob's line is "Hi\uFFFD!"
//	snap := room.State()            // a deep copy to send to a joiner
//	view, err := rtt.FromState(0, snap) // the joiner's view, from scratch
//
// # What each character does
//
// Text is UTF-8. Within a chunk, character by character:
//
//   - BACKSPACE (U+0008) erases the last user-perceived character of the
//     sender's current line: its last extended grapheme cluster by the
//     rules of Unicode's UAX #29 (Unicode 15.0, as github.com/rivo/uniseg
//     implements them), such as a base character with its combining and
//     spacing marks, a Hangul syllable, a whole emoji ZWJ sequence or a
//     flag; never a byte or part of a character (see Backspace). On an
//     empty current line it does nothing: it never reaches into a
//     completed line.
//   - LINE SEPARATOR (U+2028), PARAGRAPH SEPARATOR (U+2029), CR LF, LF and
//     a lone CR each complete the current line. A CR at the end of a chunk
//     completes the line at once; an LF at the start of the sender's next
//     chunk then belongs to it and completes nothing.
//   - BEL (U+0007) is an alert: it is counted in Result.Alerts and does not
//     enter the text.
//   - U+FFFD marks text lost in transit. The Room inserts one into the
//     sender's current line when a chunk's seq skips one or more chunks.
//   - BOM (U+FEFF) is ignored wherever it appears.
//   - HORIZONTAL TAB (U+0009) becomes one space, so pasted words stay apart.
//   - An escape sequence (ESC [ ... final byte, as T.140's SGR, or ESC and
//     one byte, as T.140's INT) and a C1 CSI sequence are dropped whole when
//     they lie within one chunk; the part of one cut by a chunk's end is
//     dropped and the rest arrives as text.
//   - Every other C0 control, DEL and C1 control (U+0080-U+009F) is
//     dropped. Dropped characters and BEL do not separate a CR from its LF.
//   - Each run of bytes that is not valid UTF-8 becomes one U+FFFD, so a
//     line always is valid UTF-8 and shows where something was damaged.
//   - Any other character is appended to the line. A character that would
//     make the line longer than MaxLineBytes (4096) completes the line
//     first and starts the next one.
//
// A sender's erasures and line ends touch only that sender's current line.
// Completed lines of all senders go to one history in the order they were
// completed; the oldest are dropped beyond the Room's limit.
//
// # Sequence numbers
//
// Each sender numbers their chunks from 1. A chunk whose seq is not above
// the last one applied from its sender is a duplicate and is ignored
// (Result.Duplicate), which is how a server drops resends by (sender,
// seq). A seq more than one above the last means a gap (Result.Gap). Seq 0
// marks an unsequenced chunk: always applied, never recorded.
//
// # The caller's duties
//
//   - One goroutine owns a Room; nothing in this package blocks, starts a
//     goroutine, reads a clock or does I/O.
//   - Send characters whole: a chunk that ends inside a multi-byte UTF-8
//     character or an escape sequence is taken as it is (U+FFFD for the cut
//     character). RFC 4103 and T.140 ask the same of senders.
//   - Bound the input before it gets here: chunk size, chunk rate and the
//     number of senders per Room. A Room remembers every sender it has seen
//     until Forget, so call Forget when a participant leaves; it completes
//     their unfinished line.
//   - A receiver that joins late, or after a failover, starts from the
//     room's State (FromState or Load) rather than from seq 1, or the first
//     chunk it sees from each sender counts as a gap. Load checks the
//     snapshot and rejects one that breaks the Room's rules (ErrState).
//   - Carry State.PendingCR with a snapshot where the wire allows it;
//     without it a CR LF split across the snapshot can show one extra empty
//     line.
package rtt
