package bus

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// The operator may not have the server publish a directory entry for it:
// a stream's RePublish (made at creation, by an update or by a restore),
// a snapshot's chunks sent to a deliver subject and a direct get answered
// to a reply subject of its choosing are sent by the server itself, past the publish fence that stops the operator
// publishing an entry directly. It may still list and read the streams.
func TestOperatorCannotHaveTheServerPublishEntries(t *testing.T) {
	dir := DirSubjects{Entries: "switchboard.svc.dir.entry", Own: "switchboard.svc.dir.entry." + Token("n1"), Direct: "switchboard.svc.dir.entry.*.to." + Token("n1"), Sync: "switchboard.svc.dir.sync"}
	b := openBus(t, Config{Name: "n1", Secret: testSecret, JetStream: true, StoreDir: t.TempDir(), Dir: dir})
	entries := make(chan *nats.Msg, 16)
	sub, err := b.Dir.ChanSubscribe(dir.Entries+".*", entries)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := b.Dir.Flush(); err != nil {
		t.Fatal(err)
	}
	// A stream of the node's that answers direct gets, as its KV bucket
	// does, holding what the operator stored there.
	js, err := b.Conn.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	rooms := nats.StreamConfig{Name: "ROOMS", Subjects: []string{"rooms.>"}, Storage: nats.MemoryStorage, AllowDirect: true}
	if _, err := js.AddStream(&rooms); err != nil {
		t.Fatal(err)
	}

	denied := make(chan error, 16)
	op, err := b.connect("op", OperatorUser, testSecret, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { denied <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	forged := []byte(`{"id":"n2","addr":"203.0.113.9:7070","status":"up","inc":1,"seq":1}`)
	if err := op.Publish("rooms.x", forged); err != nil {
		t.Fatal(err)
	}
	if err := op.Flush(); err != nil {
		t.Fatal(err)
	}
	// The server has the message; the stream stores it on a goroutine of
	// its own, which a loaded machine may run later.
	waitFor(t, "ROOMS storing the operator's message", func() error {
		info, err := js.StreamInfo("ROOMS")
		if err == nil && info.State.Msgs == 0 {
			err = errors.New("no message yet")
		}
		return err
	})
	answers := make(chan *nats.Msg, 16)
	inbox := nats.NewInbox()
	asub, err := op.ChanSubscribe(inbox, answers)
	if err != nil {
		t.Fatal(err)
	}
	defer asub.Unsubscribe()

	evil := nats.StreamConfig{Name: "EVIL", Subjects: []string{"evil.>"}, Storage: nats.MemoryStorage,
		RePublish: &nats.RePublish{Source: "evil.*", Destination: dir.Entries + ".{{wildcard(1)}}"}}
	updated := rooms
	updated.RePublish = &nats.RePublish{Source: "rooms.*", Destination: dir.Entries + ".{{wildcard(1)}}"}
	for _, tt := range []struct {
		name, subject, reply string
		req                  any
	}{
		{"creating a stream that republishes", "$JS.API.STREAM.CREATE.EVIL", inbox, evil},
		{"adding a republish to the node's stream", "$JS.API.STREAM.UPDATE.ROOMS", inbox, updated},
		{"restoring a stream", "$JS.API.STREAM.RESTORE.EVIL", inbox, map[string]any{"config": evil}},
		{"a snapshot delivered on an entry subject", "$JS.API.STREAM.SNAPSHOT.ROOMS", inbox, map[string]any{"deliver_subject": dir.Entries + "." + Token("n2"), "chunk_size": 1024}},
		{"a direct get answered on an entry subject", "$JS.API.DIRECT.GET.ROOMS", dir.Entries + "." + Token("n2"), map[string]any{"last_by_subj": "rooms.x", "no_hdr": true}},
		{"publishing an entry", dir.Entries + "." + Token("n2"), "", json.RawMessage(forged)},
	} {
		data, err := json.Marshal(tt.req)
		if err != nil {
			t.Fatal(err)
		}
		msg := &nats.Msg{Subject: tt.subject, Reply: tt.reply, Data: data}
		if err := op.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-denied:
			if !strings.Contains(err.Error(), "Permissions Violation") {
				t.Errorf("%s: %v, want a permissions violation", tt.name, err)
			}
		case m := <-answers:
			t.Errorf("%s: the server answered %.100s", tt.name, m.Data)
		case m := <-entries:
			t.Errorf("%s: the directory received %s on %s", tt.name, m.Data, m.Subject)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no permissions violation", tt.name)
		}
	}

	// Inspecting the streams is still allowed.
	ojs, err := op.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range ojs.StreamNames() {
		names = append(names, name)
	}
	if len(names) != 1 || names[0] != "ROOMS" {
		t.Errorf("the operator lists streams %q, want ROOMS", names)
	}
	if _, err := ojs.GetLastMsg("ROOMS", "rooms.x"); err != nil {
		t.Errorf("the operator reading the last message of ROOMS: %v", err)
	}
	select {
	case err := <-denied:
		t.Errorf("inspecting the streams: %v", err)
	default:
	}
}
