package rtcfront

import "github.com/pion/stun/v4"

// validCheck reports whether pkt is an ICE check that proves its sender
// knows the password pwd: a STUN Binding request whose
// MESSAGE-INTEGRITY, HMAC-SHA1 keyed by pwd (RFC 8489, 14.5; a
// short-term credential, the key being the password; RFC 8445, 7.1.2),
// verifies. It reads a copy of pkt: it runs on the agents' read loops
// for every packet from an address not counted yet.
func validCheck(pkt []byte, pwd []byte) bool {
	if !stun.IsMessage(pkt) {
		return false
	}
	m := &stun.Message{Raw: append([]byte(nil), pkt...)}
	if err := m.Decode(); err != nil || m.Type != stun.BindingRequest {
		return false
	}
	return stun.NewShortTermIntegrity(string(pwd)).Check(m) == nil
}
