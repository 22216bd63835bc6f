package wire_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchboard/switchboard/wire"
)

// readers deliver the same stream in different pieces.
var readers = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"one byte", iotest.OneByteReader},
	{"half", iotest.HalfReader},
	{"data with EOF", iotest.DataErrReader},
	{"7 bytes", func(r io.Reader) io.Reader { return &chunkReader{r: r, n: 7} }},
	{"1000 bytes", func(r io.Reader) io.Reader { return &chunkReader{r: r, n: 1000} }},
}

// chunkReader returns at most n bytes a read.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

// readAll reads lines until an error, copying each.
func readAll(lr *wire.LineReader) ([]string, error) {
	var lines []string
	for {
		line, err := lr.Next()
		if err != nil {
			return lines, err
		}
		lines = append(lines, string(line))
	}
}

func TestLineReader(t *testing.T) {
	x := strings.Repeat
	tests := []struct {
		name    string
		in      string
		max     int
		want    []string
		wantErr error // after the lines
	}{
		{name: "empty stream", in: "", want: nil, wantErr: io.EOF},
		{name: "one line", in: "a\n", want: []string{"a"}, wantErr: io.EOF},
		{name: "lines", in: "a\nbb\nccc\n", want: []string{"a", "bb", "ccc"}, wantErr: io.EOF},
		{name: "empty lines", in: "\n\na\n\n", want: []string{"", "", "a", ""}, wantErr: io.EOF},
		{name: "CRLF trimmed", in: "a\r\nb\r\n\r\n", want: []string{"a", "b", ""}, wantErr: io.EOF},
		{name: "only one CR trimmed", in: "a\r\r\n", want: []string{"a\r"}, wantErr: io.EOF},
		{name: "CR inside kept", in: "a\rb\n", want: []string{"a\rb"}, wantErr: io.EOF},
		{name: "final line without newline", in: "a\nb", want: []string{"a", "b"}, wantErr: io.EOF},
		{name: "only a line without newline", in: "abc", want: []string{"abc"}, wantErr: io.EOF},
		{name: "bytes are kept as they are", in: "\x00\xff{}\t\n", want: []string{"\x00\xff{}\t"}, wantErr: io.EOF},
		{
			name: "exactly max",
			in:   x("m", 10) + "\nok\n", max: 10,
			want: []string{x("m", 10), "ok"}, wantErr: io.EOF,
		},
		{
			name: "max plus one",
			in:   "ok\n" + x("m", 11) + "\nnever\n", max: 10,
			want: []string{"ok"}, wantErr: wire.ErrLineTooLong,
		},
		{
			name: "max plus one, newline far away",
			in:   "ok\n" + x("m", 100000) + "\n", max: 10,
			want: []string{"ok"}, wantErr: wire.ErrLineTooLong,
		},
		{
			name: "max plus one without newline at the end",
			in:   x("m", 11), max: 10,
			want: nil, wantErr: wire.ErrLineTooLong,
		},
		{
			name: "exactly max without newline at the end",
			in:   "a\n" + x("m", 10), max: 10,
			want: []string{"a", x("m", 10)}, wantErr: io.EOF,
		},
		{
			// The limit counts every byte before the newline.
			name: "a CR counts toward the limit",
			in:   x("m", 10) + "\r\n", max: 10,
			want: nil, wantErr: wire.ErrLineTooLong,
		},
		{
			name: "max of 1",
			in:   "a\n\nb\ncd\n", max: 1,
			want: []string{"a", "", "b"}, wantErr: wire.ErrLineTooLong,
		},
		{
			name: "exactly MaxLine by default",
			in:   x("m", wire.MaxLine) + "\n" + x("n", wire.MaxLine),
			want: []string{x("m", wire.MaxLine), x("n", wire.MaxLine)}, wantErr: io.EOF,
		},
		{
			name: "MaxLine plus one by default",
			in:   x("m", wire.MaxLine+1) + "\n",
			want: nil, wantErr: wire.ErrLineTooLong,
		},
		{
			name: "MaxLine plus one without newline by default",
			in:   x("m", wire.MaxLine+1),
			want: nil, wantErr: wire.ErrLineTooLong,
		},
		{
			name: "negative max means MaxLine",
			in:   x("m", wire.MaxLine) + "\n", max: -1,
			want: []string{x("m", wire.MaxLine)}, wantErr: io.EOF,
		},
		{
			name: "short lines after a long one",
			in:   "a\n" + x("L", wire.MaxLine) + "\nb\r\nc\n\nd",
			want: []string{"a", x("L", wire.MaxLine), "b", "c", "", "d"}, wantErr: io.EOF,
		},
		{
			name: "lines around the small buffer size",
			in:   x("a", 511) + "\n" + x("b", 512) + "\n" + x("c", 513) + "\n" + x("d", 1023) + "\n" + x("e", 1025) + "\n" + x("f", 3) + "\n",
			want: []string{x("a", 511), x("b", 512), x("c", 513), x("d", 1023), x("e", 1025), x("f", 3)}, wantErr: io.EOF,
		},
		{
			name: "many short lines",
			in:   x("0123456789\n", 1000),
			want: strings.Split(x("0123456789\n", 1000), "\n")[:1000], wantErr: io.EOF,
		},
	}
	for _, rd := range readers {
		for _, tt := range tests {
			t.Run(rd.name+"/"+tt.name, func(t *testing.T) {
				lr := wire.NewLineReader(rd.wrap(strings.NewReader(tt.in)), tt.max)
				got, err := readAll(lr)
				if diff := cmp.Diff(got, tt.want, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("lines (-got +want):\n%s", shorten(diff))
				}
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("error after the lines = %v, want %v", err, tt.wantErr)
				}
				if err == io.EOF {
					if _, err := lr.Next(); err != io.EOF {
						t.Errorf("Next after EOF = %v, want EOF again", err)
					}
				}
			})
		}
	}
}

// shorten keeps a diff of long lines readable.
func shorten(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "..."
	}
	return s
}

// stepReader returns its steps in turn: data (as much as fits a read), or
// an error.
type stepReader []any

func (s *stepReader) Read(p []byte) (int, error) {
	if len(*s) == 0 {
		return 0, io.EOF
	}
	if err, ok := (*s)[0].(error); ok {
		*s = (*s)[1:]
		return 0, err
	}
	data := (*s)[0].(string)
	n := copy(p, data)
	if n == len(data) {
		*s = (*s)[1:]
	} else {
		(*s)[0] = data[n:]
	}
	return n, nil
}

// TestLineReaderReadError checks that a read error other than EOF (a
// deadline, a reset) is returned as it is and does not cut a line in two:
// the bytes read so far stay buffered for the next call.
func TestLineReaderReadError(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name string
		in   stepReader
		want []string // lines and errors, in order
	}{
		{
			name: "error between lines",
			in:   stepReader{"a\n", errBoom, "b\n"},
			want: []string{"a", "boom", "b", "EOF"},
		},
		{
			name: "error in the middle of a line",
			in:   stepReader{"a\nhel", iotest.ErrTimeout, "lo\nc", errBoom, "d\n"},
			want: []string{"a", "timeout", "hello", "boom", "cd", "EOF"},
		},
		{
			name: "error in the middle of a CRLF",
			in:   stepReader{"a\r", errBoom, "\n"},
			want: []string{"boom", "a", "EOF"},
		},
		{
			name: "error in the middle of a long line",
			in:   stepReader{strings.Repeat("x", 600), errBoom, strings.Repeat("y", 600) + "\n"},
			want: []string{"boom", strings.Repeat("x", 600) + strings.Repeat("y", 600), "EOF"},
		},
		{
			name: "a line over the limit fails without waiting for its end",
			in:   stepReader{strings.Repeat("x", wire.MaxLine+1), errBoom, "\n"},
			want: []string{wire.ErrLineTooLong.Error()},
		},
		{
			name: "a line at the limit waits for its end",
			in:   stepReader{strings.Repeat("x", wire.MaxLine), errBoom, "\n"},
			want: []string{"boom", strings.Repeat("x", wire.MaxLine), "EOF"},
		},
		{
			name: "error before a final line without newline",
			in:   stepReader{"a", errBoom, "b"},
			want: []string{"boom", "ab", "EOF"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lr := wire.NewLineReader(&tt.in, 0)
			var got []string
			for len(got) < 2*len(tt.want) {
				line, err := lr.Next()
				switch {
				case err == nil:
					got = append(got, string(line))
					continue
				case err == io.EOF:
					got = append(got, "EOF")
				case errors.Is(err, iotest.ErrTimeout):
					got = append(got, "timeout")
				default:
					got = append(got, err.Error())
				}
				if err == io.EOF || errors.Is(err, wire.ErrLineTooLong) {
					break
				}
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("lines and errors (-got +want):\n%s", shorten(diff))
			}
		})
	}
}

// TestLineReaderTimeoutReader is the same with the standard TimeoutReader
// (no data on the second read, then the rest) under OneByteReader.
func TestLineReaderTimeoutReader(t *testing.T) {
	lr := wire.NewLineReader(iotest.TimeoutReader(iotest.OneByteReader(strings.NewReader("ab\ncd\n"))), 0)
	if line, err := lr.Next(); !errors.Is(err, iotest.ErrTimeout) {
		t.Fatalf("Next = %q, %v; want the timeout", line, err)
	}
	got, err := readAll(lr)
	if err != io.EOF {
		t.Errorf("error after the lines = %v, want EOF", err)
	}
	if diff := cmp.Diff(got, []string{"ab", "cd"}); diff != "" {
		t.Errorf("lines after the timeout (-got +want):\n%s", diff)
	}
}

// repeatReader returns data over and over.
type repeatReader struct {
	data []byte
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	return n, nil
}

func BenchmarkLineReader(b *testing.B) {
	line, err := wire.Encode(wire.Message{Op: wire.OpText, Room: "lobby", Seq: 12345, T: "hello, world"})
	if err != nil {
		b.Fatal(err)
	}
	lr := wire.NewLineReader(&repeatReader{data: bytes.Repeat(line, 100)}, 0)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if got, err := lr.Next(); err != nil || len(got) != len(line)-1 {
			b.Fatalf("Next = %q, %v", got, err)
		}
	}
}
