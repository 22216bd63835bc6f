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
	srv    *Server
	id     string
	dlg    *sipgo.DialogServerSession
	room   string
	user   string
	log    *slog.Logger
	peer   netip.AddrPort // where the caller receives RTP, and the only source accepted
	format t140.Format
	local  netip.AddrPort // where the caller sends RTP, as the answer says
	sdpID  uint64         // the answers' o= session id
	pc     *net.UDPConn
	sess   *client.Session

	mu        sync.Mutex
	answer    []byte            // guarded by mu: the SDP answer, given again to a re-INVITE
	version   uint64            // guarded by mu: the answer's o= version, above sdpID
	direction textsdp.Direction // guarded by mu: the caller's stream's direction, as its last offer said
	kinds     []string          // guarded by mu: the media of the last offer's m= lines
	index     int               // guarded by mu: the text stream's place among them
	// remoteCSeq is the highest CSeq of the caller's INVITEs in the
	// dialog (RFC 3261, section 12.2.2): a re-INVITE below it is stale.
	// (Other requests are not held to it: an OPTIONS or BYE out of
	// order changes nothing.)
	remoteCSeq uint32 // guarded by mu
	// unacked is closed by the ACK of the re-INVITE whose 2xx the front
	// is sending again (ackCSeq); nil when none is.
	unacked chan struct{} // guarded by mu
	ackCSeq uint32        // guarded by mu

	release func() // guarded by srv.mu
	done    chan struct{}
	endOnce sync.Once

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
	if offer.Direction == c.direction && offer.Index == c.index && slices.Equal(offer.Kinds, c.kinds) {
		return c.answer, nil
	}
	answer, err := textsdp.Answer(offer, c.local, c.srv.cfg.Generations, c.sdpID, c.version+1)
	if err != nil {
		return nil, err
	}
	c.log.Info("the caller changed the call's session", "from", c.direction.String(), "to", offer.Direction.String(), "streams", len(offer.Kinds))
	c.answer, c.version, c.direction = answer, c.version+1, offer.Direction
	c.kinds, c.index = offer.Kinds, offer.Index
	return answer, nil
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

// awaitAck notes that the 2xx to the re-INVITE cseq awaits its ACK, and
// returns the channel the ACK closes. A 2xx before it that is still
// unacknowledged is sent no more.
func (c *call) awaitAck(cseq uint32) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unacked != nil {
		close(c.unacked)
	}
	c.unacked, c.ackCSeq = make(chan struct{}), cseq
	return c.unacked
}

// acked takes the ACK of the re-INVITE cseq.
func (c *call) acked(cseq uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unacked != nil && c.ackCSeq == cseq {
		close(c.unacked)
		c.unacked = nil
	}
}

// inDialog routes req, a request of the front's in the call, as the
// caller's INVITE came: over TCP on the caller's own connection while it
// is open (RFC 3261, section 18.1.1 lets a reliable transport's requests
// go back on the connection they came on), not on a new one to the host
// and port its Contact names, which the connection limits would not
// count and nothing would close. Once that connection is closed (the
// phone reconnected, or the front closed it idle), to the Contact, as
// over UDP.
func (c *call) inDialog(req *sip.Request) {
	inv := c.dlg.InviteRequest
	req.SetTransport(inv.Transport())
	if !strings.EqualFold(inv.Transport(), "UDP") && c.srv.lim != nil && c.srv.lim.Live(inv.Source()) {
		req.SetDestination(inv.Source())
	}
}

// resend2xx sends the 2xx res to a re-INVITE again on tx, after T1 and
// then at intervals doubling up to T2, until acked is closed, the call
// ends, or 64*T1 has passed (RFC 3261, section 13.3.1.4).
func (c *call) resend2xx(tx sip.ServerTransaction, res *sip.Response, acked <-chan struct{}) {
	giveUp := time.NewTimer(64 * sip.T1)
	defer giveUp.Stop()
	wait := sip.T1
	next := time.NewTimer(wait)
	defer next.Stop()
	for {
		select {
		case <-acked:
			return
		case <-c.done:
			return
		case <-giveUp.C:
			c.log.Info("no ACK for the answer to a re-INVITE", "cseq", res.CSeq().SeqNo)
			return
		case <-next.C:
			if err := tx.Respond(res); err != nil {
				return
			}
			wait = min(2*wait, sip.T2)
			next.Reset(wait)
		}
	}
}

// lastAnswer is the SDP answer given last.
func (c *call) lastAnswer() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.answer
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
		c.inDialog(req)
		ctx, cancel := context.WithTimeout(stop, c.srv.cfg.KeepAliveTimeout)
		res, err := c.dlg.Do(ctx, req)
		cancel()
		select {
		case <-c.done:
			return // ended meanwhile: the ping's failure says nothing
		default:
		}
		switch {
		case err != nil:
			c.end(context.Background(), "the caller stopped answering: no answer to OPTIONS within "+c.srv.cfg.KeepAliveTimeout.String(), false)
			return
		case res.StatusCode == 481 || res.StatusCode == 408:
			c.end(context.Background(), fmt.Sprintf("the caller no longer knows the call: OPTIONS answered %d", res.StatusCode), false)
			return
		}
		c.pongs.Add(1)
	}
}

// readRTP takes the caller's packets into the room.
func (c *call) readRTP() {
	buf := make([]byte, maxRTP+1) // a byte more, to tell a longer datagram
	dec := t140.NewDecoder(c.format)
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
				c.end(context.Background(), "the RTP socket failed: "+err.Error(), true)
			}
			return
		}
		if netip.AddrPortFrom(from.Addr().Unmap(), from.Port()) != c.peer {
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
	if c.sess.Unacked(c.room) >= maxBacklog {
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
	if _, err := c.sess.SendText(c.room, text); err != nil {
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
	enc := t140.NewEncoder(c.format, randUint32(), uint16(randUint32()), c.srv.cfg.Generations)
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
		if _, err := c.pc.WriteToUDPAddrPort(raw, c.peer); err != nil {
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

// flushWait bounds how long a stopping front waits for a call's text to
// be stored.
const flushWait = 5 * time.Second

// flush waits, until ctx ends or flushWait passes, for the node to
// acknowledge the caller's text the bridge still holds. A front that
// stops (SIGTERM, the end of a drain) closed the bridged session at once,
// and with it the text the caller had typed and the room had not stored
// yet (the client package keeps it only to resend); RTP carries no
// acknowledgement, so nothing could send it again.
func (c *call) flush(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, flushWait)
	defer cancel()
	// A call ended meanwhile has closed its session: Flush returns.
	if err := c.sess.Flush(ctx, c.room); err != nil && ctx.Err() != nil {
		c.log.Warn("the call ends with text of the caller not stored", "chunks", c.sess.Unacked(c.room))
	}
}

// end ends the call once: stops its goroutines, leaves the room, and
// with bye sends the caller a BYE whose Reason header says why.
func (c *call) end(ctx context.Context, reason string, bye bool) {
	c.endOnce.Do(func() {
		close(c.done)
		c.pc.Close()
		c.sess.Close()
		if bye {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := c.bye(ctx, reason); err != nil {
				c.log.Info("sending BYE", "err", err)
			}
		}
		c.dlg.Close()
		c.srv.mu.Lock()
		if c.srv.calls[c.id] == c {
			delete(c.srv.calls, c.id)
		}
		release := c.release
		c.srv.mu.Unlock()
		if release != nil {
			release()
		}
		c.log.Info("call ended", "reason", reason)
	})
}

func (c *call) bye(ctx context.Context, reason string) error {
	inv := c.dlg.InviteRequest
	contact := inv.Contact()
	if contact == nil {
		return nil
	}
	req := sip.NewRequest(sip.BYE, contact.Address)
	c.inDialog(req)
	text := strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 {
			return '\''
		}
		return r
	}, reason)
	req.AppendHeader(sip.NewHeader("Reason", `SIP;cause=503;text="`+text+`"`))
	return c.dlg.WriteBye(ctx, req)
}
