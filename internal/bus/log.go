package bus

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"
)

// logSampleEvery is how often one of nats-server's warnings or errors
// (one kind, sampleKey) reaches the log at its level.
// Under a long fault nats-server repeats some without end: a route to a
// peer cut off is dialled again every second or two, each failure an
// error ("Error trying to connect to route"), and every stream without
// a quorum is reported every few seconds ("has NO quorum, stalled"). The
// first goes out at once; the repeats within logSampleEvery go out at
// debug level, and the next one past it says how many there were
// (repeated).
const logSampleEvery = time.Minute

// logAdapter routes nats-server's log lines to slog, sampling its
// warnings and errors by kind (sampleKey, logSampleEvery).
type logAdapter struct {
	log *slog.Logger
	now func() time.Time

	mu sync.Mutex
	// last holds, per kind, when it last went out at its level and
	// how many repeats went to debug since. sampleKey leaves what is
	// literal in nats-server's code: the map stays small.
	last map[string]*sampledLine

	// fatal receives the first of nats-server's fatal lines: it logs
	// them where it cannot go on (it does not exit: the server is
	// embedded), and Open waits for none after it.
	fatal chan string
}

// connPrefix is what nats-server puts before the format of a line about
// one connection (client.format): the connection's remote address, its
// kind and id ("127.0.0.1:54312 - rid:7 - "), and, once a client has
// sent CONNECT, its version, language or name and account, quoted.
var connPrefix = regexp.MustCompile(`^\S+ - [a-z_]+:\d+ - (?:"(?:[^"\\]|\\.)*" - )*`)

// digits are masked in a kind: an error's text handed to nats-server's
// client.Error becomes the format whole, addresses and all.
var digits = regexp.MustCompile(`[0-9]+`)

// sampleKey is the kind of a line of format: format less the connection
// it is about, digits masked. Every peer's "Route Error 'Authorization
// Violation'", on a new connection each time, is then one kind.
func sampleKey(format string) string {
	return digits.ReplaceAllString(connPrefix.ReplaceAllString(format, ""), "0")
}

// maxKinds bounds the kinds of line the adapter remembers.
const maxKinds = 1024

type sampledLine struct {
	at       time.Time
	repeated int
}

func newLogAdapter(log *slog.Logger) *logAdapter {
	return &logAdapter{log: log, now: time.Now, last: make(map[string]*sampledLine), fatal: make(chan string, 1)}
}

// sample reports whether a line of format goes out at its level now,
// and how many repeats of its kind went to debug since the last that did.
func (l *logAdapter) sample(format string) (bool, int) {
	key := sampleKey(format)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.last[key]
	if s == nil {
		if len(l.last) >= maxKinds {
			// Kinds nobody foresaw (an error's text as the format):
			// start again rather than grow without bound.
			clear(l.last)
		}
		l.last[key] = &sampledLine{at: now}
		return true, 0
	}
	if now.Sub(s.at) < logSampleEvery {
		s.repeated++
		return false, 0
	}
	repeated := s.repeated
	s.at, s.repeated = now, 0
	return true, repeated
}

// emit logs a warning or an error, sampled.
func (l *logAdapter) emit(level slog.Level, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	ok, repeated := l.sample(format)
	switch {
	case !ok:
		l.log.Debug(msg, "sampled", true)
	case repeated > 0:
		l.log.Log(context.Background(), level, msg, "repeated", repeated)
	default:
		l.log.Log(context.Background(), level, msg)
	}
}

func (l *logAdapter) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *logAdapter) Warnf(format string, v ...any) {
	if strings.HasPrefix(format, "Plaintext passwords detected") {
		// The passwords are the node's own, drawn at random at each start
		// and handed to in-process connections, and the operator's derived
		// from the cluster secret: nothing an operator should act on.
		l.log.Debug(fmt.Sprintf(format, v...))
		return
	}
	l.emit(slog.LevelWarn, format, v...)
}
func (l *logAdapter) Fatalf(format string, v ...any) {
	line := fmt.Sprintf(format, v...)
	l.log.Error(line)
	select {
	case l.fatal <- line:
	default:
	}
}
func (l *logAdapter) Errorf(format string, v ...any) {
	if strings.Contains(format, "Remote server has a duplicate name") {
		// nats-server refuses the route, and JetStream needs the names
		// unique; the node names its server after its ID (Config.Name).
		format += duplicateNameHint
	}
	l.emit(slog.LevelError, format, v...)
}

// duplicateNameHint follows nats-server's refusal of a route from a
// server of the same name: what makes two nodes' names alike.
const duplicateNameHint = " (two servers of the cluster have this name; a node's embedded server is named after its --id, each character other than a letter, a digit, - or _ made -, so two IDs that differ only in other characters collide: give each node an ID that differs in letters, digits, - or _)"

func (l *logAdapter) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *logAdapter) Tracef(format string, v ...any) {}
