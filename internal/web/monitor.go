package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/forwarded"
	"github.com/switchboard/switchboard/internal/proxyproto"
	"github.com/switchboard/switchboard/wire"
)

// Defaults of the dashboard's monitor.
const (
	// DefaultWindow is how far back the users chart reaches.
	DefaultWindow = 10 * time.Minute
	// DefaultSampleEvery is the time between two points of the chart.
	DefaultSampleEvery = 5 * time.Second
	// MaxEvents is how many recent events the monitor keeps.
	MaxEvents = 100
	// pollEvery is how often the monitor reads the directory while a
	// dashboard watches, or always when its Source is no Notifier: a
	// node's change reaches the dashboards within this (plus the
	// directory's own detection).
	pollEvery = 200 * time.Millisecond
	// refreshEvery is how often an update goes out when nothing changed,
	// so that ages move.
	refreshEvery = time.Second
	// MaxStreams bounds the dashboards' streams (GET /v1/events) a
	// Monitor serves at once; one past it is answered 503. A stream
	// holds its HTTP connection for as long as the page stays open, and
	// costs the directory in JSON every second: unbounded, streams
	// opened by anyone could hold every connection the node's HTTP
	// listener allows, each one busy so none made room, and the health
	// checks, metrics and drain with them.
	MaxStreams = 32
	// MaxStreamsPerSource bounds the streams one source address holds
	// at once (an IPv6 address counted by its /64, the client behind a
	// trusted proxy by its own address); one past it is answered 429.
	// Without it, one address took all MaxStreams and every other
	// dashboard was refused. Requests from the node's own host that no
	// trusted proxy forwarded count towards MaxStreams only: a reverse
	// proxy beside the node carries many users.
	MaxStreamsPerSource = 4
)

var (
	// errStreamsFull is subscribe's answer when MaxStreams streams are
	// open.
	errStreamsFull = errors.New("web: the dashboard's streams are all taken")
	// errSourceStreamsFull is subscribe's answer when the source holds
	// MaxStreamsPerSource streams.
	errSourceStreamsFull = errors.New("web: this address holds the dashboard streams it may")
)

// Event is something that happened to a node, as the dashboard lists it.
type Event struct {
	// At is when the monitor saw it, in Unix milliseconds.
	At int64 `json:"at"`
	// Node is the node's ID.
	Node string `json:"node"`
	// What is "joined", "left", or the new status ("down", "up",
	// "draining", ...).
	What string `json:"what"`
	// From is the status before ("" for a node that joined).
	From string `json:"from,omitempty"`
}

// Sample is one point of the users chart: each node's users at one time.
type Sample struct {
	// At is the time in Unix milliseconds.
	At int64 `json:"at"`
	// Users maps node IDs to their users; nodes that were down are left
	// out.
	Users map[string]int `json:"users"`
}

// History is the pure part of the dashboard's monitor: given directories
// and the time they were taken, it keeps the samples of the last window
// and the recent events. It reads no clock and is not safe for
// concurrent use.
type History struct {
	window, every time.Duration
	status        map[string]directory.Status // the last status of each node
	seen          bool                        // a directory was observed
	samples       []Sample
	events        []Event
	lastSample    time.Time
	// taken and noticed count the samples and events since the start:
	// samples and events are the last of them.
	taken, noticed int
}

// NewHistory returns a History that keeps window of samples taken every
// interval (DefaultWindow and DefaultSampleEvery for zero values).
func NewHistory(window, every time.Duration) *History {
	if window <= 0 {
		window = DefaultWindow
	}
	if every <= 0 {
		every = DefaultSampleEvery
	}
	return &History{window: window, every: every, status: map[string]directory.Status{}}
}

// Observe takes a directory seen at now. It returns the events it
// noticed (nodes that joined, left or changed status) and the sample it
// took, if one was due (nil otherwise). The first directory observed
// gives no events: it is where the story starts.
func (h *History) Observe(nodes []directory.Node, now time.Time) ([]Event, *Sample) {
	at := now.UnixMilli()
	var evs []Event
	current := make(map[string]directory.Status, len(nodes))
	for _, n := range nodes {
		current[n.ID] = n.Status
		old, ok := h.status[n.ID]
		switch {
		case !h.seen:
		case !ok:
			evs = append(evs, Event{At: at, Node: n.ID, What: "joined", From: ""})
			if n.Status != directory.Up {
				evs[len(evs)-1].What = "joined " + string(n.Status)
			}
		case old != n.Status:
			evs = append(evs, Event{At: at, Node: n.ID, What: string(n.Status), From: string(old)})
		}
	}
	if h.seen {
		for id, old := range h.status {
			if _, ok := current[id]; !ok {
				evs = append(evs, Event{At: at, Node: id, What: "left", From: string(old)})
			}
		}
	}
	h.seen = true
	h.status = current
	h.events = append(h.events, evs...)
	h.noticed += len(evs)
	if over := len(h.events) - MaxEvents; over > 0 {
		h.events = append(h.events[:0], h.events[over:]...)
	}
	if !h.lastSample.IsZero() && now.Sub(h.lastSample) < h.every && len(evs) == 0 {
		return evs, nil
	}
	h.lastSample = now
	s := Sample{At: at, Users: make(map[string]int, len(nodes))}
	for _, n := range nodes {
		if n.Status != directory.Down {
			s.Users[n.ID] = n.Users
		}
	}
	h.samples = append(h.samples, s)
	h.taken++
	cut := 0
	for cut < len(h.samples) && now.Sub(time.UnixMilli(h.samples[cut].At)) > h.window {
		cut++
	}
	if cut > 0 {
		h.samples = append(h.samples[:0], h.samples[cut:]...)
	}
	return evs, &s
}

// NextSample is when the next sample of the chart is due: the zero time
// before the first directory is observed.
func (h *History) NextSample() time.Time {
	if h.lastSample.IsZero() {
		return time.Time{}
	}
	return h.lastSample.Add(h.every)
}

// Samples returns a copy of the samples kept, oldest first.
func (h *History) Samples() []Sample { return append([]Sample(nil), h.samples...) }

// Events returns a copy of the events kept, oldest first.
func (h *History) Events() []Event { return append([]Event(nil), h.events...) }

// since returns a copy of what kept holds of the items after the first n:
// kept holds the last of total items.
func since[T any](kept []T, total, n int) []T {
	k := min(total-n, len(kept))
	if k <= 0 {
		return nil
	}
	return append([]T(nil), kept[len(kept)-k:]...)
}

// Update is what the dashboard receives: the directory now, and what
// happened since the last update the stream got. The first update of a
// stream carries the whole history instead.
type Update struct {
	// Directory is the directory message a hello would get now.
	Directory wire.Message `json:"directory"`
	// Events are the events since the last update the stream got,
	// oldest first (in a stream's first update: every event kept).
	Events []Event `json:"events,omitempty"`
	// Samples are the chart's new points since then (in a stream's first
	// update: every point kept).
	Samples []Sample `json:"samples,omitempty"`
	// Window is the chart's span in milliseconds.
	Window int64 `json:"window_ms"`
}

// Notifier is a Source that says when its directory's membership or a
// node's status changed. A Monitor over a Notifier reads the directory
// on each such change and when a sample of the chart is due, and polls
// it only while a dashboard watches; an idle node then wakes for it a few
// times a minute instead of five times a second.
type Notifier interface {
	// DirectoryChanges returns a channel that receives after each
	// change of membership or status, once the directory shows it.
	// Sends do not block: changes close together may arrive as one.
	DirectoryChanges() <-chan struct{}
}

// Monitor watches the node's directory for the dashboard and pushes
// updates to its subscribers (GET /v1/events, Server-Sent Events). Run
// drives it; the handlers only subscribe.
type Monitor struct {
	src    Source
	poll   time.Duration
	wake   chan struct{} // a dashboard subscribed: poll from now on
	mu     sync.Mutex    // guards the fields below
	hist   *History
	subs   map[chan Update]*stream
	perSrc map[string]int // open streams by source
	done   bool
	window time.Duration
}

// stream is a dashboard's subscription to a Monitor, guarded by its mu.
type stream struct {
	source string // what it counts under for MaxStreamsPerSource ("": not counted)
	// behind: an update was dropped, the stream's buffer full. The next
	// one that goes out carries every event and sample since the last it
	// got (the dashboard adds each update's to what it shows, so an
	// update dropped was lost for good): events and samples count those
	// of the history it got.
	behind          bool
	events, samples int
}

// NewMonitor returns a Monitor over src with the default window and
// sampling interval.
func NewMonitor(src Source) *Monitor {
	return &Monitor{src: src, poll: pollEvery, wake: make(chan struct{}, 1), hist: NewHistory(0, 0), subs: map[chan Update]*stream{}, perSrc: map[string]int{}, window: DefaultWindow}
}

// Run reads the directory until ctx ends and pushes an update to the
// subscribers when a node changed or a second passed. It reads it every
// 200 ms while a dashboard watches (always, for a Source that is no
// Notifier); otherwise on each change the Source notifies and when the
// chart's next sample is due. It blocks; when it returns, every
// subscription has ended.
func (m *Monitor) Run(ctx context.Context) {
	var changes <-chan struct{}
	if nt, ok := m.src.(Notifier); ok {
		changes = nt.DirectoryChanges()
	}
	t := time.NewTimer(0) // the first reading at once
	defer t.Stop()
	defer func() {
		m.mu.Lock()
		m.done = true
		for ch := range m.subs {
			close(ch)
			delete(m.subs, ch)
		}
		clear(m.perSrc)
		m.mu.Unlock()
	}()
	var lastKey string
	var lastPush time.Time
	observe := func(now time.Time) {
		dir := m.src.Directory()
		m.mu.Lock()
		defer m.mu.Unlock()
		evs, sample := m.hist.Observe(dir.Nodes, now)
		if len(m.subs) == 0 {
			lastKey = "" // nobody to tell; the next subscriber gets the history
			return
		}
		key := viewKey(dir.Nodes)
		if key == lastKey && len(evs) == 0 && sample == nil && now.Sub(lastPush) < refreshEvery {
			return
		}
		lastKey, lastPush = key, now
		u := Update{Directory: wire.DirectoryMessage(dir), Events: evs, Window: m.window.Milliseconds()}
		if sample != nil {
			u.Samples = []Sample{*sample}
		}
		for ch, st := range m.subs {
			v := u
			if st.behind {
				v.Events = since(m.hist.events, m.hist.noticed, st.events)
				v.Samples = since(m.hist.samples, m.hist.taken, st.samples)
			}
			select {
			case ch <- v:
				st.behind, st.events, st.samples = false, m.hist.noticed, m.hist.taken
			default: // a slow dashboard skips an update; the next one it gets catches up
				st.behind = true
			}
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		case <-changes:
			observe(time.Now())
		case now := <-t.C:
			observe(now)
		}
		t.Reset(m.untilNext(changes != nil, time.Now()))
	}
}

// untilNext is how long Run waits before it reads the directory again
// unless a change comes first: the poll interval while a dashboard
// watches or when changes are not notified, else until the chart's next
// sample.
func (m *Monitor) untilNext(notified bool, now time.Time) time.Duration {
	m.mu.Lock()
	watched, due := len(m.subs) > 0, m.hist.NextSample()
	m.mu.Unlock()
	if watched || !notified || due.IsZero() {
		return m.poll
	}
	return max(due.Sub(now), 0)
}

// viewKey is what the dashboard shows of the nodes, ages aside.
func viewKey(nodes []directory.Node) string {
	b := make([]byte, 0, 32*len(nodes))
	for _, n := range nodes {
		b = fmt.Appendf(b, "%s|%s|%d|%d|%s;", n.ID, n.Status, n.Users, n.Capacity, n.Group)
	}
	return string(b)
}

// subscribe returns the first update (the whole history) and a channel
// of the next ones for a stream to source ("": not counted per source);
// net.ErrClosed when the monitor has stopped, errStreamsFull when
// MaxStreams streams are open, errSourceStreamsFull when source holds
// MaxStreamsPerSource.
func (m *Monitor) subscribe(source string) (first Update, ch chan Update, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.done:
		return Update{}, nil, net.ErrClosed
	case len(m.subs) >= MaxStreams:
		return Update{}, nil, errStreamsFull
	case source != "" && m.perSrc[source] >= MaxStreamsPerSource:
		return Update{}, nil, errSourceStreamsFull
	}
	ch = make(chan Update, 8)
	m.subs[ch] = &stream{source: source, events: m.hist.noticed, samples: m.hist.taken}
	if source != "" {
		m.perSrc[source]++
	}
	select {
	case m.wake <- struct{}{}:
	default:
	}
	first = Update{Directory: wire.DirectoryMessage(m.src.Directory()), Events: m.hist.Events(), Samples: m.hist.Samples(), Window: m.window.Milliseconds()}
	return first, ch, nil
}

func (m *Monitor) unsubscribe(ch chan Update) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st, ok := m.subs[ch]; ok {
		delete(m.subs, ch)
		close(ch)
		if source := st.source; source != "" {
			if m.perSrc[source]--; m.perSrc[source] <= 0 {
				delete(m.perSrc, source)
			}
		}
	}
}

// WithMonitor serves the dashboard's stream at GET /v1/events from m:
// Server-Sent Events, each an Update as JSON. The caller runs m.
func WithMonitor(m *Monitor) Option {
	return func(h *handler) { h.monitor = m }
}

// streamSource is what MaxStreamsPerSource counts the request r under:
// its client's address (behind a trusted proxy, the client it forwards),
// an IPv6 one by its /64; "" (not counted) for a request from the node's
// own host that no trusted proxy forwarded (by the connection's own
// addresses, not a PROXY protocol header's), and when the address does
// not parse.
func (h *handler) streamSource(r *http.Request) string {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	client := peer.Addr().Unmap()
	if len(h.proxies) > 0 {
		client = h.proxies.Client(client, r.Header.Values("X-Forwarded-For")).Unmap()
	}
	if client == peer.Addr().Unmap() && forwarded.OwnHost(localAddr(r), client) {
		return ""
	}
	return forwarded.SourceKey(client)
}

// viaProxyHeader reports whether r came through a PROXY protocol
// balancer that relayed a client, named or not (anything but the
// balancer's own connection, version 2 LOCAL): its addresses are then
// the header's, the balancer's word, and not the connection's own (a
// header may name 127.0.0.1, or the same address as source and
// destination, and a client not named may be anywhere), so neither the
// loopback rule for admin actions nor the node's own host's exemption
// from the per-address limits applies.
func viaProxyHeader(r *http.Request) bool {
	return proxyproto.FromHeader(localAddr(r))
}

// localAddr is the local address of r's connection, or nil.
func localAddr(r *http.Request) net.Addr {
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return local
}

// serveEvents streams updates to source (what MaxStreamsPerSource counts
// the request under) until the client goes or the monitor stops.
func (m *Monitor) serveEvents(w http.ResponseWriter, r *http.Request, source string) {
	first, ch, err := m.subscribe(source)
	switch {
	case errors.Is(err, errStreamsFull):
		w.Header().Set("Retry-After", "10")
		http.Error(w, fmt.Sprintf("web: this node serves %d dashboard streams at once, all taken; retry later", MaxStreams), http.StatusServiceUnavailable)
		return
	case errors.Is(err, errSourceStreamsFull):
		w.Header().Set("Retry-After", "10")
		http.Error(w, fmt.Sprintf("web: your address holds %d dashboard streams already, the most one address may; close one", MaxStreamsPerSource), http.StatusTooManyRequests)
		return
	case err != nil:
		http.Error(w, "web: the node is stopping", http.StatusServiceUnavailable)
		return
	}
	defer m.unsubscribe(ch)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(u Update) bool {
		b, err := json.Marshal(u)
		if err != nil {
			return false
		}
		// A dashboard that stops reading is dropped, not waited for.
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send(first) {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case u, ok := <-ch:
			if !ok || !send(u) {
				return
			}
		}
	}
}
