package node

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// A message on a directory entry subject whose data is small but whose
// headers are large is dropped before it takes a place in the queue:
// nats.go's Data leaves the headers out, so the size check alone let
// megabytes wait in each place. The log line says so without repeating
// the headers. A message without headers is queued as before.
func TestQueueEntryDropsHeadersBeforeQueueing(t *testing.T) {
	var logged bytes.Buffer
	n := &Node{entryMsgs: make(chan *nats.Msg, 2)}
	drops := newDropLog(slog.New(slog.NewTextHandler(&logged, nil)), time.Hour)
	huge := strings.Repeat("h", 1<<20)
	withHeaders := &nats.Msg{Subject: "sb.entry.n2", Data: []byte("{}"), Header: nats.Header{"X-Pad": {huge}}}
	n.queueEntry(withHeaders, drops)
	n.queueEntry(&nats.Msg{Subject: "sb.entry.n2", Data: []byte("{}")}, drops)
	if got := len(n.entryMsgs); got != 1 {
		t.Fatalf("%d messages queued, want only the one without headers", got)
	}
	if m := <-n.entryMsgs; len(m.Header) != 0 {
		t.Errorf("a message with %d header fields was queued for run", len(m.Header))
	}
	line := logged.String()
	if !strings.Contains(line, "with headers") {
		t.Errorf("no log line for the message with headers: %q", line)
	}
	if strings.Contains(line, "hhhh") {
		t.Errorf("the log line repeats the headers (%d bytes)", len(line))
	}
}
