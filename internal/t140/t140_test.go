package t140

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pion/rtp"
)

var testFormat = Format{T140: 98, RED: 100}

func TestREDRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		redundant []Block
		primary   Block
	}{
		{"primary only", nil, Block{PT: 98, Data: []byte("hi")}},
		{"two generations", []Block{{PT: 98, TSOffset: 600, Data: []byte("a")}, {PT: 98, TSOffset: 300, Data: []byte("bc")}}, Block{PT: 98, Data: []byte("d")}},
		{"empty blocks", []Block{{PT: 98, TSOffset: 16383}, {PT: 98}}, Block{PT: 98}},
		{"longest block", []Block{{PT: 98, TSOffset: 1, Data: bytes.Repeat([]byte("x"), 1023)}}, Block{PT: 98, Data: []byte("é")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload, err := MarshalRED(tt.redundant, tt.primary)
			if err != nil {
				t.Fatal(err)
			}
			red, prim, err := ParseRED(payload)
			if err != nil {
				t.Fatal(err)
			}
			norm := func(bs []Block) []Block {
				out := []Block{}
				for _, b := range bs {
					if b.Data == nil {
						b.Data = []byte{}
					}
					out = append(out, b)
				}
				return out
			}
			if d := cmp.Diff(norm(red), norm(tt.redundant)); d != "" {
				t.Errorf("redundant (-got +want):\n%s", d)
			}
			if prim.PT != tt.primary.PT || !bytes.Equal(prim.Data, tt.primary.Data) {
				t.Errorf("primary = %d %q, want %d %q", prim.PT, prim.Data, tt.primary.PT, tt.primary.Data)
			}
		})
	}
}

func TestREDRejects(t *testing.T) {
	bad := map[string][]byte{
		"empty":               {},
		"header cut":          {0x80 | 98, 0, 0},
		"no primary header":   {0x80 | 98, 0, 4, 1},
		"block past the end":  {0x80 | 98, 0, 4, 9, 98, 'a'},
		"two blocks past end": {0x80 | 98, 0, 4, 1, 0x80 | 98, 0, 4, 1, 98, 'a'},
	}
	for name, p := range bad {
		if _, _, err := ParseRED(p); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	if _, err := MarshalRED([]Block{{PT: 98, TSOffset: MaxTSOffset + 1}}, Block{PT: 98}); !errors.Is(err, ErrMalformed) {
		t.Errorf("offset above 14 bits: err = %v", err)
	}
	if _, err := MarshalRED([]Block{{PT: 98, Data: make([]byte, 1024)}}, Block{PT: 98}); !errors.Is(err, ErrMalformed) {
		t.Errorf("block above 10 bits: err = %v", err)
	}
}

// send encodes each chunk (in 300 ms steps) and then the empty packets
// that carry the last chunks' redundancy.
func send(t *testing.T, e *Encoder, chunks []string) []*rtp.Packet {
	t.Helper()
	var out []*rtp.Packet
	ts := uint32(1000)
	for _, c := range chunks {
		p, err := e.Packet([]byte(c), ts)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
		ts += 300
	}
	for e.Pending() {
		p, err := e.Packet(nil, ts)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
		ts += 300
	}
	return out
}

// receive decodes packets through the wire (marshal, unmarshal) and
// returns the text.
// onePacket is e's next packet, carrying text.
func onePacket(t *testing.T, e *Encoder, text string) *rtp.Packet {
	t.Helper()
	p, err := e.Packet([]byte(text), 0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func receive(t *testing.T, d *Decoder, packets []*rtp.Packet) string {
	t.Helper()
	var text []byte
	for _, p := range packets {
		text = append(text, decodeSent(t, d, p).Text...)
	}
	return string(text)
}

// decodeSent decodes p as a receiver gets it: marshalled and read back.
func decodeSent(t *testing.T, d *Decoder, p *rtp.Packet) Decoded {
	t.Helper()
	raw, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var q rtp.Packet
	if err := q.Unmarshal(raw); err != nil {
		t.Fatal(err)
	}
	got, err := d.Decode(&q)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestLossRecovery(t *testing.T) {
	chunks := []string{"H", "e", "l", "l", "o", " ", "w", "o", "r", "l", "d"}
	tests := []struct {
		name   string
		format Format
		drop   []int // indexes of the packets lost
		want   string
	}{
		{"no loss", testFormat, nil, "Hello world"},
		{"one lost", testFormat, []int{3}, "Hello world"},
		{"two in a row lost", testFormat, []int{3, 4}, "Hello world"},
		{"three in a row lost: one marked", testFormat, []int{3, 4, 5}, "Hel\uFFFDo world"},
		{"scattered", testFormat, []int{1, 3, 5, 7, 9}, "Hello world"},
		{"last text packet lost, redundancy follows", testFormat, []int{10}, "Hello world"},
		{"plain T.140: a loss is marked", Format{T140: 98}, []int{2}, "He\uFFFDlo world"},
		{"the first packet lost", testFormat, []int{0}, "Hello world"},
		{"the first two packets lost", testFormat, []int{0, 1}, "Hello world"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			packets := send(t, NewEncoder(tt.format, 0xabc, 65530, 0), chunks)
			var kept []*rtp.Packet
			for i, p := range packets {
				lost := false
				for _, d := range tt.drop {
					lost = lost || d == i
				}
				if !lost {
					kept = append(kept, p)
				}
			}
			if got := receive(t, NewDecoder(tt.format), kept); got != tt.want {
				t.Errorf("text = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDuplicatesAndReorder(t *testing.T) {
	packets := send(t, NewEncoder(testFormat, 1, 0, 0), []string{"a", "b", "c", "d"})
	order := []*rtp.Packet{packets[0], packets[0], packets[2], packets[1], packets[3], packets[4], packets[2], packets[5]}
	if got := receive(t, NewDecoder(testFormat), order); got != "abcd" {
		t.Errorf("text = %q, want %q", got, "abcd")
	}
}

func TestMarkerAndPending(t *testing.T) {
	e := NewEncoder(testFormat, 1, 0, 0)
	var marks []bool
	for _, c := range []string{"a", "b", "", "", "", "c"} {
		p, err := e.Packet([]byte(c), 0)
		if err != nil {
			t.Fatal(err)
		}
		marks = append(marks, p.Marker)
	}
	if d := cmp.Diff(marks, []bool{true, false, false, false, false, true}); d != "" {
		t.Errorf("markers (-got +want):\n%s", d)
	}
	if !e.Pending() {
		t.Error("text just sent is not pending")
	}
}

func TestDecodeRejects(t *testing.T) {
	d := NewDecoder(testFormat)
	if _, err := d.Decode(&rtp.Packet{Header: rtp.Header{PayloadType: 0}}); !errors.Is(err, ErrPayloadType) {
		t.Errorf("audio payload type: err = %v", err)
	}
	p, _ := MarshalRED(nil, Block{PT: 0, Data: []byte("x")})
	if _, err := d.Decode(&rtp.Packet{Header: rtp.Header{PayloadType: 100}, Payload: p}); !errors.Is(err, ErrPayloadType) {
		t.Errorf("RED with a foreign primary: err = %v", err)
	}
	if _, err := d.Decode(&rtp.Packet{Header: rtp.Header{PayloadType: 100}, Payload: []byte{0x80}}); !errors.Is(err, ErrMalformed) {
		t.Errorf("cut RED: err = %v", err)
	}
}

// TestTextTooOldForRedundancy: text older than a redundant block's
// offset can say (MaxTSOffset, 16 s), repeated after the stream was not
// sent for longer, is left out of the packet, so that a receiver that
// lost it marks the loss; an empty generation that old is still sent as
// an empty block, so that losing it marks nothing. Before, text that old
// went as an empty block at the largest offset, which the receiver
// took for a packet without text: "x", "a" (lost), then 20 s later a
// packet of redundancy alone read as "x", the "a" gone without a mark.
func TestTextTooOldForRedundancy(t *testing.T) {
	type packet struct {
		text string
		ts   uint32
		lost bool
	}
	tests := []struct {
		name    string
		packets []packet
		want    string
		lost    int // packets whose text the receiver could not recover
	}{
		{"text too old, lost", []packet{{"x", 0, false}, {"a", 300, true}, {"", 20000, false}}, "x" + Missing, 1},
		{"text too old, then an empty packet, both lost", []packet{{"x", 0, false}, {"a", 300, true}, {"", 16500, true}, {"", 20000, false}}, "x" + Missing, 1},
		{"empty packets too old, lost", []packet{{"x", 0, false}, {"", 300, true}, {"", 600, true}, {"y", 20000, false}}, "xy", 0},
		{"text old but within the offset", []packet{{"x", 0, false}, {"a", 300, true}, {"", 16000, false}}, "xa", 0},
		{"text too old, received", []packet{{"x", 0, false}, {"a", 300, false}, {"", 20000, false}}, "xa", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, d := NewEncoder(testFormat, 1, 0, 2), NewDecoder(testFormat)
			var text []byte
			lost := 0
			for _, p := range tt.packets {
				sent, err := e.Packet([]byte(p.text), p.ts)
				if err != nil {
					t.Fatal(err)
				}
				if p.lost {
					continue
				}
				got := decodeSent(t, d, sent)
				text, lost = append(text, got.Text...), lost+got.Lost
			}
			if string(text) != tt.want || lost != tt.lost {
				t.Errorf("text %q, %d lost; want %q, %d lost", text, lost, tt.want, tt.lost)
			}
		})
	}
}

func TestMixer(t *testing.T) {
	t0 := time.Unix(0, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type write struct {
		ms         int
		from, text string
	}
	tests := []struct {
		name   string
		writes []write
		takeAt int
		want   string
	}{
		{"one sender", []write{{0, "ann", "hi"}}, 0, "[ann]: hi"},
		{"line ends become LS and relabel", []write{{0, "ann", "a\r\nb\nc\rd"}}, 0, "[ann]: a\u2028[ann]: b\u2028[ann]: c\u2028[ann]: d"},
		{"CR LF cut between chunks", []write{{0, "ann", "a\r"}, {1, "ann", "\nb"}}, 1, "[ann]: a\u2028[ann]: b"},
		{"erasure within the segment only", []write{{0, "ann", "ab"}, {0, "ann", "\b\b\bc"}}, 0, "[ann]: ab\b\bc"},
		{"a chunk's net effect", []write{{0, "ann", "ab\b\b\bc"}}, 0, "[ann]: c"},
		{"others wait for the line end", []write{{0, "ann", "hel"}, {10, "bob", "yo"}, {20, "ann", "lo\n"}}, 20, "[ann]: hello\u2028[bob]: yo"},
		{"others wait while the sender is busy", []write{{0, "ann", "hel"}, {10, "bob", "yo"}}, 1999, "[ann]: hel"},
		{"an idle sender is interrupted", []write{{0, "ann", "hel"}, {10, "bob", "yo"}}, 2000, "[ann]: hel\u2028[bob]: yo"},
		{"controls dropped, BOM dropped, BEL kept", []write{{0, "ann", "\ufeffa\x01\ab"}}, 0, "[ann]: a\ab"},
		{"C1 controls dropped (CSI with its sequence, NEL)", []write{{0, "ann", "a\u009b31mb\u0085c"}}, 0, "[ann]: abc"},
		{"escape sequences dropped whole within a chunk, as the room does", []write{{0, "ann", "a\x1b[1;31mb\x1b"}, {1, "ann", "[0mc\x1b7d"}}, 1, "[ann]: ab[0mcd"},
		{"a tab shows as a space", []write{{0, "ann", "a\tb"}}, 0, "[ann]: a b"},
		{"a character that cannot continue a sequence is shown", []write{{0, "ann", "a\x1b\u00e9b\x1b[1\u00e9c"}}, 0, "[ann]: a\u00e9b\u00e9c"},
		{"a name cannot end its label's line nor turn the text around", []write{{0, "sip:m\u2028[alice\u202e\u2066", "x"}}, 0, "[sip:m\ufffd(alice\ufffd\ufffd]: x"},
		{"a name's emoji keep their joiners", []write{{0, "ann \U0001F468\u200d\U0001F469\u200d\U0001F467", "x"}}, 0, "[ann \U0001F468\u200d\U0001F469\u200d\U0001F467]: x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMixer(0)
			for _, w := range tt.writes {
				m.Write(w.from, w.text, at(w.ms))
			}
			if got := string(m.Take(at(tt.takeAt))); got != tt.want {
				t.Errorf("Take = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMixerResumesInterruptedSender(t *testing.T) {
	t0 := time.Unix(0, 0)
	m := NewMixer(time.Second)
	m.Write("ann", "hel", t0)
	m.Write("bob", "yo\n", t0)
	got := string(m.Take(t0.Add(time.Second)))
	m.Write("ann", "\blo", t0.Add(2*time.Second))
	got += string(m.Take(t0.Add(2 * time.Second)))
	// ann's line is "helo" now: the chunk's net effect is an "o" after
	// the "hel" shown; her BACKSPACE reaches nothing past her new label.
	if want := "[ann]: hel\u2028[bob]: yo\u2028[ann]: o"; got != want {
		t.Errorf("text = %q, want %q", got, want)
	}
	m.Forget("ann")
	if got := string(m.Take(t0.Add(3 * time.Second))); got != "" {
		t.Errorf("after Forget: %q", got)
	}
}

// TestSequenceJumps: a sender that renumbers its packets (a phone whose
// RTP stack restarted with the same SSRC) is followed after two packets
// in a row, its first kept and the gap marked once; one stray packet far
// from the sequence (a forged or misrouted one) changes nothing. Before,
// a renumbering backwards made every packet look late until the new
// numbers caught up (up to 32,767 packets, hours of text dropped without
// a mark), and one stray packet ahead did the same to the real stream.
func TestSequenceJumps(t *testing.T) {
	for _, f := range []Format{testFormat, {T140: 98}} {
		name := "red"
		if f.RED == 0 {
			name = "plain"
		}
		t.Run(name+"/renumbered backwards", func(t *testing.T) {
			first := send(t, NewEncoder(f, 7, 1000, 0), []string{"a", "b"})
			again := send(t, NewEncoder(f, 7, 10, 0), []string{"c", "d"})
			if got, want := receive(t, NewDecoder(f), append(first, again...)), "ab"+Missing+"cd"; got != want {
				t.Errorf("text = %q, want %q", got, want)
			}
		})
		t.Run(name+"/renumbered ahead", func(t *testing.T) {
			first := send(t, NewEncoder(f, 7, 1000, 0), []string{"a", "b"})
			again := send(t, NewEncoder(f, 7, 40000, 0), []string{"c", "d"})
			if got, want := receive(t, NewDecoder(f), append(first, again...)), "ab"+Missing+"cd"; got != want {
				t.Errorf("text = %q, want %q", got, want)
			}
		})
		t.Run(name+"/one stray packet", func(t *testing.T) {
			e := NewEncoder(f, 7, 1000, 0)
			packets := send(t, e, []string{"a", "b"})
			stray, err := NewEncoder(f, 7, 1000+20000, 0).Packet([]byte("evil"), 0)
			if err != nil {
				t.Fatal(err)
			}
			packets = append(packets, stray)
			packets = append(packets, send(t, e, []string{"c", "d"})...)
			if got, want := receive(t, NewDecoder(f), packets), "abcd"; got != want {
				t.Errorf("text = %q, want %q", got, want)
			}
		})
		t.Run(name+"/wrapping around", func(t *testing.T) {
			packets := send(t, NewEncoder(f, 7, 65534, 0), []string{"a", "b", "c", "d"})
			if got, want := receive(t, NewDecoder(f), packets), "abcd"; got != want {
				t.Errorf("text = %q, want %q", got, want)
			}
		})
	}
}

// TestParseREDAllocatesLessThanThePacket: block headers claiming 1,023
// bytes each cost nothing before they are checked against the payload.
// Before, each header made a buffer of the length it claimed: 511
// headers in a 2,048-byte packet made 523 KB (256 times the packet)
// before the payload was found short.
func TestParseREDAllocatesLessThanThePacket(t *testing.T) {
	claims := bytes.Repeat([]byte{0x80 | 98, 0, 0x03, 0xff}, 511)
	few := append(bytes.Repeat([]byte{0x80 | 98, 0, 0x03, 0xff}, 3), 98)
	few = append(few, make([]byte, 3*1023+10)...)
	for name, tt := range map[string]struct {
		payload []byte
		ok      bool
	}{
		"511 headers claiming 1023 bytes": {claims, false},
		"3 blocks of 1023 bytes":          {few, true},
	} {
		const runs = 50
		var err error
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			_, _, err = ParseRED(tt.payload)
		}
		runtime.ReadMemStats(&after)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v", name, err)
		}
		if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 1024 {
			t.Errorf("%s: %d bytes allocated a parse of a %d-byte payload, want at most 1024", name, per, len(tt.payload))
		}
	}
	// More redundant blocks than any sender carries is malformed, even
	// when they are empty and fit.
	many := append(bytes.Repeat([]byte{0x80 | 98, 0, 0, 0}, maxRedundant+1), 98, 'x')
	if _, _, err := ParseRED(many); !errors.Is(err, ErrMalformed) {
		t.Errorf("%d empty blocks: err = %v, want ErrMalformed", maxRedundant+1, err)
	}
	ok := append(bytes.Repeat([]byte{0x80 | 98, 0, 0, 0}, maxRedundant), 98, 'x')
	if red, prim, err := ParseRED(ok); err != nil || len(red) != maxRedundant || string(prim.Data) != "x" {
		t.Errorf("%d empty blocks: %d blocks, primary %q, err %v", maxRedundant, len(red), prim.Data, err)
	}
}

// TestMixerTurnsAreBounded: a sender who types on mid-line without ever
// pausing for SwitchAfter keeps the caller's screen for MaxWait at most
// while another sender's text waits; then each waits for the other in
// turn. Before, the first sender held the screen for as long as they
// typed and the other's text never showed (past MaxQueued, it was
// dropped).
func TestMixerTurnsAreBounded(t *testing.T) {
	t0 := time.Unix(0, 0)
	m := NewMixer(time.Second)
	var got strings.Builder
	bobShown := time.Duration(-1)
	const step = 100 * time.Millisecond
	for at := time.Duration(0); at < 3*MaxWait; at += step {
		now := t0.Add(at)
		m.Write("ann", "a", now) // never idle, never a line end
		if at == step {
			m.Write("bob", "yo", now)
		} else if at > step {
			m.Write("bob", "b", now) // bob types on too
		}
		out := string(m.Take(now))
		if bobShown < 0 && strings.Contains(out, "[bob]: ") {
			bobShown = at
		}
		got.WriteString(out)
	}
	if want := step + MaxWait; bobShown != want {
		t.Fatalf("bob's text first shown at %v, want %v (after waiting MaxWait)", bobShown, want)
	}
	// Then they alternate, each turn MaxWait long: ann, bob, ann.
	labels := strings.Count(got.String(), "[ann]: ")
	if labels != 2 || strings.Count(got.String(), "[bob]: ") != 1 {
		t.Errorf("labels in %q...: ann %d, bob %d; want ann 2, bob 1", got.String()[:60], labels, strings.Count(got.String(), "[bob]: "))
	}
	// Nothing typed was dropped: every a and every b is on the screen
	// or still queued.
	rest := string(m.Take(t0.Add(time.Hour)))
	all := strings.NewReplacer("[ann]: ", "", "[bob]: ", "").Replace(got.String() + rest)
	if a, b := strings.Count(all, "a"), strings.Count(all, "b"); a != 300 || b != 298 {
		t.Errorf("%d a and %d b shown, want 300 and 298", a, b)
	}
}

// TestMixerBoundsWaitingText: a sender who keeps the caller's screen
// (typing mid-line, never idle long enough to be interrupted) lets the
// others' text wait, but at most MaxQueued of it each; the rest is
// dropped and marked once, and their next text starts a new line.
// Before, it piled up for as long as the first sender typed.
func TestMixerBoundsWaitingText(t *testing.T) {
	t0 := time.Unix(0, 0)
	m := NewMixer(time.Second)
	m.Write("ann", "hi", t0)
	m.Take(t0)
	chunk := strings.Repeat("b", 1000)
	for i := range 3 * MaxQueued / len(chunk) {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		m.Write("bob", chunk, at)
		m.Write("ann", "i", at) // ann keeps the screen
		m.Take(at)
	}
	m.Write("ann", "\n", t0.Add(time.Second))
	got := string(m.Take(t0.Add(time.Second)))
	_, bob, ok := strings.Cut(got, "[bob]: ")
	if !ok {
		t.Fatalf("bob's text was not shown: %q", got[:min(len(got), 80)])
	}
	mark := Missing + LineSeparator
	if len(bob) > MaxQueued+len(mark) || !strings.HasSuffix(bob, mark) || strings.Count(bob, Missing) != 1 {
		t.Errorf("bob's waiting text shown: %d bytes, ending %q; want at most %d, marked once at the end", len(bob), bob[max(0, len(bob)-8):], MaxQueued+len(mark))
	}
	// Once shown, bob's text is taken again, on a new line: nothing
	// after the mark may erase what was shown before it.
	m.Write("bob", "ok", t0.Add(2*time.Second))
	if got := string(m.Take(t0.Add(2 * time.Second))); got != "[bob]: ok" {
		t.Errorf("bob's next text: %q, want %q", got, "[bob]: ok")
	}
}

// TestMixerQueuesAWholeChunk: a chunk that finds nothing of its sender's
// queued is shown whole, however much its changes count against
// MaxQueued: a paste of 300 short lines (1,800 bytes, each line end a
// change of its own), a chunk of BELs between characters, a chunk of
// wire.MaxChunkLimit (8 KiB) of short lines. A waiting sender's paste is
// queued whole too, and the next, past the bound, is dropped and marked.
// Before, a chunk's changes were checked against MaxQueued as a whole,
// and each of these chunks reached the caller as Missing and a new line,
// from the sender shown with nobody else waiting too.
func TestMixerQueuesAWholeChunk(t *testing.T) {
	paste := strings.Repeat("line\r\n", 300)
	tests := []struct {
		name, chunk string
	}{
		{"300 short lines", paste},
		{"BELs between characters", strings.Repeat("0\a", 2250)},
		{"8 KiB of short lines", strings.Repeat("a\n", 4<<10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkAgainstRoom(t, []string{tt.chunk}); strings.Contains(got, Missing) {
				t.Errorf("sent %q..., marked lost", got[:min(len(got), 40)])
			}
		})
	}

	t0 := time.Unix(0, 0)
	m := NewMixer(time.Second)
	m.Write("ann", "hi", t0)
	m.Take(t0)
	m.Write("bob", paste, t0) // ann keeps the screen: bob waits
	m.Write("bob", paste, t0)
	m.Write("ann", "\n", t0)
	want := LineSeparator + strings.Repeat("[bob]: line"+LineSeparator, 300) + "[bob]: " + Missing + LineSeparator
	if got := string(m.Take(t0)); got != want {
		t.Errorf("bob's two pastes: %d lines shown, %d marks; want 300 lines and one mark", strings.Count(got, "[bob]: line"), strings.Count(got, Missing))
	}
}

// TestMixerCut: text that could not be sent is marked, and the next text
// starts a new labelled line that an erasure cannot reach past.
func TestMixerCut(t *testing.T) {
	t0 := time.Unix(0, 0)
	m := NewMixer(0)
	m.Write("ann", "abc", t0)
	m.Take(t0) // lost on the way
	if got := string(m.Cut()); got != Missing+LineSeparator {
		t.Errorf("Cut = %q", got)
	}
	m.Write("ann", "\b\bd", t0)
	if got, want := string(m.Take(t0)), "[ann]: d"; got != want {
		t.Errorf("after Cut: %q, want %q", got, want)
	}
}

// A sender's last words, queued when their leave arrives (the room sends
// their text before their leave, and the caller's stream is paced), are
// shown before the sender is dropped: at once when they are the one
// shown, in their turn when they wait behind another.
func TestMixerShowsTheLastWordsOfASenderWhoLeft(t *testing.T) {
	t0 := time.Unix(0, 0)
	m := NewMixer(time.Second)
	m.Write("ann", "bye", t0)
	m.Forget("ann")
	if got, want := string(m.Take(t0)), "[ann]: bye\u2028"; got != want { // her line is complete, as in the room
		t.Errorf("the one shown left: Take = %q, want %q", got, want)
	}
	if _, ok := m.senders["ann"]; ok {
		t.Error("ann is still a sender once her text was shown")
	}

	m = NewMixer(time.Second)
	m.Write("bob", "typing", t0)
	got := string(m.Take(t0))
	m.Write("ann", "see you\n", t0)
	m.Forget("ann")
	got += string(m.Take(t0.Add(100 * time.Millisecond))) // bob is busy mid-line: ann waits
	m.Write("bob", " on", t0.Add(200*time.Millisecond))
	got += string(m.Take(t0.Add(2 * time.Second))) // bob idle for SwitchAfter: ann's turn
	if want := "[bob]: typing on\u2028[ann]: see you\u2028"; got != want {
		t.Errorf("a waiting sender left: text = %q, want %q", got, want)
	}
	if _, ok := m.senders["ann"]; ok {
		t.Error("ann is still a sender once her text was shown")
	}
	// Back in the room, she is a sender like any other.
	m.Write("ann", "back", t0.Add(3*time.Second))
	m.Forget("bob")
	if got, want := string(m.Take(t0.Add(3*time.Second))), "[ann]: back"; got != want {
		t.Errorf("after she came back: Take = %q, want %q", got, want)
	}
}

// A sender whose SSRC changes mid-call while its encoder carries on (a
// media relay re-anchoring the stream) repeats, in its first packet
// under the new SSRC, text already taken: only that packet's own text
// is new.
func TestSSRCChangeRepeatsNothing(t *testing.T) {
	packets := send(t, NewEncoder(testFormat, 1, 0, 0), []string{"a", "b", "c", "d", "e"})
	for _, p := range packets[3:] {
		p.SSRC = 2
	}
	if got := receive(t, NewDecoder(testFormat), packets); got != "abcde" {
		t.Errorf("text = %q, want %q", got, "abcde")
	}
}

// A packet of another SSRC is taken for a new source only once a packet
// of that source after it confirms it, as a sequence jump is: one stray
// packet changes nothing, and a late packet of the old source after the
// change is shown in its place rather than turning the stream back, with
// the new source's packets lost meanwhile recovered from redundancy or
// marked. Before, every change of SSRC restarted the stream at once.
func TestSourceChanges(t *testing.T) {
	for _, f := range []Format{testFormat, {T140: 98}} {
		name, lost := "red", "new2"
		if f.RED == 0 {
			name, lost = "plain", Missing
		}
		t.Run(name+"/one stray packet", func(t *testing.T) {
			e, stray := NewEncoder(f, 7, 1000, 0), NewEncoder(f, 9, 1000, 0)
			packets := []*rtp.Packet{onePacket(t, e, "a"), onePacket(t, e, "b"), onePacket(t, stray, "evil"), onePacket(t, e, "c"), onePacket(t, e, "d")}
			if got, want := receive(t, NewDecoder(f), packets), "abcd"; got != want {
				t.Errorf("text = %q, want %q", got, want)
			}
		})
		t.Run(name+"/a late packet of the old source", func(t *testing.T) {
			old, next := NewEncoder(f, 1, 1000, 0), NewEncoder(f, 2, 5000, 0)
			hello, new1, world := onePacket(t, old, "hello"), onePacket(t, next, "new1"), onePacket(t, old, "world")
			onePacket(t, next, "new2") // lost
			new3 := onePacket(t, next, "new3")
			if got, want := receive(t, NewDecoder(f), []*rtp.Packet{hello, new1, world, new3}), "helloworldnew1"+lost+"new3"; got != want {
				t.Errorf("text = %q, want %q", got, want)
			}
		})
	}
}

// A new source's first packet, held for confirmation, is taken by
// Release when nothing contradicted it (a sender without redundancy
// sends nothing after its last character), and the stream goes on from
// it; a packet of the old source since makes it a stray that Release
// keeps out.
func TestReleaseHeldSource(t *testing.T) {
	f := Format{T140: 98}
	old, next := NewEncoder(f, 1, 1000, 0), NewEncoder(f, 2, 5000, 0)
	d := NewDecoder(f)
	got := receive(t, d, []*rtp.Packet{onePacket(t, old, "a"), onePacket(t, next, "y")})
	if !d.Holding() {
		t.Fatal("a new source's first packet is not held")
	}
	got += string(d.Release().Text)
	got += receive(t, d, []*rtp.Packet{onePacket(t, next, "es")})
	if got != "ayes" || d.Holding() {
		t.Errorf("text = %q (holding %v), want %q", got, d.Holding(), "ayes")
	}

	stray := NewEncoder(f, 3, 9000, 0)
	got = receive(t, d, []*rtp.Packet{onePacket(t, stray, "evil"), onePacket(t, next, "!")})
	if d.Holding() || len(d.Release().Text) != 0 || got != "!" {
		t.Errorf("after a stray packet and one of the stream's: text %q, holding %v; want %q and nothing held to release", got, d.Holding(), "!")
	}
}

// A caller whose new SDP answer changed the payload types goes on with
// the same stream: the first packet under the new types repeats in its
// redundant blocks text already taken, and only that packet's own text
// is new. Before, the front read it with a new Decoder, which gave that
// text again (as the text lost before a stream's first packet).
func TestFormatChangeRepeatsNothing(t *testing.T) {
	moved := Format{T140: 99, RED: 101}
	enc := NewEncoder(testFormat, 1, 0, 0)
	var packets []*rtp.Packet
	ts := uint32(1000)
	for i, c := range []string{"a", "b", "c", "d", "e"} {
		if i == 3 {
			enc.format = moved // the caller's stream goes on with the new types
		}
		p, err := enc.Packet([]byte(c), ts)
		if err != nil {
			t.Fatal(err)
		}
		packets = append(packets, p)
		ts += 300
	}
	if red, _, err := ParseRED(packets[3].Payload); err != nil || packets[3].PayloadType != moved.RED || len(red) == 0 || string(red[len(red)-1].Data) != "c" {
		t.Fatalf("the first packet under the new types: payload type %d, redundancy %+v (%v); want c's text repeated", packets[3].PayloadType, red, err)
	}
	dec := NewDecoder(testFormat)
	got := receive(t, dec, packets[:3])
	dec.SetFormat(moved)
	got += receive(t, dec, packets[3:])
	if got != "abcde" {
		t.Errorf("text = %q, want %q", got, "abcde")
	}
}

// The held first packet of a new source is read with its redundant
// blocks once a packet confirms the source: a sender that restarted (a
// new SSRC, its packets numbered anew) and whose first packets were lost
// has their text in the held packet's blocks, and it is recovered as for
// the call's first packet; a sender that carries on its encoder, and its
// numbering, across the change repeats nothing, nor does a source the
// stream comes back to. Before, the held packet's blocks were not read:
// the new source's lost first packets vanished without a mark although
// two packets carried their text.
func TestNewSourcesLostFirstPacketsAreRecovered(t *testing.T) {
	// sent is one packet: e's next, with text; sent under another SSRC
	// when ssrc is set, and not received when lost.
	type sent struct {
		e    *Encoder
		text string
		lost bool
		ssrc uint32
	}
	tests := []struct {
		name    string
		packets func(a, b *Encoder) []sent
		want    string
	}{
		{"the new source's first packet lost", func(a, b *Encoder) []sent {
			return []sent{{e: a, text: "x"}, {e: b, text: "a", lost: true}, {e: b, text: "b"}, {e: b, text: "c"}}
		}, "xabc"},
		{"its first two packets lost", func(a, b *Encoder) []sent {
			return []sent{{e: a, text: "x"}, {e: b, text: "a", lost: true}, {e: b, text: "b", lost: true}, {e: b, text: "c"}, {e: b, text: "d"}}
		}, "xabcd"},
		{"its first packet lost, and the one after the held one", func(a, b *Encoder) []sent {
			return []sent{{e: a, text: "x"}, {e: b, text: "a", lost: true}, {e: b, text: "b"}, {e: b, text: "c", lost: true}, {e: b, text: "d"}}
		}, "xabcd"},
		// A media relay re-anchoring the stream: a's encoder goes on,
		// its packets under another SSRC.
		{"an encoder going on under a new SSRC, a packet lost at the change", func(a, _ *Encoder) []sent {
			return []sent{{e: a, text: "x"}, {e: a, text: "y"}, {e: a, text: "z", lost: true, ssrc: 3}, {e: a, text: "w", ssrc: 3}, {e: a, text: "v", ssrc: 3}}
		}, "xyzwv"},
		{"the old source coming back with its numbering", func(a, b *Encoder) []sent {
			return []sent{{e: a, text: "h"}, {e: a, text: "i"}, {e: b, text: "x"}, {e: b, text: "y"}, {e: a, text: "j"}, {e: a, text: "k"}}
		}, "hixyjk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := NewEncoder(testFormat, 1, 10, 0), NewEncoder(testFormat, 2, 5000, 0)
			var packets []*rtp.Packet
			ts := uint32(1000)
			for _, s := range tt.packets(a, b) {
				p, err := s.e.Packet([]byte(s.text), ts)
				if err != nil {
					t.Fatal(err)
				}
				ts += 300
				if s.ssrc != 0 {
					p.SSRC = s.ssrc
				}
				if !s.lost {
					packets = append(packets, p)
				}
			}
			d := NewDecoder(testFormat)
			if got := receive(t, d, packets); got != tt.want || d.Holding() {
				t.Errorf("text = %q (holding %v), want %q", got, d.Holding(), tt.want)
			}
		})
	}
}

// After the stream turned to a new source, a duplicate or late packet of
// the source before adds nothing: it is not held as a new source, so
// that no Release (a sender without redundancy, or one gone idle, sends
// no packet after it) gives its text again and turns the stream back.
// A packet of the old source far from where it left off is a new
// numbering of it, held and taken as any new source's. Before, the
// duplicate was held, released after a second, and its text given twice.
func TestOldSourcesLatePacketsAfterAChangeAddNothing(t *testing.T) {
	for _, f := range []Format{testFormat, {T140: 98}} {
		name := "red"
		if f.RED == 0 {
			name = "plain"
		}
		t.Run(name+"/a duplicate and a late packet", func(t *testing.T) {
			a, b := NewEncoder(f, 1, 10, 0), NewEncoder(f, 2, 5000, 0)
			h, i := onePacket(t, a, "h"), onePacket(t, a, "i")
			d := NewDecoder(f)
			got := receive(t, d, []*rtp.Packet{h, i, onePacket(t, b, "x"), onePacket(t, b, "y")})
			for _, late := range []*rtp.Packet{i, h} {
				if dec := decodeSent(t, d, late); !dec.Old || len(dec.Text) != 0 || d.Holding() {
					t.Errorf("the old source's packet %d after the change: %+v, holding %v; want Old and nothing held", late.SequenceNumber, dec, d.Holding())
				}
			}
			got += string(d.Release().Text) // alone for a second: the front releases
			got += receive(t, d, []*rtp.Packet{onePacket(t, b, "z")})
			if got != "hixyz" {
				t.Errorf("text = %q, want %q", got, "hixyz")
			}
		})
		t.Run(name+"/the old source renumbered", func(t *testing.T) {
			a, b, again := NewEncoder(f, 1, 10, 0), NewEncoder(f, 2, 5000, 0), NewEncoder(f, 1, 30000, 0)
			packets := []*rtp.Packet{onePacket(t, a, "h"), onePacket(t, a, "i"), onePacket(t, b, "x"), onePacket(t, b, "y"), onePacket(t, again, "j"), onePacket(t, again, "k")}
			if got := receive(t, NewDecoder(f), packets); got != "hixyjk" {
				t.Errorf("text = %q, want %q", got, "hixyjk")
			}
		})
	}
}
