// Package logsample keeps a line that may repeat at a hostile rate (a
// refused connection, a dropped message) down to one per period, and
// says in the next line it lets through how many it held back, as
// more_since_last_line. A stranger who makes the node refuse as fast as
// they can must not write as many log lines.
package logsample

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Sampler lets at most one line through per Period. It is safe for
// concurrent use; the zero Sampler lets every line through.
type Sampler struct {
	// Period is the least time between two lines let through.
	Period time.Duration

	mu   sync.Mutex
	next time.Time // no line before this
	held int       // lines held back since the last one let through
}

// Log writes msg and args at level to l, unless a line went through less
// than a Period ago; then it only counts it.
func (s *Sampler) Log(l *slog.Logger, level slog.Level, msg string, args ...any) {
	now := time.Now()
	s.mu.Lock()
	if now.Before(s.next) {
		s.held++
		s.mu.Unlock()
		return
	}
	held := s.held
	s.next, s.held = now.Add(s.Period), 0
	s.mu.Unlock()
	if held > 0 {
		args = append(args, "more_since_last_line", held)
	}
	l.Log(context.Background(), level, msg, args...)
}

// Kinds is a Sampler per message: each kind of line gets its own period,
// so that a flood of one kind does not hide another. It is safe for
// concurrent use.
type Kinds struct {
	// Period is each kind's Sampler.Period.
	Period time.Duration

	mu    sync.Mutex
	kinds map[string]*Sampler
}

// Log writes msg and args at level to l through msg's own Sampler.
func (k *Kinds) Log(l *slog.Logger, level slog.Level, msg string, args ...any) {
	k.mu.Lock()
	s := k.kinds[msg]
	if s == nil {
		if k.kinds == nil {
			k.kinds = make(map[string]*Sampler)
		}
		s = &Sampler{Period: k.Period}
		k.kinds[msg] = s
	}
	k.mu.Unlock()
	s.Log(l, level, msg, args...)
}
