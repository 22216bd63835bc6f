package wire

import (
	"bytes"
	"io"
)

// ErrLineTooLong is returned (as a fatal *Error) by LineReader.Next when a
// line exceeds the limit; the stream cannot be resynchronised after it.
var ErrLineTooLong = &Error{Code: CodeLineTooLong, Text: "line exceeds the limit", Fatal: true}

// LineReader cuts a stream into newline-terminated lines of at most Max
// bytes. It starts with a small buffer and grows it only for long lines, so
// an idle connection costs little memory.
type LineReader struct {
	r   io.Reader
	max int
	buf []byte
	// start and end delimit the unread bytes in buf.
	start, end int
}

// smallBuffer is the initial buffer; most protocol lines fit in it.
const smallBuffer = 512

// NewLineReader reads lines of at most max bytes (MaxLine if max <= 0)
// from r.
func NewLineReader(r io.Reader, max int) *LineReader {
	if max <= 0 {
		max = MaxLine
	}
	return &LineReader{r: r, max: max}
}

// Next returns the next line without its newline (and without a CR before
// it). The slice is valid until the next call. At the end of the stream it
// returns io.EOF (a final line without newline is returned first); a line
// longer than the limit returns ErrLineTooLong.
func (lr *LineReader) Next() ([]byte, error) {
	scanned := 0 // bytes of the unread part already searched for '\n'
	for {
		if i := bytes.IndexByte(lr.buf[lr.start+scanned:lr.end], '\n'); i >= 0 {
			line := lr.buf[lr.start : lr.start+scanned+i]
			lr.start += scanned + i + 1
			if len(line) > lr.max {
				return nil, ErrLineTooLong
			}
			return bytes.TrimSuffix(line, []byte{'\r'}), nil
		}
		scanned = lr.end - lr.start
		if scanned > lr.max {
			return nil, ErrLineTooLong
		}
		if lr.buf == nil {
			lr.buf = make([]byte, smallBuffer)
		}
		if lr.start > 0 && lr.start == lr.end {
			lr.start, lr.end = 0, 0
		}
		if lr.end == len(lr.buf) {
			if lr.start > 0 {
				// Slide the unread part to the front.
				lr.end = copy(lr.buf, lr.buf[lr.start:lr.end])
				lr.start = 0
			} else {
				grown := make([]byte, min(2*len(lr.buf), lr.max+2))
				copy(grown, lr.buf[:lr.end])
				lr.buf = grown
			}
		}
		n, err := lr.r.Read(lr.buf[lr.end:])
		lr.end += n
		if err != nil && n == 0 {
			// Only the end of the stream ends a line; after any other
			// error the bytes read stay buffered for the next call.
			if err == io.EOF && lr.end > lr.start {
				line := lr.buf[lr.start:lr.end]
				lr.start = lr.end
				if len(line) > lr.max {
					return nil, ErrLineTooLong
				}
				return line, nil
			}
			return nil, err
		}
	}
}

// HasLine reports whether a whole line is buffered, so that Next returns
// it without reading.
func (lr *LineReader) HasLine() bool {
	return bytes.IndexByte(lr.buf[lr.start:lr.end], '\n') >= 0
}

// Buffered is how many bytes were read past the last line returned: the
// start of a line not yet complete.
func (lr *LineReader) Buffered() int { return lr.end - lr.start }

// Shrink releases a grown buffer once it holds no unread bytes, so a
// session that once sent a long line returns to its small footprint.
func (lr *LineReader) Shrink() {
	if lr.start == lr.end && len(lr.buf) > smallBuffer {
		lr.buf, lr.start, lr.end = nil, 0, 0
	}
}
