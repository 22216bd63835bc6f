// Package t140 carries real-time text over RTP as RFC 4103 says: T.140
// text in UTF-8, one RTP timestamp unit per millisecond, and RFC 2198
// redundancy so that a lost packet's text arrives in the next ones.
//
// It is a pure core: it builds and reads RTP packets (github.com/pion/rtp)
// and never touches a socket or a clock; the caller passes timestamps in.
//
//   - Encoder turns the text typed since the last packet into the next
//     packet, carrying the previous Generations packets' text as redundant
//     blocks (two by default, as RFC 4103 recommends). After the last text
//     the caller keeps sending packets with no new text while Pending
//     says so, so that the redundancy reaches the receiver.
//   - Decoder turns packets back into text in order: a gap in the sequence
//     numbers is filled from the redundant blocks of the packet that ends
//     it, and text lost beyond them is marked with one U+FFFD, the missing
//     text marker of T.140. Duplicates and late packets add nothing.
//     A packet of another SSRC (a sender that restarted) is held until
//     the next of that source confirms it, or it has waited alone long
//     enough (Release); the stream then goes on from it, with the text
//     its redundant blocks recovered when the new source numbered its
//     packets anew, and late packets of the source before add nothing.
//   - Mixer merges the text of several room members into the one stream a
//     caller that knows nothing of multiparty can show, in the manner of
//     RFC 9071's presentation for such endpoints: one sender at a time, a
//     new line and a "[name]: " label when the sender changes, changes
//     only at line ends or after the sender has been idle for a while.
//     It reads each member's text as package rtt does, so the caller is
//     shown the text the room has, and makes labels no name can forge.
package t140
