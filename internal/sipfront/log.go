package sipfront

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// sipgo logs what strangers send: every datagram that does not parse is
// logged at error level with its whole text (up to 64 KB), and it logs
// to slog.Default unless told otherwise, past the node's log settings. A
// stranger's junk thus wrote the node's log as fast as the network
// carried it. The front gives sipgo this handler over its own logger
// instead: each message at most once every logEvery, with the count of
// those left out since (more_since_last_line), and string values cut to
// logClip bytes.
const (
	logEvery = 5 * time.Second
	logClip  = 200
	// logKinds bounds the messages tracked (sipgo's are constant
	// strings); the rest share one budget.
	logKinds = 256
)

// sipgo also logs some lines to its package's default logger
// (sip.DefaultLogger: "TCP ref went negative", one for each transaction
// still open on a connection that closed, and a few more), which is
// slog.Default unless set before any use: a peer that reset its
// connections with requests in flight wrote dozens of unthinned lines a
// connection. The package sets it once, at init, to defaultHandler,
// which hands each record to the thinned handler of the front last
// started (nothing before one is).
var defaultSink atomic.Pointer[sipgoHandler]

func init() { sip.SetDefaultLogger(slog.New(defaultHandler{})) }

// defaultHandler is sipgo's default logger's handler: defaultSink's, the
// attributes sipgo added with With kept here.
type defaultHandler struct{ attrs []slog.Attr }

func (d defaultHandler) Enabled(ctx context.Context, l slog.Level) bool {
	h := defaultSink.Load()
	return h != nil && h.Enabled(ctx, l)
}

func (d defaultHandler) Handle(ctx context.Context, r slog.Record) error {
	h := defaultSink.Load()
	if h == nil {
		return nil
	}
	if len(d.attrs) > 0 {
		r = r.Clone()
		r.AddAttrs(d.attrs...)
	}
	return h.Handle(ctx, r)
}

func (d defaultHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return defaultHandler{attrs: append(slices.Clip(d.attrs), as...)}
}

// WithGroup keeps no group: sipgo names none.
func (d defaultHandler) WithGroup(string) slog.Handler { return d }

type sipgoHandler struct {
	h  slog.Handler
	st *sipgoLogState
}

type sipgoLogState struct {
	mu    sync.Mutex
	kinds map[string]*logKind
}

type logKind struct {
	last  time.Time
	since int
}

func newSIPGoHandler(h slog.Handler) *sipgoHandler {
	return &sipgoHandler{h: h, st: &sipgoLogState{kinds: map[string]*logKind{}}}
}

func (s *sipgoHandler) Enabled(ctx context.Context, l slog.Level) bool { return s.h.Enabled(ctx, l) }

func (s *sipgoHandler) Handle(ctx context.Context, r slog.Record) error {
	more, ok := s.st.admit(r.Message, r.Time)
	if !ok {
		return nil
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(clipAttr(a))
		return true
	})
	if more > 0 {
		out.AddAttrs(slog.Int("more_since_last_line", more))
	}
	return s.h.Handle(ctx, out)
}

func (s *sipgoHandler) WithAttrs(as []slog.Attr) slog.Handler {
	clipped := make([]slog.Attr, len(as))
	for i, a := range as {
		clipped[i] = clipAttr(a)
	}
	return &sipgoHandler{h: s.h.WithAttrs(clipped), st: s.st}
}

func (s *sipgoHandler) WithGroup(name string) slog.Handler {
	return &sipgoHandler{h: s.h.WithGroup(name), st: s.st}
}

// admit says whether a record of msg at now is logged, and how many were
// left out before it.
func (st *sipgoLogState) admit(msg string, now time.Time) (more int, ok bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	k := st.kinds[msg]
	if k == nil {
		if len(st.kinds) >= logKinds {
			msg = ""
			k = st.kinds[msg]
		}
		if k == nil {
			k = &logKind{}
			st.kinds[msg] = k
		}
	}
	if !k.last.IsZero() && now.Sub(k.last) < logEvery {
		k.since++
		return 0, false
	}
	more, k.since, k.last = k.since, 0, now
	return more, true
}

// clipAttr cuts a string value (or any value, as text) to logClip bytes.
func clipAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		g := v.Group()
		out := make([]any, len(g))
		for i, x := range g {
			out[i] = clipAttr(x)
		}
		return slog.Group(a.Key, out...)
	case slog.KindString, slog.KindAny:
		s := v.String()
		if v.Kind() == slog.KindAny {
			if err, ok := v.Any().(error); ok {
				s = err.Error()
			} else if len(s) <= logClip {
				return slog.Attr{Key: a.Key, Value: v}
			}
		}
		if len(s) > logClip {
			return slog.String(a.Key, s[:logClip]+"...")
		}
		return slog.String(a.Key, s)
	}
	return slog.Attr{Key: a.Key, Value: v}
}
