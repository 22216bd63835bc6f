package logsample

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestSampler(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, nil))
	s := Sampler{Period: time.Hour}
	for range 5 {
		s.Log(l, slog.LevelWarn, "refused", "n", 1)
	}
	if got := strings.Count(buf.String(), "refused"); got != 1 {
		t.Fatalf("5 lines within the period wrote %d, want 1:\n%s", got, buf.String())
	}
	// A new period: the next line says how many were held back.
	s.mu.Lock()
	s.next = time.Time{}
	s.mu.Unlock()
	s.Log(l, slog.LevelWarn, "refused", "n", 2)
	if !strings.Contains(buf.String(), "more_since_last_line=4") {
		t.Errorf("the line after the period does not count the 4 held back:\n%s", buf.String())
	}

	buf.Reset()
	var every Sampler
	every.Log(l, slog.LevelInfo, "a")
	every.Log(l, slog.LevelInfo, "a")
	if got := strings.Count(buf.String(), "msg=a"); got != 2 {
		t.Errorf("the zero Sampler wrote %d of 2 lines", got)
	}
}

func TestKindsSampleEachMessageApart(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, nil))
	k := Kinds{Period: time.Hour}
	for range 3 {
		k.Log(l, slog.LevelWarn, "one kind")
		k.Log(l, slog.LevelWarn, "another")
	}
	if a, b := strings.Count(buf.String(), "one kind"), strings.Count(buf.String(), "another"); a != 1 || b != 1 {
		t.Errorf("wrote %d and %d lines of two kinds, want 1 each:\n%s", a, b, buf.String())
	}
}
