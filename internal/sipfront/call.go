package sipfront

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"golang.org/x/time/rate"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/roomfeed"
	"github.com/switchboard/switchboard/internal/t140"
	"github.com/switchboard/switchboard/internal/textsdp"
	"github.com/switchboard/switchboard/wire"
)

// maxPacketText is the most text put in one packet; the rest waits for
// the next interval. A packet carries its text and again the text of
// the two before (redundancy): at 360 bytes each a packet stays under
// 1,100 bytes, inside any path's MTU and the 1,500- to 2,048-byte RTP
// buffers of phones' stacks. At 1,000 bytes a packet grew to 3 KB: sent
// in IP fragments, and cut short by such a buffer, which lost its text
// and, the redundancy being in the same packets, the next packets' too.
const maxPacketText = 360

// maxRTP is the largest datagram taken from a caller; a longer one is
// dropped whole (its text lost, and marked as lost if the next packets'
// redundancy cannot bring it back).
const maxRTP = 8 << 10

// maxSendBacklog is the most text the front holds for a caller, mixed
// and not yet sent. It sends at most maxPacketText bytes an interval
// (about 1.2 KB a second), and a room's members may type far faster (8
// KiB a second each, by the node's limits): without a bound, one member
// typing at that rate grew the memory of every call in the room without
// end. Past it, the text is dropped and marked U+FFFD once
// (t140.Mixer.Cut): 32 KiB is about 27 seconds of sending.
const maxSendBacklog = 32 << 10

// maxBacklog is the most chunks of the caller's text the bridge holds
// that the node has not acknowledged. The node takes a session's text at
// its own rate (50 chunks and 8 KiB a second by default) and the client
// package keeps what it refused, to resend: a caller sending faster
// (30 packets a second of up to 2 KB pass the front's packet rate) would
// grow that queue without end, about 50 KB a second per call. Past this
// many the caller's text is dropped and marked U+FFFD once, as lost
// text is. A typist sends about three packets a second: 256 chunks
// outlast the 30 s a failover may take.
const maxBacklog = 256

// call is one answered call: its RTP socket, its bridged session, and
// the goroutines between them.
type call struct {
	srv   *Server
	id    string
	dlg   *sipgo.DialogServerSession
	room  string
	user  string
	log   *slog.Logger
	local netip.AddrPort // where the caller sends RTP, as the answer says
	sdpID uint64         // the answers' o= session id
	pc    *net.UDPConn
	sess  *client.Session

	mu sync.Mutex
	// peer is where the caller receives RTP, and the only source
	// accepted: at the IP address the caller's requests came from,
	// unless Config.RTPAnyAddress (rtpAddrCheck); format the stream's
	// payload types, those the front sends with (and takes,
	// t140.Decoder in readRTP). Both as the last offer or answer of the
	// caller's said: a re-INVITE's offer may not change them (488), the
	// answer in the ACK to the front's offer may.
	peer      netip.AddrPort    // guarded by mu
	format    t140.Format       // guarded by mu
	answer    []byte            // guarded by mu: the front's last SDP, given again to a re-INVITE
	version   uint64            // guarded by mu: its o= version, above sdpID
	ours      textsdp.Direction // guarded by mu: the direction it states
	oursFmt   t140.Format       // guarded by mu: the payload types it lists
	direction textsdp.Direction // guarded by mu: the caller's stream's direction, as its last SDP said
	kinds     []string          // guarded by mu: the media of the m= lines
	index     int               // guarded by mu: the text stream's place among them
	// remoteCSeq is the highest CSeq of the caller's INVITEs in the
	// dialog (RFC 3261, section 12.2.2): a re-INVITE below it is stale.
	// (Other requests are not held to it: an OPTIONS or BYE out of
	// order changes nothing.)
	remoteCSeq uint32 // guarded by mu
	// unacked is closed by the ACK of the INVITE whose 2xx the front is
	// sending again (ackCSeq); nil when none is. offered says that 2xx
	// carries the front's offer (the INVITE had none): its ACK carries
	// the answer.
	unacked chan struct{} // guarded by mu
	ackCSeq uint32        // guarded by mu
	offered bool          // guarded by mu

	place   *place // guarded by srv.mu: its hold on the call limits
	done    chan struct{}
	endOnce sync.Once
	// textMu orders the caller's text going into the session (relay)
	// before the wait for it to be stored (store); textEnded, set when
	// that wait begins, stops any more.
	textMu    sync.Mutex
	textEnded bool // guarded by textMu

	packets atomic.Int64 // RTP datagrams read from the caller's address
	pongs   atomic.Int64 // keepalive pings the caller answered
	held    atomic.Int64 // the most text held for the caller unsent
	unsent  atomic.Int64 // the text held for the caller unsent, now
	relayed atomic.Int64 // bytes of the room's text given to the mixer
}

// reoffer takes a later offer of the call's stream (a re-INVITE) that
// differs at most in its direction and in the other streams around it,
// and returns the answer to give: the one given before when nothing
// changed (a session refresh), else a new one, of a higher version, with
// the new direction's mirror and as many m= lines as the offer (RFC
// 3264: another stream added is refused with port 0).
// A caller that holds the call (sendonly or inactive) gets no text until
// it resumes: the room's text waits for it meanwhile, as much as
// maxSendBacklog holds. Text from a caller that says it does not send
// (recvonly or inactive) is ignored.
func (c *call) reoffer(offer textsdp.Media) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if offer.Direction.Answer() == c.ours && offer.Format == c.oursFmt && offer.Index == c.index && slices.Equal(offer.Kinds, c.kinds) {
		c.direction = offer.Direction
		return c.answer, nil
	}
	answer, err := textsdp.Answer(offer, c.local, c.srv.cfg.Generations, c.sdpID, c.version+1)
	if err != nil {
		return nil, fmt.Errorf("sipfront: answering a re-INVITE: %w", err)
	}
	c.log.Info("the caller changed the call's session", "from", c.direction.String(), "to", offer.Direction.String(), "streams", len(offer.Kinds))
	c.answer, c.version, c.direction = answer, c.version+1, offer.Direction
	c.ours, c.oursFmt = offer.Direction.Answer(), offer.Format
	c.kinds, c.index = offer.Kinds, offer.Index
	return answer, nil
}

// offer returns the front's offer for the 200 to a re-INVITE without
// one, and notes it as the front's last SDP: the call's stream as it
// is, sendrecv (all the front can do, so that the caller's answer may
// hold the call or resume it), as many m= lines as before. It is the
// SDP given last when that said the same, else a new version of it
// (RFC 3264, section 8).
func (c *call) offer() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ours == textsdp.SendRecv && c.oursFmt == c.format {
		return c.answer, nil
	}
	// Written as the answer to an offer of the stream sendrecv: the
	// same m= lines, the others refused with port 0 as before.
	stream := textsdp.Media{Format: c.format, Index: c.index, Kinds: c.kinds, Direction: textsdp.SendRecv}
	offer, err := textsdp.Answer(stream, c.local, c.srv.cfg.Generations, c.sdpID, c.version+1)
	if err != nil {
		return nil, fmt.Errorf("sipfront: writing an offer: %w", err)
	}
	c.answer, c.version, c.ours, c.oursFmt = offer, c.version+1, textsdp.SendRecv, c.format
	return offer, nil
}

// takeAnswer takes the caller's answer to the front's offer from the
// body of ack, the ACK of the 200 that carried the offer (RFC 3261,
// sections 13.2.1 and 14.2): the stream's address (but 0.0.0.0, a hold
// as RFC 3264 section 8.4 has it, which keeps the address), payload
// types and direction become the call's. An error says why the answer
// cannot be taken: none (the RFC requires it there), not SDP, malformed,
// or not an answer to the offer (no usable text stream, or the text
// stream not at the offer's place among as many m= lines), or its text
// stream's address is not the one the ACK came from (ErrForeignRTPAddr,
// unless Config.RTPAnyAddress; a hold is not checked, as it keeps the
// address). The call is then unchanged, and the caller of takeAnswer
// ends it.
func (c *call) takeAnswer(ack *sip.Request) error {
	if len(ack.Body()) == 0 {
		return errors.New("sipfront: the ACK carries no answer to the front's offer")
	}
	if ct := ack.ContentType(); ct == nil || !isSDP(ct.Value()) {
		return errors.New("sipfront: the ACK's body is not application/sdp")
	}
	answer, err := textsdp.Parse(ack.Body())
	if err != nil {
		return fmt.Errorf("sipfront: the answer in the ACK: %w", err)
	}
	if err := c.srv.checkRTPAddr(answer, ack); err != nil {
		// It would aim the call's RTP at an address that is not the
		// caller's, as an offer of it would (refused: onInvite).
		return fmt.Errorf("sipfront: the answer in the ACK: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if answer.Index != c.index || len(answer.Kinds) != len(c.kinds) {
		return fmt.Errorf("sipfront: the answer in the ACK has its text stream at m= line %d of %d, the offer at %d of %d",
			answer.Index+1, len(answer.Kinds), c.index+1, len(c.kinds))
	}
	if c.oursFmt.RED == 0 {
		answer.Format.RED = 0 // not offered: the answer cannot add it
	}
	if answer.Held {
		answer.Addr = c.peer
	}
	if answer.Addr != c.peer || answer.Format != c.format || answer.Direction != c.direction {
		c.log.Info("the caller's answer in its ACK changed the call's session",
			"rtp", answer.Addr.String(), "t140", answer.Format.T140, "red", answer.Format.RED, "direction", answer.Direction.String())
	}
	c.peer, c.format, c.direction = answer.Addr, answer.Format, answer.Direction
	return nil
}

// isSDP reports whether a Content-Type value is application/sdp.
func isSDP(contentType string) bool {
	media, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(media), "application/sdp")
}

// media is where the caller receives RTP and the stream's payload types.
func (c *call) media() (netip.AddrPort, t140.Format) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peer, c.format
}

// rtpPeer is where the caller receives RTP.
func (c *call) rtpPeer() netip.AddrPort {
	peer, _ := c.media()
	return peer
}

// rtpFormat is the stream's payload types.
func (c *call) rtpFormat() t140.Format {
	_, f := c.media()
	return f
}

// inOrder records cseq, a request of the caller's in the dialog, and
// reports whether it is in order: not below one seen before.
func (c *call) inOrder(cseq uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cseq < c.remoteCSeq {
		return false
	}
	c.remoteCSeq = cseq
	return true
}

// awaitAck notes that the 2xx to the INVITE cseq awaits its ACK, and
// returns the channel the ACK closes; offered says the 2xx carries the
// front's offer, so that the ACK carries the answer. A 2xx before it
// that is still unacknowledged is sent no more.
func (c *call) awaitAck(cseq uint32, offered bool) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unacked != nil {
		close(c.unacked)
	}
	c.unacked, c.ackCSeq, c.offered = make(chan struct{}), cseq, offered
	return c.unacked
}

// acked takes the ACK of the INVITE cseq, and reports whether it is the
// one awaited and carries the answer to the front's offer. An ACK sent
// again, or of a 2xx sent no more, is not.
func (c *call) acked(cseq uint32) (answer bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unacked == nil || c.ackCSeq != cseq {
		return false
	}
	close(c.unacked)
	c.unacked = nil
	answer, c.offered = c.offered, false
	return answer
}

// awaiting reports whether the 2xx of the INVITE cseq waits for its ACK.
func (c *call) awaiting(cseq uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.unacked != nil && c.ackCSeq == cseq
}

// answerDue reports whether the front's offer, in a 2xx, waits for its
// answer in the ACK.
func (c *call) answerDue() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.unacked != nil && c.offered
}

// route addresses req, a request of the front's in the call, as the
// caller's INVITE came: over UDP to the caller's Contact; over TCP on
// the caller's own connection while it is open (RFC 3261, section
// 18.1.1 lets a reliable transport's requests go back on the connection
// they came on), else on a connection to the Contact (or to the first
// Record-Route of the INVITE, where the SIP stack then sends it) that
// the front opens itself, counted under the TCP connection limits as
// those it accepts and closed idle as they are (connLimiter.Dial), or
// one such still open. An error says why no connection can carry req:
// the limits are reached (errOverLimit), or the address cannot be
// resolved or reached.
func (c *call) route(ctx context.Context, req *sip.Request) error {
	inv := c.dlg.InviteRequest
	req.SetTransport(inv.Transport())
	if strings.EqualFold(inv.Transport(), "UDP") || c.srv.lim == nil {
		return nil
	}
	target, routed := inv.Recipient, false
	if rr := inv.RecordRoute(); rr != nil {
		// The stack sends an in-dialog request to the route's first
		// hop, whatever destination it is given.
		target, routed = rr.Address, true
	} else if contact := inv.Contact(); contact != nil {
		target = contact.Address
		if c.srv.lim.Live(inv.Source()) {
			req.SetDestination(inv.Source())
			return nil
		}
	}
	dest, err := resolveTCP(ctx, target)
	if err != nil {
		return err
	}
	if !routed {
		req.SetDestination(dest.String())
	}
	if c.srv.lim.Live(dest.String()) {
		return nil
	}
	return c.srv.lim.Dial(ctx, dest)
}

// resolveTCP is the address to reach u at over TCP: its host, resolved
// when a name, and its port (5060 when it has none).
func resolveTCP(ctx context.Context, u sip.Uri) (netip.AddrPort, error) {
	port := u.Port
	if port == 0 {
		port = 5060
	}
	host := strings.TrimSuffix(strings.TrimPrefix(u.Host, "["), "]")
	ip, err := netip.ParseAddr(host)
	if err != nil {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("sipfront: resolving %q: %w", wire.Clip(host, 128), err)
		}
		if len(ips) == 0 {
			return netip.AddrPort{}, fmt.Errorf("sipfront: resolving %q: no address", wire.Clip(host, 128))
		}
		ip = ips[0]
	}
	if port <= 0 || port > 65535 {
		return netip.AddrPort{}, fmt.Errorf("sipfront: port %d of %q", port, wire.Clip(host, 128))
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(port)), nil
}

// resend2xx sends the 2xx res to an INVITE again on tx, after T1 and
// then at intervals doubling up to T2, until acked is closed, the call
// ends, or 64*T1 has passed (RFC 3261, section 13.3.1.4). It reports
// whether acked was closed: the ACK came, or a later re-INVITE of the
// caller's, which shows the 2xx reached it.
func (c *call) resend2xx(tx sip.ServerTransaction, res *sip.Response, acked <-chan struct{}) bool {
	giveUp := time.NewTimer(64 * sip.T1)
	defer giveUp.Stop()
	wait := sip.T1
	next := time.NewTimer(wait)
	defer next.Stop()
	for {
		select {
		case <-acked:
			return true
		case <-c.done:
			return false
		case <-giveUp.C:
			c.log.Info("no ACK for a 200", "cseq", res.CSeq().SeqNo)
			c.acked(res.CSeq().SeqNo) // an answer due comes no more
			return false
		case <-next.C:
			if err := tx.Respond(res); err != nil {
				return false
			}
			wait = min(2*wait, sip.T2)
			next.Reset(wait)
		}
	}
}

// callerDirection is the direction of the caller's stream, as its last
// offer said.
func (c *call) callerDirection() textsdp.Direction {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.direction
}

// run serves the call until it ends.
func (c *call) run() {
	texts := make(chan roomfeed.Text, 64)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); c.readRTP() }()
	go func() { defer wg.Done(); c.readEvents(texts) }()
	go func() { defer wg.Done(); c.keepAlive() }()
	c.sendRTP(texts)
	wg.Wait()
}

// keepAlive pings the caller with OPTIONS in the dialog and ends the call
// when a ping goes unanswered or the caller no longer knows the call. A
// caller that vanished without a BYE (a phone that lost power or its
// network) would otherwise hold its call, its member in the room, its
// RTP port and its places in the limits until the node stopped: T.140
// sends nothing while nobody types, so silence tells nothing.
func (c *call) keepAlive() {
	tick := time.NewTicker(c.srv.cfg.KeepAlive)
	defer tick.Stop()
	inv := c.dlg.InviteRequest
	contact := inv.Contact()
	if contact == nil {
		return
	}
	// A ping in flight ends with the call, so that ending waits for none.
	stop, cancelStop := context.WithCancel(context.Background())
	defer cancelStop()
	go func() {
		select {
		case <-c.done:
			cancelStop()
		case <-stop.Done():
		}
	}()
	for {
		select {
		case <-c.done:
			return
		case <-tick.C:
		}
		req := sip.NewRequest(sip.OPTIONS, contact.Address)
		ctx, cancel := context.WithTimeout(stop, c.srv.cfg.KeepAliveTimeout)
		if err := c.route(ctx, req); err != nil {
			cancel()
			select {
			case <-c.done:
			default:
				// Over TCP, no connection to the caller may be opened
				// (the limits), or none can: nothing can learn that the
				// caller is still there.
				c.endStoring(context.Background(), "no way to ping the caller: "+err.Error(), false)
			}
			return
		}
		res, err := c.dlg.Do(ctx, req)
		cancel()
		select {
		case <-c.done:
			return // ended meanwhile: the ping's failure says nothing
		default:
		}
		// The text a vanished caller typed before it went is its own as
		// surely as before a BYE: the call ends storing it.
		switch {
		case err != nil:
			c.endStoring(context.Background(), "the caller stopped answering: no answer to OPTIONS within "+c.srv.cfg.KeepAliveTimeout.String(), false)
			return
		case res.StatusCode == 481 || res.StatusCode == 408:
			c.endStoring(context.Background(), fmt.Sprintf("the caller no longer knows the call: OPTIONS answered %d", res.StatusCode), false)
			return
		}
		c.pongs.Add(1)
	}
}

// readRTP takes the caller's packets into the room.
func (c *call) readRTP() {
	buf := make([]byte, maxRTP+1) // a byte more, to tell a longer datagram
	decFormat := c.rtpFormat()
	dec := t140.NewDecoder(decFormat)
	lim := rate.NewLimiter(rate.Limit(c.srv.cfg.PacketRate), c.srv.cfg.PacketBurst)
	strangers, dropped, shed := 0, 0, 0
	overflow := false // text was shed: mark it before the next text
	waiting := false  // a read deadline is set for a held packet
	for {
		// The first packet of a new source waits for the next to confirm
		// it (t140.Decoder); a sender without redundancy may send no
		// next: alone for releaseHeld, it is taken.
		if held := dec.Holding(); held != waiting {
			var at time.Time
			if held {
				at = time.Now().Add(releaseHeld)
			}
			_ = c.pc.SetReadDeadline(at)
			waiting = held
		}
		n, from, err := c.pc.ReadFromUDPAddrPort(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) && dec.Holding() {
			_ = c.pc.SetReadDeadline(time.Time{})
			waiting = false
			if !c.relay(dec.Release(), &shed, &overflow) {
				return
			}
			continue
		}
		if err != nil {
			select {
			case <-c.done:
			default:
				c.endStoring(context.Background(), "the RTP socket failed: "+err.Error(), true)
			}
			return
		}
		if netip.AddrPortFrom(from.Addr().Unmap(), from.Port()) != c.rtpPeer() {
			if strangers++; strangers == 1 || strangers%1000 == 0 {
				c.log.Warn("RTP from an unknown source ignored", "source", from.String(), "count", strangers)
			}
			continue
		}
		c.packets.Add(1)
		if n > maxRTP {
			c.log.Debug("an RTP packet longer than the front takes ignored", "max", maxRTP)
			continue
		}
		if !lim.Allow() {
			if dropped++; dropped == 1 || dropped%1000 == 0 {
				c.log.Warn("RTP above the packet rate dropped", "count", dropped)
			}
			continue
		}
		var p rtp.Packet
		if err := p.Unmarshal(buf[:n]); err != nil {
			c.log.Debug("a packet that is not RTP ignored", "err", err)
			continue
		}
		d, err := dec.Decode(&p)
		if errors.Is(err, t140.ErrPayloadType) {
			// The caller's answer in an ACK may have changed the payload
			// types (call.takeAnswer). RFC 3264 has the caller go on
			// sending those of the front's offer, which the decoder takes
			// still; one that sends with those of its answer is taken too.
			if f := c.rtpFormat(); f != decFormat {
				c.log.Info("the caller's RTP has the payload types of its last answer", "t140", f.T140, "red", f.RED)
				decFormat = f
				dec.SetFormat(f) // the same stream: its redundancy was given already
				d, err = dec.Decode(&p)
			}
		}
		if err != nil {
			c.log.Debug("an RTP packet that is not T.140 ignored", "err", err)
			continue
		}
		if !c.relay(d, &shed, &overflow) {
			return
		}
	}
}

// releaseHeld is how long the first packet of a new RTP source waits
// alone for the next before it is taken (t140.Decoder.Release): a sender
// with redundancy sends the next within its transmission interval.
const releaseHeld = time.Second

// relay takes what the caller's packets decoded to into the room; false
// means the call ended. shed counts the text dropped for the room's
// backlog, and overflow says text was dropped since the last sent.
func (c *call) relay(d t140.Decoded, shed *int, overflow *bool) bool {
	if !c.callerDirection().Sends() {
		// A caller that said recvonly or inactive: its packets are
		// decoded all the same, so that their redundancy does not bring
		// the text back once it resumes.
		return true
	}
	if d.Lost > 0 {
		c.log.Info("text lost from the caller", "packets", d.Lost)
	}
	if len(d.Text) == 0 {
		return true
	}
	c.textMu.Lock()
	if c.textEnded {
		// The call ended, and the wait for its text to be stored began:
		// text sent now would not be waited for.
		c.textMu.Unlock()
		return false
	}
	if c.sess.Unacked(c.room) >= maxBacklog {
		c.textMu.Unlock()
		if *shed++; *shed == 1 || *shed%1000 == 0 {
			c.log.Warn("the caller's text is faster than the room takes it: dropped", "count", *shed, "unacknowledged", maxBacklog)
		}
		*overflow = true
		return true
	}
	text := string(d.Text)
	if *overflow && !strings.HasPrefix(text, t140.Missing) {
		text = t140.Missing + text
	}
	*overflow = false
	_, err := c.sess.SendText(c.room, text)
	c.textMu.Unlock()
	if err != nil {
		c.end(context.Background(), "the room session ended: "+err.Error(), true)
		return false
	}
	return true
}

// readEvents hands the room's text to the sender, and ends the call
// when the bridged session ends.
func (c *call) readEvents(texts chan<- roomfeed.Text) {
	if reason, ended := roomfeed.Relay(c.sess, c.room, c.user, texts, c.done); ended {
		c.end(context.Background(), reason, true)
	}
}

// sendRTP sends the room's text to the caller: at once when no text left
// in the last interval, else at the next tick; and a packet every
// interval while redundancy is pending.
func (c *call) sendRTP(texts <-chan roomfeed.Text) {
	interval := c.srv.cfg.Interval
	encFormat := c.rtpFormat()
	enc := t140.NewEncoder(encFormat, randUint32(), uint16(randUint32()), c.srv.cfg.Generations)
	mix := t140.NewMixer(0)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	start, tsBase := time.Now(), randUint32()
	// last is when the last packet left, lastText the last with new text:
	// new text leaves at once unless text left less than an interval ago
	// (packets of redundancy alone do not hold it back).
	var last, lastText time.Time
	var backlog []byte
	shedding, shed := false, 0
	send := func(now time.Time) {
		switch taken := mix.Take(now); {
		case len(backlog)+len(taken) <= maxSendBacklog:
			backlog = append(backlog, taken...)
			shedding = false
		case !shedding:
			backlog = append(backlog, mix.Cut()...)
			shedding = true
			if shed++; shed == 1 || shed%100 == 0 {
				c.log.Warn("the room's text is faster than the caller's stream: dropped", "count", shed, "held", len(backlog))
			}
		default:
			mix.Cut() // marked already
		}
		if n := int64(len(backlog)); n > c.held.Load() {
			c.held.Store(n)
		}
		if !c.callerDirection().Receives() {
			c.unsent.Store(int64(len(backlog)))
			return // on hold: the text waits for the caller to resume
		}
		peer, format := c.media()
		if format != encFormat {
			// The caller's answer in an ACK changed the payload types
			// (call.takeAnswer): a new stream, whose redundancy starts
			// anew.
			encFormat = format
			enc = t140.NewEncoder(format, randUint32(), uint16(randUint32()), c.srv.cfg.Generations)
		}
		if len(backlog) == 0 && !enc.Pending() {
			return
		}
		n := min(len(backlog), maxPacketText)
		for n > 0 && n < len(backlog) && !utf8.RuneStart(backlog[n]) {
			n--
		}
		p, err := enc.Packet(backlog[:n], tsBase+uint32(now.Sub(start).Milliseconds()))
		if err != nil {
			c.log.Error("building an RTP packet", "err", err)
			return
		}
		backlog = backlog[n:]
		c.unsent.Store(int64(len(backlog)))
		raw, err := p.Marshal()
		if err != nil {
			c.log.Error("marshalling an RTP packet", "err", err)
			return
		}
		if _, err := c.pc.WriteToUDPAddrPort(raw, peer); err != nil {
			c.log.Debug("sending RTP", "err", err)
		}
		last = now
		if n > 0 {
			lastText = now
		}
	}
	for {
		select {
		case <-c.done:
			return
		case rt := <-texts:
			now := time.Now()
			if rt.Leave {
				mix.Forget(rt.From)
				continue
			}
			mix.Write(rt.From, rt.Text, now)
			c.relayed.Add(int64(len(rt.Text)))
			if now.Sub(lastText) >= interval {
				send(now)
			}
		case now := <-tick.C:
			if now.Sub(last) >= interval/2 {
				send(now)
			}
		}
	}
}

// flushWait bounds how long a call that ends waits for its caller's text
// to be stored.
const flushWait = 5 * time.Second

// flush waits, until ctx ends or flushWait passes, for the node to
// acknowledge the caller's text the bridge still holds. A call that ended
// (the caller's BYE, a stopping front) closed the bridged session at
// once, and with it the text the caller had typed and the room had not
// stored yet (the client package keeps it only to resend, held back by
// the node's chunk rate or while the member fails over); RTP carries no
// acknowledgement, so nothing could send it again. Someone must read the
// session's events meanwhile: the acknowledgements come in order with
// them.
func (c *call) flush(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, flushWait)
	defer cancel()
	// A call ended meanwhile has closed its session: Flush returns.
	if err := c.sess.Flush(ctx, c.room); err != nil && ctx.Err() != nil {
		c.log.Warn("the call ends with text of the caller not stored", "chunks", c.sess.Unacked(c.room))
	}
}

// end ends the call once: stops its goroutines, leaves the room at once
// (the caller's text the node has not acknowledged is lost), and
// with bye sends the caller a BYE whose Reason header says why (cause
// 503, the node's or its session's trouble). It is for the ends that
// have no such text to store: a call not confirmed yet (a CANCEL, no
// ACK, the front stopping while it was set up), whose caller's RTP the
// front never read; a session that ended, which can store nothing; and
// Close and Shutdown, which stop the front at once or stored the text
// first.
func (c *call) end(ctx context.Context, reason string, bye bool) {
	c.finish(ctx, reason, byeCause(bye), false)
}

// endStoring ends the call as end does, but its member leaves the room
// only once the node has stored the caller's text the bridge still holds
// (store): for the ends where the caller may have typed text the node
// has not acknowledged (a BYE, a caller that vanished, a failed RTP
// socket, an answer in an ACK that cannot be taken).
func (c *call) endStoring(ctx context.Context, reason string, bye bool) {
	c.finish(ctx, reason, byeCause(bye), true)
}

// byeCause is the Reason cause of the BYE end sends: 503, or 0 for none.
func byeCause(bye bool) int {
	if bye {
		return 503
	}
	return 0
}

// finish ends the call once; a cause other than 0 sends a BYE. The BYE
// of a call whose first 200 the caller has not acknowledged waits for
// the ACK (RFC 3261, section 15, forbids it before), as long as ctx and
// at most 5 s. With keep, the bridged session closes only once the node
// has stored the caller's text (store), on a goroutine of its own, so
// that the request that ended the call (a BYE, whose 200 is sent
// already) is not held up; the call's place under the limits is held
// until then, so that callers who type and hang up in a loop cannot hold
// more node sessions than the limits allow. Once the front stops storing
// (Close, or a Shutdown whose ctx ended), the session closes at once.
func (c *call) finish(ctx context.Context, reason string, cause int, keep bool) {
	c.endOnce.Do(func() {
		s := c.srv
		if keep {
			// Counted under mu, before this returns: Shutdown and Close
			// wait for the count once the calls they end have ended.
			s.mu.Lock()
			keep = !s.flushStopped
			if keep {
				s.flushing.Add(1)
			}
			s.mu.Unlock()
		}
		close(c.done)
		c.pc.Close()
		if keep {
			go func() {
				defer s.flushing.Done()
				c.store()
				s.mu.Lock()
				if c.place != nil {
					s.limits.free(c.place)
				}
				s.mu.Unlock()
			}()
		} else {
			c.sess.Close()
		}
		if cause != 0 {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := c.bye(ctx, cause, reason); err != nil {
				c.log.Info("sending BYE", "err", err)
			}
		}
		c.dlg.Close()
		s.mu.Lock()
		if s.calls[c.id] == c {
			delete(s.calls, c.id)
		}
		if c.place != nil && !keep {
			s.limits.free(c.place)
		}
		s.mu.Unlock()
		c.log.Info("call ended", "reason", reason)
	})
}

// store waits, for up to flushWait or until the front stops storing
// (Server.stopFlushes), for the node to store the caller's text the
// bridge still holds, then closes the session. The caller's last
// text read from RTP is sent first, and none after (relay); the
// session's events are read meanwhile, as the call's own reader
// (readEvents) stops at the first text once the call ended.
func (c *call) store() {
	c.textMu.Lock()
	c.textEnded = true
	c.textMu.Unlock()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for range c.sess.Events() {
		}
	}()
	c.flush(c.srv.flushCtx)
	c.sess.Close()
	<-drained
}

func (c *call) bye(ctx context.Context, cause int, reason string) error {
	inv := c.dlg.InviteRequest
	contact := inv.Contact()
	if contact == nil {
		return nil
	}
	req := sip.NewRequest(sip.BYE, contact.Address)
	if err := c.route(ctx, req); err != nil {
		return err
	}
	text := strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 {
			return '\''
		}
		return r
	}, reason)
	req.AppendHeader(sip.NewHeader("Reason", fmt.Sprintf(`SIP;cause=%d;text="%s"`, cause, text)))
	if err := c.dlg.WriteBye(ctx, req); err != nil {
		return fmt.Errorf("sipfront: BYE: %w", err)
	}
	return nil
}
