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
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/switchboard/switchboard/internal/t140"
	"github.com/switchboard/switchboard/internal/textsdp"
)

// StatusError is a final SIP response other than 2xx (and 3xx once
// followed).
type StatusError struct {
	Code   int
	Reason string
	// Contact is the Contact of a redirect not followed.
	Contact string
}

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
}

// Call is a call in progress.
type Call struct {
	cfg    Config
	ua     *sipgo.UserAgent
	dlg    *sipgo.DialogClientSession
	pc     *net.UDPConn
	sipPC  net.PacketConn
	Answer textsdp.Media

	text   chan string
	out    chan string
	ended  chan struct{}
	endMu  sync.Mutex
	reason string
	once   sync.Once
	wg     sync.WaitGroup
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
	c := &Call{cfg: cfg, text: make(chan string, 1024), out: make(chan string, 1024), ended: make(chan struct{})}
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
	if c.ua, err = sipgo.NewUA(sipgo.WithUserAgent("switchboard-sipcall"), sipgo.WithUserAgentHostname(cfg.Host)); err != nil {
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
		c.finish(reason)
	})
	go func() { _ = srv.ServeUDP(c.sipPC) }()

	local := c.pc.LocalAddr().(*net.UDPAddr).AddrPort()
	offer, err := textsdp.Offer(local, cfg.Format, 0, uint64(randUint32()))
	if err != nil {
		return nil, err
	}
	if uri.Port == 0 {
		uri.Port = 5060
	}
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: cfg.User, Host: cfg.Host}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	dlg, err := dialogs.Invite(ctx, uri, offer, from, sip.NewHeader("Content-Type", "application/sdp"))
	if err != nil {
		return nil, fmt.Errorf("sipcall: INVITE: %w", err)
	}
	c.dlg = dlg
	if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
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
	return c, nil
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

// Text delivers the text received, packet by packet (U+FFFD for loss).
func (c *Call) Text() <-chan string { return c.text }

// Ended is closed when the call has ended (a BYE either way).
func (c *Call) Ended() <-chan struct{} { return c.ended }

// Reason is the Reason header of the node's BYE, once Ended.
func (c *Call) Reason() string {
	c.endMu.Lock()
	defer c.endMu.Unlock()
	return c.reason
}

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
	c.finish("hung up")
	return err
}

// Close ends the call without a BYE (as a phone that lost power).
func (c *Call) Close() { c.finish("closed") }

func (c *Call) finish(reason string) {
	c.once.Do(func() {
		c.endMu.Lock()
		c.reason = reason
		c.endMu.Unlock()
		close(c.ended)
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
	buf := make([]byte, 2048)
	for {
		n, _, err := c.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
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
