package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/switchboard/switchboard/wire"
)

// ErrNodeSilent is the cause of a drop (Event.Err of Disconnected) when
// the node sent nothing for the heartbeat's timeout and did not answer a
// ping on a second connection either: it vanished without closing the
// connection (a paused process, a partition, a host without power).
var ErrNodeSilent = errors.New("client: node silent")

// readLoop reads messages from c until the connection fails or the
// session closes, and runs the heartbeat (see Heartbeat): a ping after
// Interval of silence, a second opinion after Timeout-Interval, and the
// verdict after Timeout. Silence is counted while the loop waits for the
// node, not while it hands a message to the Events reader. It sets the
// connection's TCP_USER_TIMEOUT first (userTimeout).
func (s *Session) readLoop(c *Conn, w *writer) error {
	hb := s.opts.heartbeat
	maxBusy := hb.maxBusy()
	heard := time.Now()
	lastMsg := heard // heard, but never moved on by a busy pause
	pinged := false
	busy := 0 // verdicts in a row that found the node busy
	// The second opinion runs on a goroutine of its own, which ends once
	// its dial and ping do: it is cancelled and never waited for beyond
	// the verdict's grace (probeVerdict), as a dialer may ignore its
	// context and hold it for as long as the kernel tries to connect.
	var probe chan error
	var stopProbe context.CancelFunc
	endProbe := func() {
		if probe != nil {
			stopProbe()
			probe, stopProbe = nil, nil
		}
	}
	defer endProbe()
	if d := hb.userTimeout(); d > 0 {
		if err := c.setUserTimeout(d); err != nil {
			s.opts.logger.Debug("the kernel will not end a lost flow early", "addr", c.Addr(), "err", err)
		}
	}
	s.mu.Lock()
	early := s.earlyMove
	s.earlyMove = nil
	// The second opinion goes to the node's own address, not to the
	// one c was dialled to: that may be the common address, which a TCP
	// load balancer would hand to another node, and that node's answer
	// would keep a paused one as busy.
	probeAddr := cmpOr(s.node.Addr, c.Addr())
	s.mu.Unlock()
	if early != nil && !s.handle(w, *early) {
		if mv := s.takeMove(); mv != nil {
			return mv
		}
		return s.ctx.Err()
	}
	for {
		var wake time.Time
		if hb.Interval > 0 {
			switch {
			case !pinged:
				wake = heard.Add(hb.Interval)
			case probe == nil:
				wake = heard.Add(hb.Timeout - hb.Interval)
			default:
				wake = heard.Add(hb.Timeout)
			}
		}
		m, err := c.recvBefore(wake)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || s.ctx.Err() != nil || hb.Interval == 0 {
				return err
			}
			switch {
			case !pinged:
				pinged = true
				w.send(wire.Message{Op: wire.OpPing})
			case probe == nil:
				ctx, cancel := context.WithDeadline(s.ctx, heard.Add(hb.Timeout))
				probe, stopProbe = make(chan error, 1), cancel
				go func(ch chan<- error) { ch <- s.probe(ctx, probeAddr) }(probe)
			default:
				perr := probeVerdict(probe, hb.Interval)
				stopProbe()
				probe, stopProbe = nil, nil
				if perr != nil {
					return fmt.Errorf("client: %s sent nothing for %v and did not answer a ping on a second connection (%w): %w", c.Addr(), hb.Timeout, perr, ErrNodeSilent)
				}
				// Alive, but this session's line is stuck behind
				// something slow on the node: wait again, longer each
				// time (see busyPause), for at most MaxBusy.
				if silent := time.Since(lastMsg); silent >= maxBusy {
					return fmt.Errorf("client: %s answered a second connection but sent this session nothing for %v: %w", c.Addr(), silent.Round(time.Millisecond), ErrNodeSilent)
				}
				busy++
				s.opts.logger.Debug("node busy but alive", "addr", c.Addr(), "silent", time.Since(heard))
				heard, pinged = time.Now().Add(busyPause(hb, busy)), false
			}
			continue
		}
		endProbe()
		pinged, busy = false, 0
		if !s.handle(w, m) {
			if mv := s.takeMove(); mv != nil {
				return mv
			}
			return s.ctx.Err()
		}
		heard = time.Now()
		lastMsg = heard
	}
}

// probeVerdict is the second opinion's result at the verdict, which
// comes as its deadline passes: what it sent, or, if it has sent nothing
// within grace after that (a dialer that ignores its context), an error.
func probeVerdict(probe <-chan error, grace time.Duration) error {
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-probe:
		return err
	case <-t.C:
		return fmt.Errorf("the second connection did not end by its deadline: %w", context.DeadlineExceeded)
	}
}

// probe opens a second connection to addr and waits for the answer to a
// ping sent before any hello: the node's other goroutines are alive even
// when the session's line waits behind a slow request. Any message counts
// as an answer: a node too busy to take one more connection says so
// (too_many_connections) and is alive all the same.
func (s *Session) probe(ctx context.Context, addr string) error {
	c, err := DialConnTLS(ctx, s.opts.dialer, addr, s.tls)
	if err != nil {
		return err
	}
	defer c.Close()
	// A node that refuses the connection writes its error and closes at
	// once, and the ping may then fail: what it wrote is read all the same.
	serr := c.Send(wire.Message{Op: wire.OpPing})
	if _, err := c.Recv(ctx); err != nil {
		return fmt.Errorf("client: a second connection to %s: %w", addr, errors.Join(serr, err))
	}
	return nil
}

// userTimeoutTimeouts is the session connection's TCP_USER_TIMEOUT, in
// heartbeat Timeouts: 15 s by default, a node's default store timeout.
const userTimeoutTimeouts = 10

// userTimeout is the TCP_USER_TIMEOUT of a session's connection under
// the heartbeat h: userTimeoutTimeouts Timeouts, at most MaxBusy (the
// heartbeat leaves a node then anyway); 0, none, when h is off.
//
// A flow that was lost (a NAT that forgot it, the client's address
// changed) passes the second opinion, which goes on a new flow, and
// would otherwise be taken for a busy node until MaxBusy. The kernel
// ends it once the pings the session sent go unacknowledged that long. A
// paused or busy node's kernel acknowledges what arrives, so it is not
// ended for that; it is only when such a node has left the session's
// line unread until its receive buffer is full (a paste of 100 KiB or
// more into a node stalled for longer than its store timeout, say) that
// the kernel ends the connection once its window has stayed closed that
// long, and the session fails over as from a node gone.
func (h Heartbeat) userTimeout() time.Duration {
	if h.Interval <= 0 {
		return 0
	}
	return min(userTimeoutTimeouts*h.Timeout, h.maxBusy())
}

// maxBusyPause bounds the extra wait before asking a busy node again.
const maxBusyPause = 15 * time.Second

// busyPause is the extra wait before the heartbeat starts again on a node
// found busy busy times in a row: none the first time, then Timeout, 3
// Timeouts, 7..., up to maxBusyPause. A storage stall under thousands of
// sessions, each with a request waiting, then costs the node a second
// connection from each of them at growing intervals rather than every
// Timeout; a node that vanishes during such a stall is noticed later.
func busyPause(hb Heartbeat, busy int) time.Duration {
	if busy <= 1 {
		return 0
	}
	return min(hb.Timeout*time.Duration(1<<min(busy-1, 10)-1), maxBusyPause)
}
