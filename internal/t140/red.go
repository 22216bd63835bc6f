package t140

import (
	"errors"
	"fmt"
)

// ErrMalformed matches (errors.Is) every error about a payload that is
// not a well-formed RFC 2198 or T.140 payload.
var ErrMalformed = errors.New("t140: malformed payload")

// MaxTSOffset is the largest timestamp offset a redundant block's 14-bit
// field holds (RFC 2198), in timestamp units (milliseconds for T.140).
const MaxTSOffset = 1<<14 - 1

// maxBlockLen is the largest length a redundant block's 10-bit field holds.
const maxBlockLen = 1<<10 - 1

// Block is one generation of an RFC 2198 payload.
type Block struct {
	// PT is the block's payload type (the T.140 payload type).
	PT uint8
	// TSOffset is how much older than the packet's timestamp the block's
	// text is (redundant blocks only).
	TSOffset uint16
	// Data is the block's payload: T.140 text in UTF-8.
	Data []byte
}

// MarshalRED builds an RFC 2198 payload: the redundant blocks, oldest
// first, then the primary block (whose TSOffset is ignored).
func MarshalRED(redundant []Block, primary Block) ([]byte, error) {
	size := 1 + len(primary.Data)
	for _, b := range redundant {
		size += 4 + len(b.Data)
	}
	out := make([]byte, 0, size)
	for _, b := range redundant {
		switch {
		case b.PT > 127:
			return nil, fmt.Errorf("%w: payload type %d above 127", ErrMalformed, b.PT)
		case b.TSOffset > MaxTSOffset:
			return nil, fmt.Errorf("%w: timestamp offset %d above %d", ErrMalformed, b.TSOffset, MaxTSOffset)
		case len(b.Data) > maxBlockLen:
			return nil, fmt.Errorf("%w: redundant block of %d bytes above %d", ErrMalformed, len(b.Data), maxBlockLen)
		}
		out = append(out,
			0x80|b.PT,
			byte(b.TSOffset>>6),
			byte(b.TSOffset<<2)|byte(len(b.Data)>>8),
			byte(len(b.Data)))
	}
	if primary.PT > 127 {
		return nil, fmt.Errorf("%w: payload type %d above 127", ErrMalformed, primary.PT)
	}
	out = append(out, primary.PT)
	for _, b := range redundant {
		out = append(out, b.Data...)
	}
	return append(out, primary.Data...), nil
}

// maxRedundant is the most redundant blocks ParseRED takes in one payload.
// RFC 4103 senders carry two generations, a few at most; a payload of
// hundreds of block headers is an attack on the receiver, not text.
const maxRedundant = 16

// ParseRED reads an RFC 2198 payload into its redundant blocks, oldest
// first, and its primary block. The blocks' Data alias payload. A payload
// of more than 16 redundant blocks is malformed. Reading costs one
// allocation, of the blocks, whatever the headers claim: a block's
// length is checked against the payload before anything is made of it.
func ParseRED(payload []byte) (redundant []Block, primary Block, err error) {
	// First the headers, to count the blocks and check that their data
	// fits the payload; then the blocks.
	i, n, size := 0, 0, 0
	for {
		if i >= len(payload) {
			return nil, Block{}, fmt.Errorf("%w: the block headers end before the primary header", ErrMalformed)
		}
		if payload[i]&0x80 == 0 {
			break
		}
		if n == maxRedundant {
			return nil, Block{}, fmt.Errorf("%w: more than %d redundant blocks", ErrMalformed, maxRedundant)
		}
		if i+4 > len(payload) {
			return nil, Block{}, fmt.Errorf("%w: a redundant block header cut short", ErrMalformed)
		}
		size += blockLen(payload[i : i+4])
		i += 4
		n++
	}
	primary.PT = payload[i]
	data := i + 1
	if data+size > len(payload) {
		return nil, Block{}, fmt.Errorf("%w: %d bytes of redundant blocks run past the payload", ErrMalformed, size)
	}
	if n > 0 {
		redundant = make([]Block, n)
	}
	for k := range redundant {
		h := payload[4*k : 4*k+4]
		l := blockLen(h)
		redundant[k] = Block{
			PT:       h[0] & 0x7f,
			TSOffset: uint16(h[1])<<6 | uint16(h[2])>>2,
			Data:     payload[data : data+l : data+l],
		}
		data += l
	}
	primary.Data = payload[data:]
	return redundant, primary, nil
}

// blockLen is the length a redundant block's 4-byte header gives.
func blockLen(h []byte) int { return int(h[2]&0x03)<<8 | int(h[3]) }
