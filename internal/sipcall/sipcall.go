// Package sipcall is a small SIP caller for real-time text: it dials
// sip:ROOM@HOST:PORT with an SDP offer of T.140 with redundancy, follows
// a redirect, and then sends and receives text as RFC 4103 RTP. The tests
// of the SIP front and `switchboard bench rtp` use it in place of a
// phone; it is not a general SIP client.
package sipcall

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/switchboard/switchboard/internal/t140"
	"github.com/switchboard/switchboard/internal/textsdp"
)

// Why a call ended, besides a BYE (Call.Err).
var (
	// ErrNoAnswer: the node stopped answering the call's keepalive pings
	// (it died, or the way to it did). No BYE can come from a node that
	// was killed; this is how the caller learns of it.
	ErrNoAnswer = errors.New("sipcall: the node stopped answering")
	// ErrCallGone: the node answered a ping saying it knows no such call
	// (481, 408): it restarted, or ended the call without a BYE.
	ErrCallGone = errors.New("sipcall: the node no longer knows the call")
)

// StatusError is a final SIP response other than 2xx (and 3xx once
// followed).
type StatusError struct {
	Code   int
	Reason string
	// Contact is the Contact of a redirect not followed.
	Contact string
}

// Error says the call was refused, with the status code and reason.
func (e *StatusError) Error() string {
	return fmt.Sprintf("sipcall: the call was refused: %d %s", e.Code, e.Reason)
}

// Config shapes a call; zero values take the defaults.
type Config struct {
	// User is the From user (default "caller").
	User string
	// Host is the local address for SIP and RTP (default 127.0.0.1).
	Host string
	// Format is what the offer carries (default t140 98 with red 100).
	Format t140.Format
	// Interval is the T.140 transmission interval (default 300 ms).
	Interval time.Duration
	// Drop, when set, is asked for every RTP packet about to be sent, by
	// its index from 0: true loses it (to test redundancy).
	Drop func(i int) bool
	// Logger receives the SIP stack's logs (default: discarded).
	Logger *slog.Logger
	// KeepAlive, when set, sends an OPTIONS request in the dialog this
	// often, as phones do to learn that the other end is gone (RFC 3261
	// section 11): a ping the node does not answer within
	// KeepAliveTimeout ends the call with ErrNoAnswer, an answer of 481
	// or 408 with ErrCallGone.
	KeepAlive time.Duration
	// KeepAliveTimeout is how long a ping may go unanswered (default
	// 5 s, or KeepAlive if longer). The SIP stack resends it meanwhile.
	KeepAliveTimeout time.Duration
}

// Call is a call in progress.
type Call struct {
	cfg    Config
	ua     *sipgo.UserAgent
	dlg    *sipgo.DialogClientSession
	pc     *net.UDPConn
	sipPC  net.PacketConn
	Answer textsdp.Media

	offer   []byte // the last offer: Refresh sends it again
	sdpID   uint64 // the offers' o= session id
	version uint64 // the last offer's o= version, above sdpID
	contact sip.ContactHeader

	text   chan string
	out    chan string
	ended  chan struct{}
	endMu  sync.Mutex
	reason string
	err    error
	pongs  atomic.Int64
	// largest is the largest RTP datagram received.
	largest atomic.Int64
	once    sync.Once
	wg      sync.WaitGroup
	// pinging is the keepalive's goroutine: finish waits for it before it
	// closes the SIP stack, so that no ping goes out after. The stack
	// would make a new UDP connection for one, which nothing closes.
	pinging sync.WaitGroup
	// stopPings ends a ping in flight when the call ends.
	pingCtx   context.Context
	stopPings context.CancelFunc
}

// Dial calls target (sip:ROOM@HOST:PORT), following one 302 redirect.
func Dial(ctx context.Context, target string, cfg Config) (*Call, error) {
	var uri sip.Uri
	if err := sip.ParseUri(target, &uri); err != nil {
		return nil, fmt.Errorf("sipcall: target %q: %w", target, err)
	}
	c, err := dial(ctx, uri, cfg)
	var se *StatusError
	if errors.As(err, &se) && se.Code/100 == 3 && se.Contact != "" {
		var next sip.Uri
		if err := sip.ParseUri(se.Contact, &next); err != nil {
			return nil, fmt.Errorf("sipcall: redirect to %q: %w", se.Contact, err)
		}
		return dial(ctx, next, cfg)
	}
	return c, err
}

func dial(ctx context.Context, uri sip.Uri, cfg Config) (*Call, error) {
	if cfg.User == "" {
		cfg.User = "caller"
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Format.T140 == 0 {
		cfg.Format = t140.Format{T140: textsdp.DefaultT140PT, RED: textsdp.DefaultREDPT}
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 300 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.KeepAliveTimeout <= 0 {
		cfg.KeepAliveTimeout = max(5*time.Second, cfg.KeepAlive)
	}
	c := &Call{cfg: cfg, text: make(chan string, 1024), out: make(chan string, 1024), ended: make(chan struct{})}
	c.pingCtx, c.stopPings = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			c.closeAll()
		}
	}()
	var err error
	if c.pc, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(cfg.Host+":0"))); err != nil {
		return nil, fmt.Errorf("sipcall: RTP socket: %w", err)
	}
	if c.sipPC, err = net.ListenPacket("udp", cfg.Host+":0"); err != nil {
		return nil, fmt.Errorf("sipcall: SIP socket: %w", err)
	}
	sipPort := c.sipPC.LocalAddr().(*net.UDPAddr).Port
	if c.ua, err = sipgo.NewUA(sipgo.WithUserAgent("switchboard-sipcall"), sipgo.WithUserAgentHostname(cfg.Host),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(cfg.Logger)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(cfg.Logger))); err != nil {
		return nil, err
	}
	srv, err := sipgo.NewServer(c.ua, sipgo.WithServerLogger(cfg.Logger))
	if err != nil {
		return nil, err
	}
	cl, err := sipgo.NewClient(c.ua, sipgo.WithClientHostname(cfg.Host), sipgo.WithClientPort(sipPort),
		sipgo.WithClientConnectionAddr(net.JoinHostPort(cfg.Host, "0")), sipgo.WithClientLogger(cfg.Logger))
	if err != nil {
		return nil, err
	}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: cfg.User, Host: cfg.Host, Port: sipPort}}
	dialogs := sipgo.NewDialogClientCache(cl, contact)
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		reason := "BYE"
		if h := req.GetHeader("Reason"); h != nil {
			reason = h.Value()
		}
		_ = dialogs.ReadBye(req, tx)
		c.finish(reason, nil)
	})
	go func() { _ = srv.ServeUDP(c.sipPC) }()

	local := c.pc.LocalAddr().(*net.UDPAddr).AddrPort()
	c.sdpID = uint64(randUint32())
	offer, err := textsdp.Offer(local, cfg.Format, 0, textsdp.SendRecv, c.sdpID, 0)
	if err != nil {
		return nil, err
	}
	if uri.Port == 0 {
		uri.Port = 5060
	}
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: cfg.User, Host: cfg.Host}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	c.offer, c.contact = offer, contact
	dlg, err := dialogs.Invite(ctx, uri, offer, from, sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		return nil, fmt.Errorf("sipcall: INVITE: %w", err)
	}
	c.dlg = dlg
	if err := c.waitAnswer(ctx); err != nil {
		if errors.Is(err, errGaveUp) {
			ok = true // waitAnswer's goroutine closes the call's sockets
		}
		var re *sipgo.ErrDialogResponse
		if errors.As(err, &re) {
			se := &StatusError{Code: re.Res.StatusCode, Reason: re.Res.Reason}
			if h := re.Res.Contact(); h != nil {
				se.Contact = h.Address.String()
			}
			return nil, se
		}
		return nil, fmt.Errorf("sipcall: waiting for the answer: %w", err)
	}
	if c.Answer, err = textsdp.Parse(dlg.InviteResponse.Body()); err != nil {
		return nil, fmt.Errorf("sipcall: the answer: %w", err)
	}
	if err := dlg.Ack(ctx); err != nil {
		return nil, fmt.Errorf("sipcall: ACK: %w", err)
	}
	ok = true
	c.wg.Add(2)
	go c.receive()
	go c.send()
	if cfg.KeepAlive > 0 {
		c.pinging.Go(c.keepAlive)
	}
	return c, nil
}

// errGaveUp marks a dial abandoned when its context ended.
var errGaveUp = errors.New("sipcall: gave up waiting for the answer")

// waitAnswer waits for the INVITE's final answer until ctx ends. The SIP
// stack's own wait outlasts ctx (a CANCEL waits for its answer, and
// without a provisional answer no CANCEL may be sent: RFC 3261 section
// 9.1), up to 64*T1 when the node is dead; so it runs on, and a goroutine
// closes the call's sockets when it is done, acknowledging and hanging up
// a 200 that came too late.
func (c *Call) waitAnswer(ctx context.Context) error {
	var provisional atomic.Bool
	wctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	answered := make(chan error, 1)
	go func() {
		answered <- c.dlg.WaitAnswer(wctx, sipgo.AnswerOptions{OnResponse: func(r *sip.Response) error {
			if r.IsProvisional() {
				provisional.Store(true)
			}
			return nil
		}})
	}()
	select {
	case err := <-answered:
		cancel(nil)
		return err
	case <-ctx.Done():
	}
	if provisional.Load() {
		cancel(ctx.Err()) // the stack sends CANCEL
	} else {
		cancel(sipgo.WaitAnswerForceCancelErr) // no CANCEL may be sent yet
	}
	go func() {
		if err := <-answered; err == nil {
			// Answered as we gave up: take the call and end it at once.
			actx, acancel := context.WithTimeout(context.Background(), 5*time.Second)
			if c.dlg.Ack(actx) == nil {
				_ = c.dlg.Bye(actx)
			}
			acancel()
		}
		c.closeAll()
	}()
	return fmt.Errorf("%w: %w", errGaveUp, ctx.Err())
}

// target is where requests in the dialog go: the node's Contact.
func (c *Call) target() sip.Uri {
	if h := c.dlg.InviteResponse.Contact(); h != nil {
		return h.Address
	}
	return c.dlg.InviteRequest.Recipient
}

// Refresh sends a re-INVITE with the call's offer, as a phone refreshing
// its session (RFC 4028) does, and acknowledges the answer. A final
// answer other than 2xx is a *StatusError; the call goes on either way.
func (c *Call) Refresh(ctx context.Context) error {
	_, err := c.reinvite(ctx, c.offer)
	return err
}

// Hold sends a re-INVITE that offers the call's stream in direction d
// (textsdp.SendOnly or Inactive to put the call on hold, SendRecv to
// resume it), acknowledges the answer, and returns the answer's text
// stream. Later refreshes offer d too. Hold and Refresh are not to be
// called at once.
func (c *Call) Hold(ctx context.Context, d textsdp.Direction) (textsdp.Media, error) {
	offer, err := textsdp.Offer(c.LocalRTP(), c.cfg.Format, 0, d, c.sdpID, c.version+1)
	if err != nil {
		return textsdp.Media{}, err
	}
	return c.renegotiate(ctx, offer)
}

// HoldByAddress puts the call on hold the way of RFC 2543: a re-INVITE
// that offers the stream in direction d at the address 0.0.0.0 (the
// side takes no text anywhere). Hold with the call's address resumes it.
func (c *Call) HoldByAddress(ctx context.Context, d textsdp.Direction) (textsdp.Media, error) {
	nowhere := netip.AddrPortFrom(netip.IPv4Unspecified(), c.LocalRTP().Port())
	offer, err := textsdp.Offer(nowhere, c.cfg.Format, 0, d, c.sdpID, c.version+1)
	if err != nil {
		return textsdp.Media{}, err
	}
	return c.renegotiate(ctx, offer)
}

// renegotiate sends a re-INVITE with offer and returns the answer's
// text stream. Later refreshes offer it too.
func (c *Call) renegotiate(ctx context.Context, offer []byte) (textsdp.Media, error) {
	res, err := c.reinvite(ctx, offer)
	if err != nil {
		return textsdp.Media{}, err
	}
	c.offer, c.version = offer, c.version+1
	answer, err := textsdp.Parse(res.Body())
	if err != nil {
		return textsdp.Media{}, fmt.Errorf("sipcall: the answer to the re-INVITE: %w", err)
	}
	return answer, nil
}

// reinvite sends a re-INVITE with the offer body and acknowledges a
// success; any other final answer is a *StatusError.
func (c *Call) reinvite(ctx context.Context, body []byte) (*sip.Response, error) {
	req := sip.NewRequest(sip.INVITE, c.target())
	req.AppendHeader(&c.contact)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(body)
	res, err := c.dlg.Do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("sipcall: re-INVITE: %w", err)
	}
	if !res.IsSuccess() {
		return nil, &StatusError{Code: res.StatusCode, Reason: res.Reason}
	}
	if err := c.dlg.WriteRequest(sip.NewRequest(sip.ACK, c.target())); err != nil {
		return nil, fmt.Errorf("sipcall: ACK of the re-INVITE: %w", err)
	}
	return res, nil
}

// keepAlive pings the node in the dialog and ends the call when a ping
// goes unanswered or the node no longer knows the call.
func (c *Call) keepAlive() {
	tick := time.NewTicker(c.cfg.KeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-c.ended:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(c.pingCtx, c.cfg.KeepAliveTimeout)
		res, err := c.dlg.Do(ctx, sip.NewRequest(sip.OPTIONS, c.target()))
		cancel()
		var why error
		switch {
		case err != nil:
			select {
			case <-c.ended:
				return // the call ended meanwhile, closing the sockets
			default:
			}
			why = fmt.Errorf("%w: no answer to OPTIONS within %v (%v)", ErrNoAnswer, c.cfg.KeepAliveTimeout, err)
		case res.StatusCode == 481 || res.StatusCode == 408:
			why = fmt.Errorf("%w: OPTIONS answered %d %s", ErrCallGone, res.StatusCode, res.Reason)
		default:
			// Any other answer shows the node is there and keeps the call
			// (RFC 3261 section 11: a UA need not support OPTIONS in a
			// dialog).
			c.pongs.Add(1)
			continue
		}
		// finish waits for this goroutine: end the call from another.
		go c.finish(why.Error(), why)
		return
	}
}

func randUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// Send queues text to send; it leaves in the next packet.
func (c *Call) Send(text string) {
	select {
	case c.out <- text:
	case <-c.ended:
	}
}

// SendRTP sends raw as one datagram from the call's RTP address to the
// node's, past the call's own encoder: for tests that play a broken or
// hostile phone (a flood, packets numbered anew, malformed payloads).
func (c *Call) SendRTP(raw []byte) error {
	_, err := c.pc.WriteToUDPAddrPort(raw, c.Answer.Addr)
	return err
}

// Text delivers the text received, packet by packet (U+FFFD for loss).
func (c *Call) Text() <-chan string { return c.text }

// Ended is closed when the call has ended: a BYE either way, Close, or
// the keepalive's verdict.
func (c *Call) Ended() <-chan struct{} { return c.ended }

// Reason says why the call ended, once Ended: the Reason header of the
// node's BYE ("BYE" when it had none), "hung up", "closed", or the
// keepalive's verdict (Err's text).
func (c *Call) Reason() string {
	c.endMu.Lock()
	defer c.endMu.Unlock()
	return c.reason
}

// Err is why the keepalive ended the call (ErrNoAnswer or ErrCallGone,
// wrapped), once Ended; nil when it ended by a BYE, Hangup or Close.
func (c *Call) Err() error {
	c.endMu.Lock()
	defer c.endMu.Unlock()
	return c.err
}

// Pongs counts the keepalive pings the node has answered.
func (c *Call) Pongs() int { return int(c.pongs.Load()) }

// LargestRTP is the size of the largest RTP datagram the call received.
func (c *Call) LargestRTP() int { return int(c.largest.Load()) }

// LocalRTP is the address the call receives RTP on.
func (c *Call) LocalRTP() netip.AddrPort { return c.pc.LocalAddr().(*net.UDPAddr).AddrPort() }

// Hangup sends BYE and ends the call (nothing if it has ended).
func (c *Call) Hangup(ctx context.Context) error {
	select {
	case <-c.ended:
		return nil // ended already: the node's BYE, or an earlier hangup
	default:
	}
	err := c.dlg.Bye(ctx)
	c.finish("hung up", nil)
	return err
}

// Close ends the call without a BYE (as a phone that lost power).
func (c *Call) Close() { c.finish("closed", nil) }

func (c *Call) finish(reason string, why error) {
	c.once.Do(func() {
		c.endMu.Lock()
		c.reason, c.err = reason, why
		c.endMu.Unlock()
		close(c.ended)
		c.stopPings()
		c.pinging.Wait()
		c.closeAll()
		c.wg.Wait()
	})
}

func (c *Call) closeAll() {
	if c.pc != nil {
		c.pc.Close()
	}
	if c.sipPC != nil {
		c.sipPC.Close()
	}
	if c.ua != nil {
		c.ua.Close()
	}
}

func (c *Call) receive() {
	defer c.wg.Done()
	dec := t140.NewDecoder(c.Answer.Format)
	// A node's packet may carry 1,000 bytes of text in each of three
	// generations: a smaller buffer cut them, and lost the text.
	buf := make([]byte, 1<<16)
	for {
		n, _, err := c.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if int64(n) > c.largest.Load() {
			c.largest.Store(int64(n))
		}
		var p rtp.Packet
		if p.Unmarshal(buf[:n]) != nil {
			continue
		}
		d, err := dec.Decode(&p)
		if err != nil || len(d.Text) == 0 {
			continue
		}
		select {
		case c.text <- string(d.Text):
		default: // a reader that does not keep up loses text, as on a line
		}
	}
}

func (c *Call) send() {
	defer c.wg.Done()
	enc := t140.NewEncoder(c.Answer.Format, randUint32(), uint16(randUint32()), 0)
	tick := time.NewTicker(c.cfg.Interval)
	defer tick.Stop()
	var buf strings.Builder
	i := 0
	start := time.Now()
	var last, lastText time.Time
	flush := func(now time.Time) {
		if buf.Len() == 0 && !enc.Pending() {
			return
		}
		hadText := buf.Len() > 0
		p, err := enc.Packet([]byte(buf.String()), uint32(now.Sub(start).Milliseconds()))
		buf.Reset()
		if err != nil {
			return
		}
		raw, _ := p.Marshal()
		if c.cfg.Drop == nil || !c.cfg.Drop(i) {
			_, _ = c.pc.WriteToUDPAddrPort(raw, c.Answer.Addr)
		}
		i++
		if hadText {
			lastText = now
		}
		last = now
	}
	for {
		select {
		case <-c.ended:
			return
		case t := <-c.out:
			buf.WriteString(t)
			if now := time.Now(); now.Sub(lastText) >= c.cfg.Interval {
				flush(now)
			}
		case now := <-tick.C:
			if now.Sub(last) >= c.cfg.Interval/2 {
				flush(now)
			}
		}
	}
}
