package rtcfront

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// refusalLogPeriod is how often at most the front logs a refused offer:
// refusals cost the requester nothing, and a client that posts bad offers
// as fast as it can must not write as many log lines.
const refusalLogPeriod = 5 * time.Second

// sampledLog writes a line at most once per period, and says in the
// next line it writes how many it held back meanwhile.
type sampledLog struct {
	period time.Duration

	mu   sync.Mutex
	next time.Time // no line before this
	held int       // lines held back since the last one written
}

// log writes msg and args at level to l, unless a line went out less
// than a period ago.
func (s *sampledLog) log(l *slog.Logger, level slog.Level, msg string, args ...any) {
	now := time.Now()
	s.mu.Lock()
	if now.Before(s.next) {
		s.held++
		s.mu.Unlock()
		return
	}
	held := s.held
	s.next, s.held = now.Add(s.period), 0
	s.mu.Unlock()
	if held > 0 {
		args = append(args, "more_since_last_line", held)
	}
	l.Log(context.Background(), level, msg, args...)
}
