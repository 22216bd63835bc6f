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

// nats-server puts the connection a line is about into its format
// (client.format: "127.0.0.1:54312 - rid:7 - " before it): a peer with
// another secret, dialling again and again, is a new connection each
// time, but its lines are of one kind and sampled as one.
func TestLogAdapterSamplesPerConnectionLinesByKind(t *testing.T) {
	var w levelWatch
	l := newLogAdapter(slog.New(&w))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	// As client.format builds them: the connection's String, " - ", then
	// the format of client.processErr, client.authViolation and
	// client.doTLSHandshake.
	conns := []string{
		"127.0.0.2:39912 - rid:11",
		"127.0.0.2:7092 - rid:12",
		`[::1]:40001 - cid:13 - "v2.15.3:go:s2" - "$SYS"`,
		"10.0.0.7:51234 - rid:140",
	}
	for i := range 12 {
		c := conns[i%len(conns)]
		l.Errorf(c+" - Route Error %s", "'Authorization Violation'")
		errorf := l.Errorf // as nats-server calls it: the error's text the whole format
		errorf(c + " - authentication error")
		l.Errorf(c+" - TLS %s handshake error: %v%s", "route", "remote error: tls: bad certificate", "")
		now = now.Add(time.Second)
	}
	for _, kind := range []string{"Route Error 'Authorization Violation'", "authentication error", "TLS route handshake error"} {
		if errs, all := w.count(slog.LevelError, kind); errs != 1 || all != 12 {
			t.Errorf("%q: %d of %d lines logged as errors, want 1 of 12", kind, errs, all)
		}
	}
	now = now.Add(time.Minute)
	l.Errorf(conns[0]+" - Route Error %s", "'Authorization Violation'")
	w.mu.Lock()
	last := w.lines[len(w.lines)-1]
	w.mu.Unlock()
	if last.level != slog.LevelError || last.repeated != 11 {
		t.Errorf("the first line past the minute: %+v, want an error with repeated=11", last)
	}
}

// A node given another cluster secret is refused on every route it
// dials, each attempt a new connection that nats-server names in its
// lines: after the first, the refusals go to debug level.
func TestRouteAuthErrorsSampled(t *testing.T) {
	var seedLog, peerLog levelWatch
	seed := openBus(t, Config{Name: "s1", ClusterName: "log.test", Cluster: "127.0.0.1:0", Secret: testSecret, Logger: slog.New(&seedLog)})
	openBus(t, Config{Name: "s2", ClusterName: "log.test", Cluster: "127.0.0.1:0", Secret: testSecret + "-other",
		Join: []string{seed.ClusterAddr().String()}, Logger: slog.New(&peerLog)})
	const refused, violation = "authentication error", "Authorization Violation"
	waitFor(t, "three refused routes", func() error {
		_, seedAll := seedLog.count(slog.LevelDebug, refused)
		_, peerAll := peerLog.count(slog.LevelDebug, violation)
		if seedAll < 3 || peerAll < 3 {
			return fmt.Errorf("%d refusals logged by the seed, %d by its peer", seedAll, peerAll)
		}
		return nil
	})
	if errs, all := seedLog.count(slog.LevelError, refused); errs != 1 {
		t.Errorf("the seed logged %d of %d refusals as errors, want 1", errs, all)
	}
	if errs, all := peerLog.count(slog.LevelError, violation); errs != 1 {
		t.Errorf("its peer logged %d of %d refusals as errors, want 1", errs, all)
	}
}

// The kinds the adapter remembers are bounded: lines whose formats all
// differ (an error's text as the format) do not grow it past maxKinds,
// and a new kind goes out at its level.
func TestLogAdapterKindsBounded(t *testing.T) {
	l := newLogAdapter(slog.New(slog.DiscardHandler))
	for i := range 3 * maxKinds {
		if ok, _ := l.sample("error " + strings.Repeat("x", i+1)); !ok {
			t.Fatalf("line %d, of a kind never seen, was held back", i)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.last); n > maxKinds {
		t.Errorf("%d kinds remembered, want at most %d", n, maxKinds)
	}
}

// Two servers of one name: nats-server refuses the route, and the line
// that says so says what makes two nodes' names alike.
func TestDuplicateNameSaysWhy(t *testing.T) {
	var seedLog levelWatch
	seed := openBus(t, Config{Name: "n-1", ClusterName: "log.test", Cluster: "127.0.0.1:0", Secret: testSecret, Logger: slog.New(&seedLog)})
	openBus(t, Config{Name: "n-1", ClusterName: "log.test", Cluster: "127.0.0.1:0", Secret: testSecret,
		Join: []string{seed.ClusterAddr().String()}, Logger: slog.New(slog.DiscardHandler)})
	waitFor(t, "the refused route's line", func() error {
		if errs, _ := seedLog.count(slog.LevelError, "duplicate name"); errs == 0 {
			return fmt.Errorf("no error about a duplicate name")
		}
		return nil
	})
	if errs, _ := seedLog.count(slog.LevelError, "differ only in other characters"); errs == 0 {
		t.Errorf("the line about the duplicate name does not say why IDs collide")
	}
}
