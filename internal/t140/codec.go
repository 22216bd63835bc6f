package t140

import (
	"errors"
	"fmt"

	"github.com/pion/rtp"
)

// Missing is T.140's missing text marker (U+FFFD), put where text was
// lost beyond what redundancy recovered.
const Missing = "\uFFFD"

// DefaultGenerations is how many earlier packets' text each packet carries
// again (RFC 4103 recommends two).
const DefaultGenerations = 2

// MaxGenerations bounds Generations; RFC 2198 allows more, nobody needs them.
const MaxGenerations = 5

// ErrPayloadType matches the error of a packet whose payload type is
// neither the T.140 nor the RED payload type agreed for the stream.
var ErrPayloadType = errors.New("t140: unexpected payload type")

// Format is a stream's payload types, as the SDP offer/answer agreed.
type Format struct {
	// T140 is the payload type of t140/1000 (dynamic, 96-127).
	T140 uint8
	// RED is the payload type of red/1000, 0 when the stream carries
	// plain T.140 without redundancy.
	RED uint8
}

// Encoder builds the packets of one outgoing T.140 stream. One goroutine
// owns an Encoder.
type Encoder struct {
	format      Format
	ssrc        uint32
	generations int
	seq         uint16
	history     []generation // the last packets' text, oldest first
	idle        bool
}

type generation struct {
	ts   uint32
	data []byte
}

// NewEncoder returns the encoder of a stream with format f, the given
// SSRC and first sequence number (RFC 3550 wants both random), carrying
// generations earlier packets in each packet when f has RED (0 means
// DefaultGenerations; it is capped at MaxGenerations).
func NewEncoder(f Format, ssrc uint32, firstSeq uint16, generations int) *Encoder {
	if generations <= 0 {
		generations = DefaultGenerations
	}
	generations = min(generations, MaxGenerations)
	if f.RED == 0 {
		generations = 0
	}
	return &Encoder{format: f, ssrc: ssrc, generations: generations, seq: firstSeq, idle: true}
}

// Pending reports whether text sent in the last packets still has to be
// carried again: while it does, the caller sends a packet (with no new
// text if there is none) every transmission interval.
func (e *Encoder) Pending() bool {
	for _, g := range e.history {
		if len(g.data) > 0 {
			return true
		}
	}
	return false
}

// Packet returns the next packet: text (which may be empty) as its
// primary data, at timestamp ts in milliseconds, with the earlier packets'
// text as redundant blocks; text older than a block's offset can say
// (MaxTSOffset) is left out, so that a receiver that lost it marks the
// loss. The marker bit is set on the first packet
// with text after an idle period, as RFC 4103 says. text must be at most
// 1023 bytes when the stream has redundancy.
func (e *Encoder) Packet(text []byte, ts uint32) (*rtp.Packet, error) {
	if e.generations > 0 && len(text) > maxBlockLen {
		return nil, fmt.Errorf("t140: %d bytes of text in one packet, above %d", len(text), maxBlockLen)
	}
	p := &rtp.Packet{Header: rtp.Header{
		Version:        2,
		PayloadType:    e.format.T140,
		SequenceNumber: e.seq,
		Timestamp:      ts,
		SSRC:           e.ssrc,
		Marker:         e.idle && len(text) > 0,
	}}
	e.seq++
	if e.generations == 0 {
		p.Payload = append([]byte(nil), text...)
	} else {
		red := make([]Block, 0, e.generations)
		// Fewer packets than generations so far: the first blocks are empty.
		for range e.generations - len(e.history) {
			red = append(red, Block{PT: e.format.T140})
		}
		for _, g := range e.history {
			b := Block{PT: e.format.T140, TSOffset: MaxTSOffset}
			switch d := ts - g.ts; {
			case d <= MaxTSOffset:
				b.TSOffset, b.Data = uint16(d), g.data
			case len(g.data) > 0:
				// Text too old for the offset field (no packet for
				// over 16 s while it was still to be repeated): left
				// out, and the older blocks before it with it, since
				// a receiver takes a packet's last blocks for the
				// packets just before it. A receiver reads how many
				// blocks a packet carries from their headers (RFC
				// 2198), and shows the text of the packets it lost
				// beyond them as missing (T.140's marker, RFC 4103),
				// as Decoder does. Sent empty, the block would read
				// as a packet that had no text: the loss unseen.
				red = red[:0]
				continue
			}
			// A packet without text, too old or not: an empty block
			// says so whatever its offset.
			red = append(red, b)
		}
		payload, err := MarshalRED(red, Block{PT: e.format.T140, Data: text})
		if err != nil {
			return nil, err
		}
		p.PayloadType, p.Payload = e.format.RED, payload
		e.history = append(e.history, generation{ts: ts, data: append([]byte(nil), text...)})
		if len(e.history) > e.generations {
			e.history = e.history[1:]
		}
	}
	if len(text) > 0 {
		e.idle = false
	} else if !e.Pending() {
		e.idle = true
	}
	return p, nil
}

// Decoder reads one incoming T.140 stream back into text. One goroutine
// owns a Decoder.
type Decoder struct {
	format  Format
	started bool
	ssrc    uint32
	next    uint16 // the sequence number expected next
	// A packet far from the sequence (maxDropout ahead, or more than
	// maxMisorder behind) is held until the packet after it confirms a
	// new sequence (RFC 3550 appendix A.1): a sender that restarted its
	// numbering with the same SSRC, not one stray packet.
	probing   bool
	probeNext uint16 // the sequence number that confirms it
	probeText []byte // the held packet's own text
	// A packet of another SSRC is held in the same way until a packet
	// of that SSRC after it confirms that the sender restarted: a late
	// or stray packet of another source does not turn the stream.
	switching  bool
	switchSSRC uint32
	switchNext uint16  // the sequence number after the held packet's
	switchText []byte  // the held packet's own text
	switchRed  []Block // its redundant blocks, their data copied
	switchOld  bool    // a packet of the stream's source came since
	// The source the stream had before the last change, and the
	// sequence number expected next from it: a packet of that source up
	// to maxMisorder behind it is a late one or a duplicate, its text
	// taken already or given up for lost, not a new source to hold.
	hasPrev  bool
	prevSSRC uint32
	prevNext uint16
}

// RFC 3550 appendix A.1's bounds on the sequence: a packet up to
// maxDropout ahead of the expected one continues the stream (the packets
// between are lost), up to maxMisorder behind it is late or a duplicate,
// and anything else starts a new sequence once the next packet confirms
// it.
const (
	maxDropout  = 3000
	maxMisorder = 100
)

// NewDecoder returns the decoder of a stream with format f.
func NewDecoder(f Format) *Decoder { return &Decoder{format: f} }

// SetFormat has d read the packets that follow with the payload types of
// f, keeping its place in the stream: a new SDP answer that changes them
// does not restart the sender's stream, whose next packet's redundant
// blocks repeat text d has given already. A new Decoder would give it
// again, as the lost text before a stream's first packet.
func (d *Decoder) SetFormat(f Format) { d.format = f }

// Decoded is what one packet adds to the stream.
type Decoded struct {
	// Text is the new text in order: text recovered from redundancy, then
	// the packet's own. Missing stands where text was lost: first, but
	// after a held packet's text when the packet that confirms a new
	// source (Decode) is the one that finds the loss.
	Text []byte
	// Lost counts the packets whose text could not be recovered.
	Lost int
	// Recovered counts the lost packets whose text redundancy restored.
	Recovered int
	// Old is set for a packet that adds nothing: a duplicate, a late
	// packet, or one far outside the sequence, held until the next one
	// confirms that the sender renumbered (its text then comes with it).
	Old bool
}

// Decode reads the next packet received. A packet of another SSRC is
// held until the next packet of that SSRC confirms that the sender
// restarted (one stray packet, or a late one of the old source, changes
// nothing); the stream then goes on from the held packet, giving its text
// after what its redundant blocks hold that is new: the text of the new
// source's first packets, lost before it (all of it when the new source
// numbers its packets anew, none of what the old source's packets gave
// when it carries on their numbering). After the change a packet of the
// source before it up to 100 behind the last one taken is late and adds
// nothing; one further from it is held as a new source's is. The
// call's first packet gives its own text after what its redundant blocks
// hold: the text of the first packets, lost before it. Sequence numbers follow RFC
// 3550 appendix A.1: a jump of up to 3000 packets is loss (marked once),
// a packet up to 100 behind is late, and any other jump is taken as the
// sender renumbering only when the next packet follows it, so that one
// stray packet cannot make the stream's own packets look late.
func (d *Decoder) Decode(p *rtp.Packet) (Decoded, error) {
	var redundant []Block
	var primary []byte
	switch {
	case d.format.RED != 0 && p.PayloadType == d.format.RED:
		red, prim, err := ParseRED(p.Payload)
		if err != nil {
			return Decoded{}, err
		}
		if prim.PT != d.format.T140 {
			return Decoded{}, fmt.Errorf("%w: primary block of payload type %d", ErrPayloadType, prim.PT)
		}
		redundant, primary = red, prim.Data
	case p.PayloadType == d.format.T140:
		primary = p.Payload
	default:
		return Decoded{}, fmt.Errorf("%w: %d", ErrPayloadType, p.PayloadType)
	}
	if !d.started {
		// The call's first packet here: its redundant blocks carry the
		// packets before it (an encoder sends them empty until it has
		// sent text), so text they hold was lost on the way.
		var out Decoded
		for _, b := range redundant {
			if b.PT == d.format.T140 && len(b.Data) > 0 {
				out.Text = append(out.Text, b.Data...)
				out.Recovered++
			}
		}
		d.started, d.ssrc, d.next, d.probing = true, p.SSRC, p.SequenceNumber+1, false
		out.Text = append(out.Text, primary...)
		return out, nil
	}
	if p.SSRC != d.ssrc {
		if d.hasPrev && p.SSRC == d.prevSSRC && p.SequenceNumber-d.prevNext >= 1<<16-maxMisorder {
			// A duplicate or late packet of the source the stream had
			// before: its text was taken (or marked lost) then. Held,
			// it would be given again and turn the stream back.
			return Decoded{Old: true}, nil
		}
		if !d.switching || p.SSRC != d.switchSSRC || p.SequenceNumber-d.switchNext >= maxDropout {
			// One packet of another source: held until the next of
			// that source confirms that the sender restarted.
			d.switching, d.switchSSRC, d.switchNext, d.switchOld = true, p.SSRC, p.SequenceNumber+1, false
			d.switchText = append(d.switchText[:0], primary...)
			d.switchRed = d.switchRed[:0]
			for _, b := range redundant {
				b.Data = append([]byte(nil), b.Data...) // b.Data aliases p
				d.switchRed = append(d.switchRed, b)
			}
			return Decoded{Old: true}, nil
		}
		// Confirmed: the stream goes on from the held packet, and the
		// packets between it and this one are lost or in this one's
		// redundancy.
		out := d.takeSwitch()
		next := d.inSequence(p, redundant, primary)
		out.Text = append(out.Text, next.Text...)
		out.Lost += next.Lost
		out.Recovered += next.Recovered
		return out, nil
	}
	if d.switching {
		d.switchOld = true // the held packet may be a stray: Release keeps it
	}
	return d.inSequence(p, redundant, primary), nil
}

// Holding reports whether the decoder holds the first packet of a new
// source that nothing has contradicted: no packet of the stream's source
// came since. A sender without redundancy sends no packet after its last
// character, so the receiver calls Release once the held packet has
// waited long enough alone.
func (d *Decoder) Holding() bool { return d.switching && !d.switchOld }

// Release takes the held packet of a new source (Holding) as the
// stream's: the sender restarted and sent nothing more since. It returns
// the packet's text; nothing when nothing is held.
func (d *Decoder) Release() Decoded {
	if !d.Holding() {
		return Decoded{}
	}
	return d.takeSwitch()
}

// takeSwitch makes the held packet's source the stream's, going on after
// that packet, and returns what the packet adds: the new text its
// redundant blocks hold, then its own.
//
// The blocks carry the packets just before the held one. Whether they
// are new depends on its sequence number, taken against the sequence the
// source itself had when the stream last left it, or else against the
// stream's (a sender whose encoder carries on across a change of SSRC,
// as a media relay re-anchoring the stream does, carries on the
// numbering too). A packet at most as many packets ahead of that
// sequence as it has blocks continues it: only its blocks from the
// expected packet on are new, as for any packet of the stream. Any other
// number is a new numbering, a sender that restarted: the blocks are read
// as the call's first packet's are, the text of the new source's first
// packets, lost before this one (an encoder sends its blocks empty until
// it has sent text). A new numbering that falls by chance within those
// few packets of the old one is misread; one in 20,000 or so.
func (d *Decoder) takeSwitch() Decoded {
	ref := d.next
	if d.hasPrev && d.switchSSRC == d.prevSSRC {
		ref = d.prevNext
	}
	var out Decoded
	red := d.switchRed
	switch delta := d.switchNext - 1 - ref; {
	case delta <= uint16(len(red)):
		for _, b := range red[len(red)-int(delta):] {
			if b.PT == d.format.T140 {
				out.Text = append(out.Text, b.Data...)
			}
			out.Recovered++
		}
	default:
		for _, b := range red {
			if b.PT == d.format.T140 && len(b.Data) > 0 {
				out.Text = append(out.Text, b.Data...)
				out.Recovered++
			}
		}
	}
	out.Text = append(out.Text, d.switchText...)
	d.hasPrev, d.prevSSRC, d.prevNext = true, d.ssrc, d.next
	d.switching, d.ssrc, d.next, d.probing = false, d.switchSSRC, d.switchNext, false
	d.switchRed = d.switchRed[:0]
	return out
}

// inSequence decodes a packet of the stream's SSRC by its sequence
// number (RFC 3550 appendix A.1's bounds).
func (d *Decoder) inSequence(p *rtp.Packet, redundant []Block, primary []byte) Decoded {
	delta := p.SequenceNumber - d.next
	switch {
	case delta < maxDropout:
		d.probing = false
	case delta >= 1<<16-maxMisorder:
		return Decoded{Old: true}
	case d.probing && p.SequenceNumber == d.probeNext:
		// Two packets in a row far from the old sequence: the sender
		// renumbered. What it sent between is unknown: marked lost.
		d.probing, d.next = false, p.SequenceNumber+1
		text := append(append([]byte(Missing), d.probeText...), primary...)
		d.probeText = d.probeText[:0]
		return Decoded{Text: text, Lost: 1}
	default:
		d.probing, d.probeNext = true, p.SequenceNumber+1
		d.probeText = append(d.probeText[:0], primary...)
		return Decoded{Old: true}
	}
	gap := int(delta)
	d.next = p.SequenceNumber + 1
	var out Decoded
	if gap > len(redundant) {
		out.Lost = gap - len(redundant)
		out.Text = append(out.Text, Missing...)
	}
	for _, b := range redundant[len(redundant)-min(gap, len(redundant)):] {
		if b.PT == d.format.T140 {
			out.Text = append(out.Text, b.Data...)
		}
		out.Recovered++
	}
	out.Text = append(out.Text, primary...)
	return out
}
