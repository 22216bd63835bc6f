package node

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/wire"
)

// encodedView is a view's directory message encoded once, less the ages,
// which change with every read: head is the message up to its node list,
// and each part is one node's JSON up to its age_ms value.
type encodedView struct {
	once  sync.Once
	head  []byte
	parts [][]byte
	err   error
}

// ageRoom is the most bytes a node's age and the rest of its JSON take
// after its encoded part: the age's digits (a non-negative int64), the
// closing brace and the comma before the next node.
const ageRoom = 19 + 1 + 1

// totalRoom is the most bytes the end of a view's message takes: the
// closing bracket, `,"total":` with its number, the closing brace.
const totalRoom = len(`],"total":`) + 19 + 1

// viewWant is what a client's hello asked of the directory: at most max
// nodes (0: as many as fit), chosen for a client in group.
type viewWant struct {
	max   int
	group string
}

// newRand is a random source for one view: views are drawn per client.
func newRand() *rand.Rand { return rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())) }

// encoded returns v's cached encoding, made on the first read.
func (v *view) encoded(service, self string) (*encodedView, error) {
	v.enc.once.Do(func() { v.enc.head, v.enc.parts, v.enc.err = encodeView(service, self, v) })
	return &v.enc, v.enc.err
}

// directoryLine returns the whole directory message as one encoded line
// with ages as of now, however long. Clients are sent viewLine instead.
func (v *view) directoryLine(service, self string, now time.Time) ([]byte, error) {
	enc, err := v.encoded(service, self)
	if err != nil {
		return nil, err
	}
	all := make([]int, len(v.nodes))
	for i := range all {
		all[i] = i
	}
	return v.assemble(enc, all, now), nil
}

// viewLine returns the directory message for a client that wants w, as
// one encoded line with ages as of now: the view directory.Sample draws
// with r, never longer than wire.MaxLine; whole says it holds every node. The JSON of the nodes is
// encoded once per snapshot, on the first read; every read then only
// draws the view and appends the ages.
func (v *view) viewLine(service, self string, now time.Time, w viewWant, r *rand.Rand) (line []byte, whole bool, err error) {
	enc, err := v.encoded(service, self)
	if err != nil {
		return nil, false, err
	}
	idx := directory.Sample(v.nodes, v.request(enc, w), r)
	return v.assemble(enc, idx, now), len(idx) == len(v.nodes), nil
}

// request is what a client that wants w may be sent of v: within a
// line, with each node's size as enc encodes it.
func (v *view) request(enc *encodedView, w viewWant) directory.ViewRequest {
	return directory.ViewRequest{
		Max:    w.max,
		Group:  w.group,
		Budget: wire.MaxLine - len(enc.head) - totalRoom,
		Size:   func(i int) int { return len(enc.parts[i]) + ageRoom },
	}
}

// assemble writes the message holding the nodes at idx, with "total"
// when they are not all.
func (v *view) assemble(enc *encodedView, idx []int, now time.Time) []byte {
	elapsed := now.Sub(v.taken).Milliseconds()
	size := len(enc.head) + totalRoom + 1
	for _, i := range idx {
		size += len(enc.parts[i]) + ageRoom
	}
	line := v.appendNodes(make([]byte, 0, size), enc, idx, elapsed)
	if len(idx) < len(v.nodes) {
		line = append(line, `,"total":`...)
		line = strconv.AppendInt(line, int64(len(v.nodes)), 10)
	}
	return append(line, "}\n"...)
}

// appendNodes appends the message's head and the nodes at idx, each aged
// by elapsed, up to the closing bracket of the node list.
func (v *view) appendNodes(line []byte, enc *encodedView, idx []int, elapsed int64) []byte {
	line = append(line, enc.head...)
	for j, i := range idx {
		if j > 0 {
			line = append(line, ',')
		}
		line = append(line, enc.parts[i]...)
		line = strconv.AppendInt(line, max(v.nodes[i].AgeMS+elapsed, 0), 10)
		line = append(line, '}')
	}
	return append(line, ']')
}

func encodeView(service, self string, v *view) (head []byte, parts [][]byte, err error) {
	empty, err := wire.Encode(wire.DirectoryMessage(&wire.Directory{Service: service, Self: self}))
	if err != nil {
		return nil, nil, err
	}
	const emptyTail = `"nodes":[]}` + "\n"
	if !bytes.HasSuffix(empty, []byte(emptyTail)) {
		return nil, nil, fmt.Errorf("node: unexpected directory encoding %q", empty)
	}
	head = append(empty[:len(empty)-len(emptyTail)], `"nodes":[`...)
	if v.parts != nil {
		if parts, err = v.parts.encode(v.nodes); err != nil {
			return nil, nil, err
		}
		return head, parts, nil
	}
	parts = make([][]byte, len(v.nodes))
	for i, n := range v.nodes {
		if parts[i], err = encodePart(n); err != nil {
			return nil, nil, err
		}
	}
	return head, parts, nil
}

// encodePart encodes n up to its age_ms value, whatever its age.
func encodePart(n directory.Node) ([]byte, error) {
	n.AgeMS = 0
	b, err := wire.AppendJSON(nil, n)
	if err != nil {
		return nil, fmt.Errorf("node: encoding directory entry %s: %w", n.ID, err)
	}
	const ageTail = `"age_ms":0}`
	if !bytes.HasSuffix(b, []byte(ageTail)) {
		return nil, fmt.Errorf("node: directory entry %s does not end with age_ms: %q", n.ID, b)
	}
	return b[:len(b)-len("0}")], nil
}

// partCache holds the encoded part of each node of the last view
// encoded, so that the next view encodes only the entries that changed:
// a view is rebuilt whenever one peer comes, goes or changes status, and
// at 100 nodes encoding all of them again was most of a push of changes.
// Parts are never written after they are made, so views share them. It
// is safe for concurrent use.
type partCache struct {
	mu    sync.Mutex
	parts map[string]cachedPart
	calls uint64
}

// cachedPart is one node's entry, its age zeroed, and its encoded part;
// seen is the call of encode that last listed the node.
type cachedPart struct {
	node directory.Node
	part []byte
	seen uint64
}

// encode returns the parts of nodes, reusing those of entries unchanged
// since the last call, and keeps these for the next one; entries of nodes
// no longer listed are dropped.
func (c *partCache) encode(nodes []directory.Node) ([][]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.parts == nil {
		c.parts = make(map[string]cachedPart, len(nodes))
	}
	c.calls++
	parts := make([][]byte, len(nodes))
	for i, n := range nodes {
		n.AgeMS = 0
		cp, ok := c.parts[n.ID]
		if !ok || cp.node != n {
			part, err := encodePart(n)
			if err != nil {
				return nil, err
			}
			cp = cachedPart{node: n, part: part}
		}
		cp.seen = c.calls
		c.parts[n.ID] = cp
		parts[i] = cp.part
	}
	if len(c.parts) > len(nodes) {
		for id, cp := range c.parts {
			if cp.seen != c.calls {
				delete(c.parts, id)
			}
		}
	}
	return parts, nil
}

// helloViewRead, when tests set it, runs in sayDirectory between reading
// the view and queueing the answer: where a push may come in between.
var helloViewRead atomic.Pointer[func()]

// helloTries is how many times at most a hello is answered again
// because a push went out while it was answered (sayDirectory).
const helloTries = 3

// sayDirectory answers a hello m: it keeps what m asked of the directory
// for later pushes and sends the view drawn for it. Only the session's
// reader calls it.
//
// A push may go out between the read of the view and the queueing of
// the answer (pushDirectory runs on run's goroutine): it then reaches
// the client first, from a newer view, and the answer after it would
// take the client back to the older one, while the node counts the
// session as holding the push's (a client asking for deltas would then
// be sent only later changes, on top of the wrong directory). So when
// the push generation moved while it answered, the hello answers again
// from the view of now; a push that begins after the check is queued
// after the answer. A push already under way when the generation was
// read sends a view no newer than the answer's, which the next push's
// changes bring up to date.
func (s *session) sayDirectory(m wire.Message) {
	n := s.n
	w := viewWant{max: max(m.Max, 0), group: m.Group}
	s.want.Store(&w)
	s.deltas.Store(m.Deltas)
	for try := 1; ; try++ {
		// The generation is read before the view: a push racing this
		// hello then at worst sends a whole view where changes would
		// have done.
		gen := n.pushGen.Load()
		s.dirGen.Store(gen)
		v := n.view.Load()
		if f := helloViewRead.Load(); f != nil {
			(*f)()
		}
		line, _, err := v.viewLine(n.cfg.Service, n.cfg.ID, time.Now(), w, newRand())
		if err != nil {
			n.log.Error("encoding the directory", "err", err)
			s.reply(wire.DirectoryMessage(&wire.Directory{Service: n.cfg.Service, Self: n.cfg.ID}))
			return
		}
		s.write(line)
		if n.pushGen.Load() == gen {
			return
		}
		if try == helloTries {
			// Pushes kept coming (a writer blocked longer than the push
			// delay each time): whichever came last, the next push sends
			// this session a whole view.
			s.dirGen.Store(^uint64(0))
			return
		}
	}
}

// viewDirectory is the view drawn for s as a directory to put in a
// message of reserve bytes without it (a refusal, a move): it fits
// wire.MaxLine with them.
func (s *session) viewDirectory(reserve int) *wire.Directory {
	n := s.n
	w := viewWant{}
	if p := s.want.Load(); p != nil {
		w = *p
	}
	nodes := n.Nodes()
	envelope := len(`"directory":{"service":"","self":"","nodes":[],"total":}`) + 19 +
		6*(len(n.cfg.Service)+len(n.cfg.ID)) // escaped at worst
	idx := directory.Sample(nodes, directory.ViewRequest{Max: w.max, Group: w.group, Budget: wire.MaxLine - reserve - envelope}, newRand())
	d := &wire.Directory{Service: n.cfg.Service, Self: n.cfg.ID, Nodes: make([]directory.Node, len(idx))}
	for j, i := range idx {
		d.Nodes[j] = nodes[i]
	}
	if len(idx) < len(nodes) {
		d.Total = len(nodes)
	}
	return d
}

// refusal is an error answering an attach with code and text, and the
// client's view of the directory, within one line.
func (s *session) refusal(code, text string) wire.Message {
	m := wire.Message{Op: wire.OpError, Code: code, Message: text}
	if !s.allowView() {
		// Attaches refused faster than ViewRate: the client picks again
		// from the directory it holds.
		return m
	}
	reserve := 256
	if b, err := wire.Encode(m); err == nil {
		reserve = len(b) + 1 // and the comma before "directory"
	}
	m.Dir = s.viewDirectory(reserve)
	return m
}

// pushVariants is how many views a push draws for the sessions that want
// the same view of a directory too large to send whole: each session
// gets one of them, so that a push costs a bounded number of draws however
// many sessions a node holds, and the sessions still see different nodes.
const pushVariants = 8

// pushLines hands out the lines of one push: the whole directory to
// sessions that can take it whole, else one of pushVariants views chosen
// for what the session wants. The views are chosen from at most
// pushVariants draws of the nodes' order per group key (directory.Draw),
// shared by every max and every group that picks out the same nodes: a
// draw costs a random number per node and a sort (about a millisecond at
// 2,000 nodes, on the run loop), and sessions asking each for a max or a
// made-up group of their own must not cost one each. Only
// pushDirectory's goroutine uses it.
type pushLines struct {
	v       *view
	service string
	self    string
	now     time.Time
	r       *rand.Rand
	groups  *directory.Groups // of v's nodes, made on first use
	draws   map[directory.GroupKey][]*directory.Draw
	drawn   map[pushWant]*pushDraws
}

// pushWant is a viewWant as far as it decides the view: its max (0 for
// any at or past the directory's size) and its group's key.
type pushWant struct {
	max   int
	group directory.GroupKey
}

type pushDraws struct {
	whole  bool     // lines[0] is the whole directory, for everyone
	lines  [][]byte // the views chosen so far
	handed int      // how many sessions were handed one
}

func newPushLines(v *view, service, self string, now time.Time) *pushLines {
	return &pushLines{v: v, service: service, self: self, now: now, r: newRand(),
		draws: make(map[directory.GroupKey][]*directory.Draw), drawn: make(map[pushWant]*pushDraws)}
}

// line returns the line for a session that wants w.
func (p *pushLines) line(w viewWant) ([]byte, error) {
	if p.groups == nil {
		g := directory.NewGroups(p.v.nodes)
		p.groups = &g
	}
	if w.max >= len(p.v.nodes) {
		w.max = 0
	}
	key := pushWant{max: w.max, group: p.groups.Key(w.group)}
	d := p.drawn[key]
	if d == nil {
		d = &pushDraws{}
		p.drawn[key] = d
	}
	k := d.handed
	d.handed++
	if d.whole || len(d.lines) == pushVariants {
		return d.lines[k%len(d.lines)], nil
	}
	enc, err := p.v.encoded(p.service, p.self)
	if err != nil {
		return nil, err
	}
	req := p.v.request(enc, w)
	idx, all := directory.Whole(p.v.nodes, req)
	if !all {
		// The len(d.lines)-th draw of the group's key: a want's views
		// come from distinct draws, as many as it has sessions up to
		// pushVariants.
		draws := p.draws[key.group]
		if len(draws) == len(d.lines) {
			draws = append(draws, directory.NewDraw(p.v.nodes, w.group, p.r))
			p.draws[key.group] = draws
		}
		idx = draws[len(d.lines)].Choose(req)
	}
	line := p.v.assemble(enc, idx, p.now)
	d.whole = len(idx) == len(p.v.nodes)
	d.lines = append(d.lines, line)
	return line, nil
}

// deltaMax is the most nodes a push of changes carries: past it (a whole
// cluster restarting, say), the sessions get views instead, which are no
// bigger. Fewer can still pass a line when their entries are long (64
// with fields of directory.DefaultLimits' 300 bytes take about 100 KiB):
// deltaLine then gives none either.
const deltaMax = 64

// deltaLine returns the directory message that carries the changes of
// the nodes in changed: the entries of those v lists, as they are now,
// and the IDs of those it no longer lists under "gone", with "total" the
// size of the whole directory. It returns nil when changed is empty,
// holds more than deltaMax nodes, or would make a line past wire.MaxLine,
// which a client refuses and closes its session for: the sessions are
// sent views then, which Sample keeps within a line.
func (v *view) deltaLine(service, self string, now time.Time, changed map[string]struct{}) ([]byte, error) {
	if len(changed) == 0 || len(changed) > deltaMax {
		return nil, nil
	}
	enc, err := v.encoded(service, self)
	if err != nil {
		return nil, err
	}
	var idx []int
	var gone []string
	for id := range changed {
		i, ok := slices.BinarySearchFunc(v.nodes, id, func(n directory.Node, id string) int { return strings.Compare(n.ID, id) })
		if ok {
			idx = append(idx, i)
		} else {
			gone = append(gone, id)
		}
	}
	slices.Sort(idx)
	slices.Sort(gone)
	line := v.appendNodes(nil, enc, idx, now.Sub(v.taken).Milliseconds())
	line = append(line, `,"total":`...)
	line = strconv.AppendInt(line, int64(len(v.nodes)), 10)
	line = append(line, `,"delta":true`...)
	if len(gone) > 0 {
		ids, err := wire.AppendJSON(nil, gone)
		if err != nil {
			return nil, err
		}
		line = append(line, `,"gone":`...)
		line = append(line, ids...)
	}
	if len(line)+len("}") > wire.MaxLine {
		return nil, nil
	}
	return append(line, "}\n"...), nil
}
