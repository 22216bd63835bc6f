package rtcfront

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/roomfeed"
	"github.com/switchboard/switchboard/internal/t140"
	"github.com/switchboard/switchboard/rtt"
)

// maxChunk is the most text put in one chunk to the room or one message
// to the peer; longer text is cut (cutAt) at a character boundary, and
// before an escape sequence the cut would split.
const maxChunk = 1000

// cutAt returns where text is cut for a chunk of at most max bytes: all
// of it if it fits; else at the last character boundary within max,
// moved back to the start of an escape sequence (ESC ..., or C1 CSI
// U+009B ..., as package rtt reads them: rtt.SequenceLen) that begins before that
// cut and ends after it. Package rtt drops such a sequence whole within
// a chunk, but a sequence cut by a chunk's end loses its first part and
// shows the rest as text: "ESC [ 3 1" and "m" shows "m", "ESC [" and
// "31m" shows "31m". A sequence that begins text (it is longer than max)
// is cut where it must be. text is valid UTF-8 (U+009B is its two bytes
// C2 9B and nothing else is); text[:cutAt(text, max)] is never empty
// when text is not.
func cutAt[S string | []byte](text S, max int) int {
	if len(text) <= max {
		return len(text)
	}
	n := max
	for n > 0 && !utf8.RuneStart(text[n]) {
		n--
	}
	if n == 0 {
		return max // no boundary within max (not UTF-8): cut anywhere
	}
	// The last sequence to begin before n: an ESC or a CSI ends any
	// sequence before it (neither is a byte a sequence continues with).
	start := -1
	for i := n - 1; i >= 0; i-- {
		if text[i] == esc || (text[i] == csi1 && i+1 < len(text) && text[i+1] == csi2) {
			start = i
			break
		}
	}
	if start > 0 && start+rtt.SequenceLen(string(text[start:n+1])) > n {
		return start
	}
	return n
}

// The bytes that start an escape sequence: ESC, and U+009B (CSI) in
// UTF-8.
const (
	esc  = 0x1B
	csi1 = 0xC2
	csi2 = 0x9B
)

// maxBacklog is the most chunks of the peer's text the bridge holds that
// the node has not acknowledged. The node takes a session's text at its
// own rate (50 chunks and 8 KiB a second by default) and the client
// package keeps what it refused, to resend: a peer sending faster (30
// messages a second of up to 4 KiB pass the front's message rate) would
// grow that queue without end, about 110 KB a second per peer. Past this
// many the peer's text is dropped and marked U+FFFD once, T.140's mark
// of lost text. 256 chunks outlast the 30 s a failover may take for a
// typist.
const maxBacklog = 256

// peer is one answered WebRTC peer: its connection, its bridged session,
// and the goroutines between them.
type peer struct {
	srv  *Server
	pc   *webrtc.PeerConnection
	sess *client.Session
	room string
	user string
	log  *slog.Logger
	// ufrag is the local ICE ufrag, under which the front's mux counts
	// the addresses of the peer's packets (guardedMux.watch).
	ufrag string

	opened  chan *webrtc.DataChannel // the t140 channel, once open
	joined  chan struct{}            // closed once the member is in the room
	claimed atomic.Bool              // a t140 channel was taken
	limiter *rate.Limiter            // used by pion's read loop only
	dropped int                      // messages over the rate; read loop only
	shed    int                      // messages over the backlog; read loop only
	over    bool                     // text was dropped: mark it before the next; read loop only
	msgs    atomic.Int64             // messages read from the peer
	refused atomic.Int32             // data channels refused

	release func()        // guarded by srv.mu; run calls it once closed is closed
	done    chan struct{} // closed when the peer ends
	closed  chan struct{} // closed once end has closed the bridged session
	endOnce sync.Once
}

func newPeer(s *Server, pc *webrtc.PeerConnection, sess *client.Session, room, user, ufrag string) *peer {
	p := &peer{
		srv: s, pc: pc, sess: sess, room: room, user: user, ufrag: ufrag,
		log:     s.log.With("room", room, "user", user),
		opened:  make(chan *webrtc.DataChannel, 1),
		joined:  make(chan struct{}),
		limiter: rate.NewLimiter(rate.Limit(s.cfg.MessageRate), s.cfg.MessageBurst),
		done:    make(chan struct{}),
		closed:  make(chan struct{}),
	}
	pc.OnDataChannel(p.onDataChannel)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateFailed:
			p.end("the connection failed (ICE or DTLS)")
		case webrtc.PeerConnectionStateClosed:
			p.end("the connection closed")
		}
	})
	return p
}

// maxRefusedChannels is how many data channels the front refuses a peer
// before it drops the peer: a page opens one, perhaps a few for other
// uses; a peer that opens channels without end costs the node a channel,
// its teardown and a log line each.
const maxRefusedChannels = 8

// onDataChannel takes the peer's first reliable, ordered t140 channel
// and closes any other; the peer is dropped at its maxRefusedChannels-th
// refused channel.
func (p *peer) onDataChannel(dc *webrtc.DataChannel) {
	refuse := func(why string) {
		_ = dc.Close()
		if n := p.refused.Add(1); n >= maxRefusedChannels {
			p.end("the peer opened " + strconv.Itoa(maxRefusedChannels) + " data channels the node refuses")
			return
		}
		p.log.Info("data channel refused", "label", dc.Label(), "protocol", dc.Protocol(), "reason", why)
	}
	switch {
	case dc.Protocol() != Protocol:
		refuse("only data channels of protocol " + Protocol + " are served")
		return
	case !dc.Ordered() || dc.MaxRetransmits() != nil || dc.MaxPacketLifeTime() != nil:
		refuse("a t140 channel must be reliable and ordered (RFC 8865)")
		return
	case !p.claimed.CompareAndSwap(false, true):
		refuse("one t140 channel per peer")
		return
	}
	dc.OnOpen(func() {
		select {
		case p.opened <- dc:
		default:
		}
	})
	dc.OnMessage(p.fromPeer)
	dc.OnClose(func() { p.end("the peer closed its t140 channel") })
}

// fromPeer takes one message of the peer's text into the room. It runs
// on the connection's read loop, one message at a time. Text that comes
// before the member is in the room waits for it there: the peer's
// stack holds the rest meanwhile. Text read once the peer has ended is
// dropped and marked (end): the read loop goes on until the connection
// is closed, and a select on joined and done, both closed then, let
// some of it through and dropped the rest at random.
func (p *peer) fromPeer(msg webrtc.DataChannelMessage) {
	p.msgs.Add(1)
	if p.ended() {
		p.over = p.over || len(msg.Data) > 0
		return
	}
	// The node's stack takes messages up to 64 KiB whatever the answer
	// announced: a peer that ignores max-message-size is not served.
	if len(msg.Data) > p.srv.cfg.MaxMessage {
		p.end("a message of " + strconv.Itoa(len(msg.Data)) + " bytes, above the max-message-size of " + strconv.Itoa(p.srv.cfg.MaxMessage) + " the answer announced")
		return
	}
	select {
	case <-p.joined:
	case <-p.done:
		p.over = p.over || len(msg.Data) > 0
		return
	}
	text := strings.ToValidUTF8(string(msg.Data), "\uFFFD")
	text = strings.ReplaceAll(text, "\uFEFF", "") // T.140's byte order mark carries no text
	if !p.limiter.Allow() {
		if p.dropped++; p.dropped == 1 || p.dropped%1000 == 0 {
			p.log.Warn("messages above the rate dropped", "count", p.dropped)
		}
		// Text lost: marked before the next text taken.
		p.over = p.over || text != ""
		return
	}
	if text == "" {
		return
	}
	if p.sess.Unacked(p.room) >= maxBacklog {
		if p.shed++; p.shed == 1 || p.shed%1000 == 0 {
			p.log.Warn("the peer's text is faster than the room takes it: dropped", "count", p.shed, "unacknowledged", maxBacklog)
		}
		p.over = true
		return
	}
	if p.over && !strings.HasPrefix(text, t140.Missing) {
		text = t140.Missing + text
	}
	p.over = false
	for len(text) > 0 {
		n := cutAt(text, maxChunk)
		if p.ended() {
			p.over = true
			return
		}
		if _, err := p.sess.SendText(p.room, text[:n]); err != nil {
			p.end("the room session ended: " + err.Error())
			return
		}
		text = text[n:]
	}
}

// ended reports whether end has been called.
func (p *peer) ended() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// run serves the peer until it ends, then gives its place back once the
// bridged session is closed: it waits for the peer's t140 channel to
// open, joins the room, and relays both ways. Every way out of run has
// ended the peer.
func (p *peer) run() {
	defer func() {
		// The place is the node session's as much as the peer's: end
		// keeps the session up to flushWait after the peer has gone.
		// Given back when the peer ended, it let a source that
		// connects, types and hangs up in a loop hold more node
		// sessions than MaxPeers and MaxPeersPerSource.
		<-p.closed
		p.srv.mu.Lock()
		release := p.release
		p.srv.mu.Unlock()
		if release != nil {
			release()
		}
	}()
	// The session's events are read from the start, so that a session
	// that ends while the peer connects ends the peer.
	texts := make(chan roomfeed.Text, 64)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { p.readEvents(texts) })
	open := time.NewTimer(p.srv.cfg.OpenTimeout)
	var dc *webrtc.DataChannel
	select {
	case dc = <-p.opened:
		open.Stop()
	case <-open.C:
		p.end("no t140 data channel opened within " + p.srv.cfg.OpenTimeout.String())
		return
	case <-p.done:
		open.Stop()
		return
	}
	if !p.join(dc) {
		return
	}
	p.log.Info("WebRTC peer in the room", "label", dc.Label())
	p.send(dc, texts)
}

// noticeWait bounds how long a refused peer's channel stays open for the
// line that says why to reach the peer.
const noticeWait = 2 * time.Second

// join makes the member a member of the room, now that the peer has
// proven it can type: its channel is open. When the node refuses (the
// room full, say), the peer reads why as one line on its channel, and
// is ended.
func (p *peer) join(dc *webrtc.DataChannel) bool {
	ctx, cancel := context.WithTimeout(context.Background(), p.srv.cfg.SetupTimeout)
	defer cancel()
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	_, err := p.sess.JoinWait(ctx, p.room)
	if err == nil {
		close(p.joined)
		return true
	}
	select {
	case <-p.done:
		return false
	default:
	}
	why := err.Error()
	var se *client.ServerError
	if errors.As(err, &se) {
		why = se.Message
	}
	p.notice(dc, "the node could not put you in room "+p.room+": "+why)
	p.end("joining the room: " + why)
	return false
}

// notice sends the peer one line, unlabelled (every line of the room's
// text starts with its sender's label), and waits until the peer's stack
// has taken it, for up to noticeWait.
func (p *peer) notice(dc *webrtc.DataChannel, line string) {
	sent := make(chan struct{})
	var once sync.Once
	dc.SetBufferedAmountLowThreshold(0)
	dc.OnBufferedAmountLow(func() { once.Do(func() { close(sent) }) })
	if err := dc.SendText(line + t140.LineSeparator); err != nil {
		return
	}
	if dc.BufferedAmount() == 0 {
		return
	}
	wait := time.NewTimer(noticeWait)
	defer wait.Stop()
	select {
	case <-sent:
	case <-wait.C:
	case <-p.done:
	}
}

// readEvents hands the room's text to the sender, and ends the peer
// when the bridged session ends.
func (p *peer) readEvents(texts chan<- roomfeed.Text) {
	if reason, ended := roomfeed.Relay(p.sess, p.room, p.user, texts, p.done); ended {
		p.end(reason)
	}
}

// send writes the room's text to the peer's channel, labelled by sender
// (t140.Mixer): at once when no text left in the last interval, else at
// the next tick.
func (p *peer) send(dc *webrtc.DataChannel, texts <-chan roomfeed.Text) {
	interval := p.srv.cfg.Interval
	mix := t140.NewMixer(0)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var lastText time.Time
	var backlog []byte
	flush := func(now time.Time) {
		backlog = append(backlog, mix.Take(now)...)
		for len(backlog) > 0 {
			if dc.BufferedAmount() > uint64(p.srv.cfg.MaxBuffered) {
				p.end("the peer reads too slowly")
				return
			}
			n := cutAt(backlog, maxChunk)
			if err := dc.SendText(string(backlog[:n])); err != nil {
				p.end("sending to the peer: " + err.Error())
				return
			}
			backlog = backlog[n:]
			lastText = now
		}
	}
	for {
		select {
		case <-p.done:
			return
		case rt := <-texts:
			now := time.Now()
			if rt.Leave {
				mix.Forget(rt.From)
				continue
			}
			mix.Write(rt.From, rt.Text, now)
			if now.Sub(lastText) >= interval {
				flush(now)
			}
		case now := <-tick.C:
			flush(now)
		}
	}
}

// flushWait bounds how long an ended peer's bridge waits for the node to
// store the peer's text.
const flushWait = 5 * time.Second

// end ends the peer once: stops its goroutines and closes the connection
// (the peer sees its channel close), then, once the node has stored the
// text the peer sent (up to flushWait, or until Shutdown gives up), the
// bridged session leaves the room, and closed is closed. The peer's
// reliable channel delivered that text: a bridge that closed its session
// at once lost what the node had not acknowledged yet, when the peer
// hung up right after typing, say.
func (p *peer) end(reason string) {
	p.endOnce.Do(func() {
		// Counted before done closes, as Shutdown must wait for this.
		p.srv.wg.Add(1)
		close(p.done)
		p.srv.mu.Lock()
		delete(p.srv.peers, p)
		p.srv.mu.Unlock()
		p.log.Info("WebRTC peer ended", "reason", reason)
		// GracefulClose waits for the connection's goroutines, which
		// may be the caller (a callback): the rest runs on a goroutine
		// of its own. It waits for the channels' read loops, as Close
		// does not: fromPeer has then queued its last text, before
		// Flush, or dropped it, and over may be read here.
		go func() {
			defer p.srv.wg.Done()
			defer close(p.closed)
			_ = p.pc.GracefulClose()
			p.srv.mux.forget(p.ufrag)
			if p.over && p.inRoom() {
				// The text dropped last is marked, as any other: the
				// room sees it was lost, then the member leave.
				_, _ = p.sess.SendText(p.room, t140.Missing)
			}
			p.flush()
			p.sess.Close()
		}()
	})
}

// inRoom reports whether the member joined the room.
func (p *peer) inRoom() bool {
	select {
	case <-p.joined:
		return true
	default:
		return false
	}
}

// flush waits, until flushWait passes or Shutdown gives up, for the node
// to acknowledge the peer's text the bridge still holds. It reads the
// session's events meanwhile (the acks come in order with them), until
// the session is closed.
func (p *peer) flush() {
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for range p.sess.Events() {
		}
	}()
	defer func() {
		p.sess.Close()
		<-drained
	}()
	ctx, cancel := context.WithTimeout(p.srv.flushCtx, flushWait)
	defer cancel()
	// A session that ended has nothing more to store: Flush returns.
	if err := p.sess.Flush(ctx, p.room); err != nil && ctx.Err() != nil {
		p.log.Warn("the peer ends with text not stored", "chunks", p.sess.Unacked(p.room))
	}
}
