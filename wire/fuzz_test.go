package wire_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchboard/switchboard/wire"
)

// FuzzDecode feeds Decode any bytes. It must not panic; a failure must be a
// non-fatal *wire.Error with a decoding code (bad_utf8 exactly when the line
// is not UTF-8); a success must name a known op and survive Encode then
// Decode unchanged, and encoding that again must give the same line.
//
// Unchanged allows one loss: an empty seqs or pending_cr map in a room
// state is omitted on the wire (omitempty), so it comes back as no map.
func FuzzDecode(f *testing.F) {
	for _, tt := range protocol {
		f.Add([]byte(tt.want))
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"op":"fly"}`, `{"op":1}`, "{\"op\":\"\xff\"}",
		`{"op":"ping","nodes":null}`, `{"op":"room","state":{"seqs":{}}}`,
		`{"op":"room","state":{"pending_cr":{"a":false,"b":true}}}`,
		`{"op":"text","t":"\ud800"}`, `{"OP":"ping","V":1}`,
		`{"op":"directory","nodes":[null,{"id":"x","age_ms":-1}]}`,
	} {
		f.Add([]byte(s))
	}
	known := map[string]bool{
		wire.OpHello: true, wire.OpDirectory: true, wire.OpAttach: true, wire.OpAttached: true,
		wire.OpPing: true, wire.OpPong: true, wire.OpError: true, wire.OpJoin: true, wire.OpLeave: true,
		wire.OpText: true, wire.OpAck: true, wire.OpPresence: true, wire.OpRoom: true, wire.OpMove: true,
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := wire.Decode(line)
		// DecodeFromClient reads a subset of the fields: it refuses
		// only what Decode refuses, for the same reason (or Decode found
		// a bad value in a field it skips), and takes the same client
		// fields from what Decode takes.
		cm, cerr := wire.DecodeFromClient(line)
		var cwe, we0 *wire.Error
		switch {
		case cerr != nil && (!errors.As(cerr, &cwe) || !errors.As(err, &we0) || (cwe.Code != we0.Code && we0.Code != wire.CodeBadJSON)):
			t.Fatalf("DecodeFromClient error %v, Decode error %v", cerr, err)
		case err == nil:
			want := wire.Message{Op: m.Op, V: m.V, Client: m.Client, Group: m.Group, Max: m.Max, Deltas: m.Deltas,
				User: m.User, Token: m.Token, Device: m.Device, Room: m.Room, Seq: m.Seq, T: m.T}
			if diff := cmp.Diff(cm, want); diff != "" {
				t.Fatalf("DecodeFromClient (-got +want):\n%s", diff)
			}
		}
		if err != nil {
			var we *wire.Error
			if !errors.As(err, &we) {
				t.Fatalf("Decode error %v (%T) is not a *wire.Error", err, err)
			}
			switch we.Code {
			case wire.CodeBadUTF8, wire.CodeBadJSON, wire.CodeBadRequest, wire.CodeUnknownOp:
			default:
				t.Fatalf("Decode error code %q", we.Code)
			}
			if we.Fatal {
				t.Fatalf("Decode error is fatal: %v", we)
			}
			if (we.Code == wire.CodeBadUTF8) == utf8.Valid(line) {
				t.Fatalf("Decode error %v for a line with utf8.Valid = %v", we, utf8.Valid(line))
			}
			if !utf8.ValidString(we.Text) {
				t.Fatalf("Decode error text is not UTF-8: %q", we.Text)
			}
			return
		}
		if !known[m.Op] {
			t.Fatalf("Decode accepted unknown op %q", m.Op)
		}
		enc, err := wire.Encode(m)
		if err != nil {
			t.Fatalf("Encode(%+v): %v", m, err)
		}
		if bytes.IndexByte(enc, '\n') != len(enc)-1 {
			t.Fatalf("Encode gave not exactly one line: %q", enc)
		}
		m2, err := wire.Decode(enc[:len(enc)-1])
		if err != nil {
			t.Fatalf("Decode(Encode(m)) = %v for %q", err, enc)
		}
		if diff := cmp.Diff(m2, m, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("Decode(Encode(m)) (-got +want):\n%s", diff)
		}
		enc2, err := wire.Encode(m2)
		if err != nil {
			t.Fatalf("Encode(Decode(Encode(m))): %v", err)
		}
		if !bytes.Equal(enc2, enc) {
			t.Fatalf("encoding is not stable:\n%s%s", enc, enc2)
		}
	})
}

// FuzzLineReader reads any bytes with a limit, in reads of a fuzzed size,
// and checks the lines against a plain model: split at '\n', drop one '\r'
// before it, stop with ErrLineTooLong at the first line (CR included)
// longer than the limit, and return a last line without newline if any.
// Every line has no '\n' and is at most the limit; when every line is
// short, the lines joined with newlines give back the input. With the high
// bit of chunk set, a timeout comes before every read: it must be returned
// and change nothing.
func FuzzLineReader(f *testing.F) {
	f.Add([]byte("a\nb\r\nc"), uint16(10), uint8(0))
	f.Add([]byte("0123456789\n01234567890\n"), uint16(10), uint8(3))
	f.Add([]byte(strings.Repeat("x", 600)+"\n\r\n\n"), uint16(700), uint8(1))
	f.Add([]byte("\r\r\n\n\r"), uint16(1), uint8(2))
	f.Add([]byte(strings.Repeat("line\n", 300)), uint16(0), uint8(127))
	f.Add([]byte("ab\r\ncd\nef"), uint16(0), uint8(0x81)) // timeouts, one byte a read
	f.Fuzz(func(t *testing.T, data []byte, max16 uint16, chunk uint8) {
		max := int(max16 % 2048) // 0 means MaxLine
		limit := max
		if limit == 0 {
			limit = wire.MaxLine
		}
		var r io.Reader = bytes.NewReader(data)
		if n := int(chunk & 0x7f); n > 0 {
			r = &chunkReader{r: r, n: n}
		}
		if chunk&0x80 != 0 {
			r = &flakyReader{r: r} // a timeout before every read
		}
		lr := wire.NewLineReader(r, max)

		// The model.
		var want []string
		wantErr := io.EOF
		rest := data
		for len(rest) > 0 {
			line, after, found := bytes.Cut(rest, []byte{'\n'})
			rest = after
			if len(line) > limit {
				wantErr = wire.ErrLineTooLong
				break
			}
			if found {
				line = bytes.TrimSuffix(line, []byte{'\r'})
			}
			want = append(want, string(line))
		}

		var got []string
		var err error
		for len(got) <= len(want) {
			var line []byte
			line, err = lr.Next()
			if errors.Is(err, iotest.ErrTimeout) {
				continue // the next read succeeds
			}
			if err != nil {
				break
			}
			if bytes.IndexByte(line, '\n') >= 0 {
				t.Fatalf("line %d has a newline: %q", len(got), line)
			}
			if len(line) > limit {
				t.Fatalf("line %d has %d bytes, over the limit %d", len(got), len(line), limit)
			}
			got = append(got, string(line))
		}
		if diff := cmp.Diff(got, want, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("lines (-got +want):\n%s", diff)
		}
		if err != wantErr {
			t.Fatalf("error after the lines = %v, want %v", err, wantErr)
		}
		if !bytes.Contains(data, []byte{'\r'}) {
			var joined []byte
			for _, l := range got {
				joined = append(append(joined, l...), '\n')
			}
			if wantErr == io.EOF && len(data) > 0 && data[len(data)-1] != '\n' {
				joined = joined[:len(joined)-1] // the last line had no newline
			}
			if !bytes.HasPrefix(data, joined) || (wantErr == io.EOF && len(joined) != len(data)) {
				t.Fatalf("lines joined = %q, want the input (or a prefix before a long line) %q", joined, data)
			}
		}
	})
}

// flakyReader fails with a timeout and no data before every read, as a
// connection with a read deadline may.
type flakyReader struct {
	r    io.Reader
	fail bool
}

func (f *flakyReader) Read(p []byte) (int, error) {
	f.fail = !f.fail
	if f.fail {
		return 0, iotest.ErrTimeout
	}
	return f.r.Read(p)
}
