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

// ParseRED reads an RFC 2198 payload into its redundant blocks, oldest
// first, and its primary block. The blocks' Data alias payload.
func ParseRED(payload []byte) (redundant []Block, primary Block, err error) {
	i := 0
	for {
		if i >= len(payload) {
			return nil, Block{}, fmt.Errorf("%w: the block headers end before the primary header", ErrMalformed)
		}
		if payload[i]&0x80 == 0 {
			primary.PT = payload[i]
			i++
			break
		}
		if i+4 > len(payload) {
			return nil, Block{}, fmt.Errorf("%w: a redundant block header cut short", ErrMalformed)
		}
		h := payload[i : i+4]
		redundant = append(redundant, Block{
			PT:       h[0] & 0x7f,
			TSOffset: uint16(h[1])<<6 | uint16(h[2])>>2,
			Data:     make([]byte, int(h[2]&0x03)<<8|int(h[3])), // length for now
		})
		i += 4
	}
	for k := range redundant {
		n := len(redundant[k].Data)
		if i+n > len(payload) {
			return nil, Block{}, fmt.Errorf("%w: redundant block %d of %d bytes runs past the payload", ErrMalformed, k, n)
		}
		redundant[k].Data = payload[i : i+n : i+n]
		i += n
	}
	primary.Data = payload[i:]
	return redundant, primary, nil
}
