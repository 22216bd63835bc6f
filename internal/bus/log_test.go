package bus

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// levelWatch is a slog handler that keeps every record's level, message
// and "repeated" attribute.
type levelWatch struct {
	mu    sync.Mutex
	lines []leveled
}

type leveled struct {
	level    slog.Level
	msg      string
	repeated int64
}

func (w *levelWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w *levelWatch) Handle(_ context.Context, r slog.Record) error {
	l := leveled{level: r.Level, msg: r.Message}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "repeated" {
			l.repeated = a.Value.Int64()
		}
		return true
	})
	w.mu.Lock()
	w.lines = append(w.lines, l)
	w.mu.Unlock()
	return nil
}
func (w *levelWatch) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *levelWatch) WithGroup(string) slog.Handler      { return w }

// count counts the lines at level or above, and all the lines, that
// contain sub.
func (w *levelWatch) count(level slog.Level, sub string) (atLevel, all int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lines {
		if strings.Contains(l.msg, sub) {
			all++
			if l.level >= level {
				atLevel++
			}
		}
	}
	return atLevel, all
}

// A route to a peer that went away is dialled again every second or so
// for as long as it is gone, each failure an error of nats-server's: the
// first reaches the log as an error, the repeats within a minute only at
// debug level.
func TestRouteErrorsSampled(t *testing.T) {
	seed, err := Open(context.Background(), Config{Name: "s1", ClusterName: "log.test", Cluster: "127.0.0.1:0", Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	defer seed.Close()
	var w levelWatch
	b := openBus(t, Config{Name: "s2", ClusterName: "log.test", Cluster: "127.0.0.1:0", Secret: testSecret,
		Join: []string{seed.ClusterAddr().String()}, Logger: slog.New(&w)})
	waitFor(t, "the route to the seed", func() error {
		if b.Routes() == 0 {
			return fmt.Errorf("no route")
		}
		return nil
	})
	seed.Close()
	const failed = "Error trying to connect to route"
	waitFor(t, "three failed attempts", func() error {
		if _, all := w.count(slog.LevelDebug, failed); all < 3 {
			return fmt.Errorf("%d failed attempts logged", all)
		}
		return nil
	})
	if errs, all := w.count(slog.LevelError, failed); errs != 1 {
		t.Errorf("%d of %d failed attempts logged as errors, want 1", errs, all)
	}
}

// The sampling itself: one line per format and minute at its level, the
// next after the minute saying how many went to debug meanwhile; other
// formats are not held back.
func TestLogAdapterSamples(t *testing.T) {
	var w levelWatch
	l := newLogAdapter(slog.New(&w))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	const stalled = "JetStream cluster stream '%s > %s' has NO quorum, stalled"
	for i := range 5 {
		l.Warnf(stalled, "$G", fmt.Sprint("S", i))
		now = now.Add(10 * time.Second)
	}
	l.Errorf("Error trying to connect to route (attempt %v): %v", 1, "refused")
	now = now.Add(10 * time.Second) // 60 s after the first
	l.Warnf(stalled, "$G", "S5")
	var got []leveled
	w.mu.Lock()
	got = append(got, w.lines...)
	w.mu.Unlock()
	want := []leveled{
		{slog.LevelWarn, "JetStream cluster stream '$G > S0' has NO quorum, stalled", 0},
		{slog.LevelDebug, "JetStream cluster stream '$G > S1' has NO quorum, stalled", 0},
		{slog.LevelDebug, "JetStream cluster stream '$G > S2' has NO quorum, stalled", 0},
		{slog.LevelDebug, "JetStream cluster stream '$G > S3' has NO quorum, stalled", 0},
		{slog.LevelDebug, "JetStream cluster stream '$G > S4' has NO quorum, stalled", 0},
		{slog.LevelError, "Error trying to connect to route (attempt 1): refused", 0},
		{slog.LevelWarn, "JetStream cluster stream '$G > S5' has NO quorum, stalled", 4},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("logged\n%v\nwant\n%v", got, want)
	}
}
