package bench

import (
	"bytes"
	"io"
	"regexp"
	"sync"
	"time"

	"github.com/switchboard/switchboard/directory"
)

// peerLog reads the nodes' logs as they write them and keeps, for each
// node, when its own log said a peer had each status (the lines
// "peer changed...": its entry said so, its bus connection closed, or it
// fell silent). Those times are the node's view of the directory, the
// one every hello at it reads, by the machine's one clock, without the
// wait of a client session that reads a push: the bench's own sessions
// share its process with thousands of others. It passes every byte on
// to next (nil: nowhere). Nodes must log text (serve's default) at
// level info or lower.
type peerLog struct {
	next io.Writer
	mu   sync.Mutex
	seen map[peerLogKey][]time.Time
}

type peerLogKey struct {
	node, peer string
	status     directory.Status
}

func newPeerLog(next io.Writer) *peerLog {
	return &peerLog{next: next, seen: map[peerLogKey][]time.Time{}}
}

// peerChanged matches a node's text log line about a peer's change.
var peerChanged = regexp.MustCompile(`^time=(\S+) level=\S+ msg="peer changed[^"]*" node=(\S+) peer=(\S+) .*\bto=(\S+)`)

// node returns the writer for one node's logs: it cuts them into lines,
// keeping a line's start until its end comes (a pipe's reader may get
// part of a line), notes them and passes each whole line on.
func (p *peerLog) node() io.Writer { return &peerLogLines{p: p} }

type peerLogLines struct {
	p    *peerLog
	tail []byte
}

func (w *peerLogLines) Write(b []byte) (int, error) {
	buf := append(w.tail, b...)
	end := bytes.LastIndexByte(buf, '\n') + 1
	w.tail = append([]byte(nil), buf[end:]...)
	if end > 0 {
		if _, err := w.p.Write(buf[:end]); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// Write notes the whole lines in b and passes b on.
func (p *peerLog) Write(b []byte) (int, error) {
	for line := range bytes.Lines(b) {
		m := peerChanged.FindSubmatch(bytes.TrimRight(line, "\r\n"))
		if m == nil {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, string(m[1]))
		if err != nil {
			continue
		}
		k := peerLogKey{node: string(m[2]), peer: string(m[3]), status: directory.Status(m[4])}
		p.mu.Lock()
		p.seen[k] = append(p.seen[k], at)
		p.mu.Unlock()
	}
	if p.next == nil {
		return len(b), nil
	}
	return p.next.Write(b)
}

// first is when node's log first said peer had status, at or after
// since.
func (p *peerLog) first(node, peer string, status directory.Status, since time.Time) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, at := range p.seen[peerLogKey{node, peer, status}] {
		if !at.Before(since) {
			return at, true
		}
	}
	return time.Time{}, false
}
