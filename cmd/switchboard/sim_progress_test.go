package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSimMeter(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := newSimMeter(4, start)
	if got, want := m.line(start.Add(time.Second)), "0/4 runs done, 0% after 1s, time left unknown yet"; got != want {
		t.Errorf("at the start: %q, want %q", got, want)
	}
	m.finish(0)
	m.set(1, 50*time.Second, 100*time.Second)
	m.set(2, 0, 0) // a run with no length yet counts as not started
	if got, want := m.line(start.Add(30*time.Second)), "1/4 runs done, 38% after 30s, about 50s left"; got != want {
		t.Errorf("midway: %q, want %q", got, want)
	}
	for i := range 4 {
		m.finish(i)
	}
	if got, want := m.line(start.Add(time.Minute)), "4/4 runs done, 100% after 1m0s"; got != want {
		t.Errorf("at the end: %q, want %q", got, want)
	}
	stop := m.report(&syncWriter{w: &bytes.Buffer{}}, time.Hour)
	stop()
	stop() // twice is fine
}

// Progress rewrites its line only on a terminal.
func TestIsTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) || isTerminal(&bytes.Buffer{}) {
		t.Error("a file or a buffer is taken for a terminal")
	}
}
