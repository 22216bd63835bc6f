package rtcfront

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// STUN's numbers, written out here so that the checks below are built
// independently of the library validCheck uses (RFC 8489).
const (
	stunBindingRequest   = 0x0001
	stunMagicCookie      = 0x2112A442
	stunMessageIntegrity = 0x0008
)

// check builds an ICE check as a browser's (RFC 8445, 7.1.2): USERNAME,
// PRIORITY, ICE-CONTROLLING, MESSAGE-INTEGRITY keyed by pwd, then
// FINGERPRINT; edit may change the message before MESSAGE-INTEGRITY.
func check(pwd string, edit func(m []byte) []byte) []byte {
	m := make([]byte, 20, 128)
	binary.BigEndian.PutUint16(m[0:], stunBindingRequest)
	binary.BigEndian.PutUint32(m[4:], stunMagicCookie)
	copy(m[8:20], "transaction!")
	attr := func(typ uint16, v []byte) {
		m = binary.BigEndian.AppendUint16(m, typ)
		m = binary.BigEndian.AppendUint16(m, uint16(len(v)))
		m = append(m, v...)
		for len(m)%4 != 0 {
			m = append(m, 0)
		}
	}
	setLen := func(extra int) { binary.BigEndian.PutUint16(m[2:], uint16(len(m)-20+extra)) }
	attr(0x0006, []byte("node:peer")) // USERNAME, 9 bytes: padded
	attr(0x0024, binary.BigEndian.AppendUint32(nil, 1))
	attr(0x802A, binary.BigEndian.AppendUint64(nil, 7))
	if edit != nil {
		m = edit(m)
	}
	setLen(24)
	mac := hmac.New(sha1.New, []byte(pwd))
	mac.Write(m)
	attr(stunMessageIntegrity, mac.Sum(nil))
	setLen(8)
	attr(0x8028, binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(m)^0x5354554e))
	return m
}

func TestValidCheck(t *testing.T) {
	const pwd = "the-peers-local-password"
	good := check(pwd, nil)
	flip := func(i int) []byte {
		b := append([]byte(nil), good...)
		b[i] ^= 1
		return b
	}
	for _, tt := range []struct {
		name string
		pkt  []byte
		want bool
	}{
		{"valid", good, true},
		{"another password", check("another-password-entirely", nil), false},
		{"a byte of USERNAME changed", flip(25), false},
		{"FINGERPRINT changed (not covered)", flip(len(good) - 1), true},
		{"a success response", func() []byte {
			b := check(pwd, func(m []byte) []byte { binary.BigEndian.PutUint16(m, 0x0101); return m })
			return b
		}(), false},
		{"no MESSAGE-INTEGRITY", good[:20+12+8+12], false},
		{"truncated", good[:len(good)-10], false},
		{"DTLS", []byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0}, false},
		{"empty", nil, false},
		{"an attribute longer than the message", func() []byte {
			b := append([]byte(nil), good...)
			binary.BigEndian.PutUint16(b[22:], 0xfff0)
			return b
		}(), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := validCheck(tt.pkt, []byte(pwd)); got != tt.want {
				t.Errorf("validCheck = %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzValidCheck: no input panics, and one that verifies is a Binding
// request.
func FuzzValidCheck(f *testing.F) {
	const pwd = "the-peers-local-password"
	f.Add(check(pwd, nil))
	f.Add(check("another", nil))
	f.Add([]byte{0, 1, 0, 4, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 20})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if validCheck(pkt, []byte(pwd)) && binary.BigEndian.Uint16(pkt) != stunBindingRequest {
			t.Fatalf("a message of type %#x verified", binary.BigEndian.Uint16(pkt))
		}
	})
}
