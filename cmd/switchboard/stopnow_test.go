package main

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
)

// A signal while the shutdown waits ends the process at once, saying so;
// a shutdown that finished first leaves the process to return as usual.
func TestSignalDuringShutdownExitsAtOnce(t *testing.T) {
	for _, tt := range []struct {
		name     string
		signal   bool // a signal comes before the shutdown is done
		wantExit int  // -1: exit is not called
	}{
		{"signal during the shutdown", true, exitFailure},
		{"shutdown done first", false, -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			sigs, done := make(chan os.Signal, 1), make(chan struct{})
			exited := -1
			if tt.signal {
				sigs <- syscall.SIGTERM
			} else {
				close(done)
			}
			exitOnSignal(sigs, done, slog.New(slog.NewTextHandler(&logs, nil)), func(code int) { exited = code })
			if exited != tt.wantExit {
				t.Errorf("exit(%d), want %d (-1: none)", exited, tt.wantExit)
			}
			if said := strings.Contains(logs.String(), "stopping at once: terminated during the shutdown"); said != tt.signal {
				t.Errorf("logged %q; want the stop at once said: %v", logs.String(), tt.signal)
			}
		})
	}
}
