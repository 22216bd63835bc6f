package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/rtt"
	"github.com/switchboard/switchboard/wire"
)

// sampleDirectory has one node with every field set and one with only the
// required ones.
func sampleDirectory() *wire.Directory {
	return &wire.Directory{
		Service: "chat",
		Self:    "n1",
		Nodes: []directory.Node{
			{
				ID: "n1", Addr: "10.0.0.1:7000", HTTP: "10.0.0.1:8080", Group: "eu/a",
				Status: directory.Up, Users: 3, Capacity: 100, Version: "0.1.0", AgeMS: 12,
			},
			{ID: "n2", Addr: "10.0.0.2:7000", Status: directory.Down, Capacity: 100},
		},
	}
}

const sampleDirectoryJSON = `"service":"chat","self":"n1","nodes":[` +
	`{"id":"n1","addr":"10.0.0.1:7000","http":"10.0.0.1:8080","group":"eu/a","status":"up","users":3,"capacity":100,"version":"0.1.0","age_ms":12},` +
	`{"id":"n2","addr":"10.0.0.2:7000","status":"down","users":0,"capacity":100,"age_ms":0}]`

// protocol is one message of every op, with its exact encoding. The
// encodings are the protocol: a change here is a change of the wire format.
var protocol = []struct {
	name string
	in   wire.Message
	want string // without the newline
}{
	{
		name: "hello",
		in:   wire.Message{Op: wire.OpHello, V: 1, Client: "switchboard-go/0.1", Group: "eu/a"},
		want: `{"op":"hello","v":1,"client":"switchboard-go/0.1","group":"eu/a"}`,
	},
	{
		name: "directory",
		in:   wire.DirectoryMessage(sampleDirectory()),
		want: `{"op":"directory","v":1,` + sampleDirectoryJSON + `}`,
	},
	{
		name: "empty directory",
		in:   wire.DirectoryMessage(&wire.Directory{Service: "chat", Self: "n1"}),
		want: `{"op":"directory","v":1,"service":"chat","self":"n1","nodes":[]}`,
	},
	{
		name: "attach",
		in:   wire.Message{Op: wire.OpAttach, User: "ann"},
		want: `{"op":"attach","user":"ann"}`,
	},
	{
		name: "attached",
		in:   wire.Message{Op: wire.OpAttached, User: "ann", Node: "n1", Session: "s-42"},
		want: `{"op":"attached","user":"ann","node":"n1","session":"s-42"}`,
	},
	{
		name: "attached with limits",
		in: wire.Message{Op: wire.OpAttached, User: "ann", Node: "n1", Session: "s-42", Limits: &wire.Limits{
			MaxChunk: 4096, ChunkRate: 50, ChunkBurst: 200, ByteRate: 8192, ByteBurst: 65536,
		}},
		want: `{"op":"attached","user":"ann","node":"n1","session":"s-42","limits":{"max_chunk":4096,"chunk_rate":50,"chunk_burst":200,"byte_rate":8192,"byte_burst":65536}}`,
	},
	{
		name: "ping",
		in:   wire.Message{Op: wire.OpPing},
		want: `{"op":"ping"}`,
	},
	{
		name: "pong",
		in:   wire.Message{Op: wire.OpPong},
		want: `{"op":"pong"}`,
	},
	{
		name: "error",
		in:   wire.Message{Op: wire.OpError, Code: wire.CodeUnknownOp, Message: `unknown op "fly"`},
		want: `{"op":"error","code":"unknown_op","message":"unknown op \"fly\""}`,
	},
	{
		name: "error with a directory",
		in:   wire.Message{Op: wire.OpError, Code: wire.CodeFull, Message: "node is full", Dir: sampleDirectory()},
		want: `{"op":"error","code":"full","message":"node is full","directory":{` + sampleDirectoryJSON + `}}`,
	},
	{
		name: "join",
		in:   wire.Message{Op: wire.OpJoin, Room: "lobby"},
		want: `{"op":"join","room":"lobby"}`,
	},
	{
		name: "leave",
		in:   wire.Message{Op: wire.OpLeave, Room: "lobby"},
		want: `{"op":"leave","room":"lobby"}`,
	},
	{
		name: "text from a client",
		in:   wire.Message{Op: wire.OpText, Room: "lobby", Seq: 7, T: "hel"},
		want: `{"op":"text","room":"lobby","seq":7,"t":"hel"}`,
	},
	{
		name: "text delivered",
		in:   wire.Message{Op: wire.OpText, Room: "lobby", Seq: 7, T: "lo\b\n", From: "ann"},
		want: `{"op":"text","room":"lobby","seq":7,"t":"lo\b\n","from":"ann"}`,
	},
	{
		name: "text escapes",
		in:   wire.Message{Op: wire.OpText, Room: "r", Seq: 1, T: "a\u2028<b>&\"\\\t\x00é"},
		want: `{"op":"text","room":"r","seq":1,"t":"a\u2028<b>&\"\\\t\u0000é"}`,
	},
	{
		name: "ack",
		in:   wire.Message{Op: wire.OpAck, Room: "lobby", Seq: 18446744073709551615},
		want: `{"op":"ack","room":"lobby","seq":18446744073709551615}`,
	},
	{
		name: "presence",
		in:   wire.Message{Op: wire.OpPresence, User: "bob", Room: "lobby", Event: "join"},
		want: `{"op":"presence","user":"bob","room":"lobby","event":"join"}`,
	},
	{
		name: "room",
		in: wire.Message{Op: wire.OpRoom, Room: "lobby", State: &wire.RoomState{
			Lines:     []wire.Line{{From: "ann", Text: "hi"}, {From: "bob", Text: "hello"}},
			Live:      map[string]string{"ann": "how a", "bob": ""},
			Seqs:      map[string]uint64{"ann": 12, "bob": 4},
			PendingCR: map[string]bool{"bob": true},
			Users:     []string{"ann", "bob"},
		}},
		want: `{"op":"room","room":"lobby","state":{"lines":[{"from":"ann","t":"hi"},{"from":"bob","t":"hello"}],` +
			`"live":{"ann":"how a","bob":""},"seqs":{"ann":12,"bob":4},"pending_cr":{"bob":true},"users":["ann","bob"]}}`,
	},
	{
		name: "move",
		in: wire.Message{Op: wire.OpMove, Message: "node n2 is draining; move within 30s",
			Dir: &wire.Directory{Service: "chat", Self: "n2", Nodes: []directory.Node{}}},
		want: `{"op":"move","message":"node n2 is draining; move within 30s","directory":{"service":"chat","self":"n2","nodes":[]}}`,
	},
	{
		name: "empty room",
		in: wire.Message{Op: wire.OpRoom, Room: "new", State: &wire.RoomState{
			Lines: []wire.Line{}, Live: map[string]string{}, Users: []string{},
		}},
		want: `{"op":"room","room":"new","state":{"lines":[],"live":{},"users":[]}}`,
	},
}

func TestEncode(t *testing.T) {
	for _, tt := range protocol {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wire.Encode(tt.in)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if diff := cmp.Diff(string(got), tt.want+"\n"); diff != "" {
				t.Errorf("Encode (-got +want):\n%s", diff)
			}
			if n := bytes.Count(got, []byte("\n")); n != 1 {
				t.Errorf("Encode gave %d newlines, want exactly 1 at the end", n)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tt := range protocol {
		t.Run(tt.name, func(t *testing.T) {
			line, err := wire.Encode(tt.in)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := wire.Decode(bytes.TrimSuffix(line, []byte("\n")))
			if err != nil {
				t.Fatalf("Decode(%s): %v", line, err)
			}
			if diff := cmp.Diff(got, tt.in); diff != "" {
				t.Errorf("Decode(Encode(m)) (-got +want):\n%s", diff)
			}
		})
	}
}

// TestFieldNames checks that the messages above use every field name of
// the protocol and no other.
func TestFieldNames(t *testing.T) {
	want := []string{
		// message
		"op", "v", "client", "group", "service", "self", "nodes", "user", "node", "session",
		"code", "message", "directory", "room", "seq", "t", "from", "event", "state",
		// node
		"id", "addr", "http", "status", "users", "capacity", "version", "age_ms",
		// room state
		"lines", "live", "seqs", "pending_cr",
		// limits
		"limits", "max_chunk", "chunk_rate", "chunk_burst", "byte_rate", "byte_burst",
	}
	seen := map[string]bool{}
	var walk func(v any, keysAreNames bool)
	walk = func(v any, keysAreNames bool) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if keysAreNames {
					seen[k] = true
				}
				// The keys of live, seqs and pending_cr are user
				// names, not fields.
				walk(x, k != "live" && k != "seqs" && k != "pending_cr")
			}
		case []any:
			for _, x := range v {
				walk(x, true)
			}
		}
	}
	for _, tt := range protocol {
		var v any
		if err := json.Unmarshal([]byte(tt.want), &v); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		walk(v, true)
	}
	slices.Sort(want)
	want = slices.Compact(want)
	got := slices.Sorted(maps.Keys(seen))
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("field names (-got +want):\n%s", diff)
	}
}

// TextState hands the rtt model every part of a room state it keeps, so
// that a view loaded from it applies later text as the room does: a
// sender's pending CR included (their LF in the next chunk ends no line).
// A state from a node that predates pending_cr loads without one.
func TestRoomStateTextState(t *testing.T) {
	for _, tt := range []struct {
		name, line string
		want       rtt.State
		lines      []rtt.Line // after bob sends "\nnext" as seq 5
	}{
		{
			name: "pending CR",
			line: `{"op":"room","room":"r","state":{"lines":[{"from":"bob","t":"hello"}],"live":{"ann":"how a","bob":""},` +
				`"seqs":{"ann":12,"bob":4},"pending_cr":{"bob":true},"users":["ann","bob"]}}`,
			want: rtt.State{
				Lines:     []rtt.Line{{From: "bob", Text: "hello"}},
				Live:      map[string]string{"ann": "how a", "bob": ""},
				Seqs:      map[string]uint64{"ann": 12, "bob": 4},
				PendingCR: map[string]bool{"bob": true},
			},
			lines: nil,
		},
		{
			name: "older node",
			line: `{"op":"room","room":"r","state":{"lines":[{"from":"bob","t":"hello"}],"live":{"ann":"how a","bob":""},` +
				`"seqs":{"ann":12,"bob":4},"users":["ann","bob"]}}`,
			want: rtt.State{
				Lines: []rtt.Line{{From: "bob", Text: "hello"}},
				Live:  map[string]string{"ann": "how a", "bob": ""},
				Seqs:  map[string]uint64{"ann": 12, "bob": 4},
			},
			lines: []rtt.Line{{From: "bob"}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := wire.Decode([]byte(tt.line))
			if err != nil {
				t.Fatal(err)
			}
			st := m.State.TextState()
			if diff := cmp.Diff(st, tt.want, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("TextState (-got +want):\n%s", diff)
			}
			v, err := rtt.FromState(0, st)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(v.Apply("bob", 5, "\nnext").Lines, tt.lines); diff != "" {
				t.Errorf("lines bob's next chunk completes (-got +want):\n%s", diff)
			}
		})
	}
}

func TestAppend(t *testing.T) {
	buf := []byte("prefix\n")
	buf, err := wire.Append(buf, wire.Message{Op: wire.OpPing})
	if err != nil {
		t.Fatal(err)
	}
	buf, err = wire.Append(buf, wire.Message{Op: wire.OpPong})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(buf), "prefix\n{\"op\":\"ping\"}\n{\"op\":\"pong\"}\n"); diff != "" {
		t.Errorf("Append (-got +want):\n%s", diff)
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     wire.Message
		wantCode string // "" when Decode succeeds
	}{
		{
			name: "hello",
			in:   `{"op":"hello","v":1,"client":"sb/1","group":"eu/a"}`,
			want: wire.Message{Op: "hello", V: 1, Client: "sb/1", Group: "eu/a"},
		},
		{
			name: "attach",
			in:   `{"op":"attach","user":"ann"}`,
			want: wire.Message{Op: "attach", User: "ann"},
		},
		{
			name: "ping",
			in:   `{"op":"ping"}`,
			want: wire.Message{Op: "ping"},
		},
		{
			name: "text",
			in:   `{"op":"text","room":"lobby","seq":3,"t":"h\u00e9\n"}`,
			want: wire.Message{Op: "text", Room: "lobby", Seq: 3, T: "hé\n"},
		},
		{
			name: "unknown fields are ignored",
			in:   `{"op":"ping","future":{"a":[1,2,3]},"v2":true}`,
			want: wire.Message{Op: "ping"},
		},
		{
			name: "whitespace around and inside",
			in:   " \t{ \"op\" : \"ping\" }\r",
			want: wire.Message{Op: "ping"},
		},
		{
			name: "a directory field makes a directory",
			in:   `{"op":"directory","service":"chat"}`,
			want: wire.Message{Op: "directory", Service: "chat"},
		},
		{
			name:     "invalid utf-8 in a string",
			in:       "{\"op\":\"text\",\"t\":\"\xff\"}",
			want:     wire.Message{},
			wantCode: wire.CodeBadUTF8,
		},
		{
			name:     "truncated utf-8 at the end",
			in:       "{\"op\":\"ping\"}\xe2\x82",
			wantCode: wire.CodeBadUTF8,
		},
		{
			name:     "utf-8 is checked before json",
			in:       "\xc0\xaf",
			wantCode: wire.CodeBadUTF8,
		},
		{name: "empty line", in: ``, wantCode: wire.CodeBadJSON},
		{name: "unterminated object", in: `{"op":"ping"`, wantCode: wire.CodeBadJSON},
		{name: "array", in: `[{"op":"ping"}]`, wantCode: wire.CodeBadJSON},
		{name: "string", in: `"ping"`, wantCode: wire.CodeBadJSON},
		{name: "number", in: `1`, wantCode: wire.CodeBadJSON},
		{name: "null", in: `null`, wantCode: wire.CodeBadJSON},
		{name: "null between spaces", in: " \tnull ", wantCode: wire.CodeBadJSON},
		{name: "two objects", in: `{"op":"ping"}{"op":"ping"}`, wantCode: wire.CodeBadJSON},
		{name: "trailing garbage", in: `{"op":"ping"} x`, wantCode: wire.CodeBadJSON},
		{name: "op not a string", in: `{"op":1}`, wantCode: wire.CodeBadJSON},
		{name: "version not a number", in: `{"op":"hello","v":"1"}`, wantCode: wire.CodeBadJSON},
		{name: "negative seq", in: `{"op":"ack","room":"r","seq":-1}`, wantCode: wire.CodeBadJSON},
		{name: "nodes not a list", in: `{"op":"directory","nodes":{}}`, wantCode: wire.CodeBadJSON},
		{
			name:     "no op",
			in:       `{"user":"ann"}`,
			want:     wire.Message{User: "ann"},
			wantCode: wire.CodeBadRequest,
		},
		{name: "empty object", in: `{}`, wantCode: wire.CodeBadRequest},
		{name: "empty op", in: `{"op":""}`, wantCode: wire.CodeBadRequest},
		{name: "null op", in: `{"op":null}`, wantCode: wire.CodeBadRequest},
		{
			name:     "unknown op",
			in:       `{"op":"fly","room":"r"}`,
			want:     wire.Message{Op: "fly", Room: "r"},
			wantCode: wire.CodeUnknownOp,
		},
		{
			name:     "ops are case sensitive",
			in:       `{"op":"PING"}`,
			want:     wire.Message{Op: "PING"},
			wantCode: wire.CodeUnknownOp,
		},
		{
			name:     "op with spaces",
			in:       `{"op":" ping"}`,
			want:     wire.Message{Op: " ping"},
			wantCode: wire.CodeUnknownOp,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wire.Decode([]byte(tt.in))
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Decode(%q) error: %v", tt.in, err)
				}
			} else {
				var we *wire.Error
				if !errors.As(err, &we) {
					t.Fatalf("Decode(%q) error = %v (%T), want a *wire.Error with code %q", tt.in, err, err, tt.wantCode)
				}
				if we.Code != tt.wantCode || we.Fatal {
					t.Errorf("Decode(%q) error = %+v, want code %q, not fatal", tt.in, we, tt.wantCode)
				}
				if !strings.HasPrefix(err.Error(), "wire: "+tt.wantCode+": ") {
					t.Errorf("Decode(%q) error text %q, want prefix %q", tt.in, err, "wire: "+tt.wantCode+": ")
				}
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("Decode(%q) message (-got +want):\n%s", tt.in, diff)
			}
		})
	}
}

func TestDecodeLongUnknownOp(t *testing.T) {
	tests := []struct {
		name string
		op   string
		want string // the error text
	}{
		{"short op kept whole", strings.Repeat("x", 64), `unknown op "` + strings.Repeat("x", 64) + `"`},
		{"long op truncated", strings.Repeat("x", 65), `unknown op "` + strings.Repeat("x", 64) + `…"`},
		{"truncated on a rune boundary", strings.Repeat("x", 63) + "éé", `unknown op "` + strings.Repeat("x", 63) + `…"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := wire.Decode(fmt.Appendf(nil, `{"op":%q}`, tt.op))
			var we *wire.Error
			if !errors.As(err, &we) || we.Code != wire.CodeUnknownOp {
				t.Fatalf("Decode error = %v, want unknown_op", err)
			}
			if diff := cmp.Diff(we.Text, tt.want); diff != "" {
				t.Errorf("error text (-got +want):\n%s", diff)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		in   error
		want wire.Message
	}{
		{
			name: "wire error",
			in:   wire.Errorf(wire.CodeRate, "%d chunks a second is too fast", 90),
			want: wire.Message{Op: wire.OpError, Code: "rate", Message: "90 chunks a second is too fast"},
		},
		{
			name: "wrapped wire error",
			in:   fmt.Errorf("session s-1: %w", wire.Errorf(wire.CodeLimit, "too many rooms")),
			want: wire.Message{Op: wire.OpError, Code: "limit", Message: "too many rooms"},
		},
		{
			name: "line too long",
			in:   wire.ErrLineTooLong,
			want: wire.Message{Op: wire.OpError, Code: "line_too_long", Message: "line exceeds the limit"},
		},
		{
			name: "other error",
			in:   errors.New("boom"),
			want: wire.Message{Op: wire.OpError, Code: "bad_request", Message: "boom"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(wire.ErrorMessage(tt.in), tt.want); diff != "" {
				t.Errorf("ErrorMessage(%v) (-got +want):\n%s", tt.in, diff)
			}
		})
	}
	if e := wire.Errorf(wire.CodeBadRequest, "x"); e.Fatal {
		t.Errorf("Errorf made a fatal error: %+v", e)
	}
	if !wire.ErrLineTooLong.Fatal {
		t.Errorf("ErrLineTooLong is not fatal")
	}
}

func BenchmarkDecodeHello(b *testing.B) {
	line := []byte(`{"op":"hello","v":1,"client":"switchboard-go/0.1","group":"eu/a"}`)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.Decode(line); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeDirectory(b *testing.B) {
	dir := &wire.Directory{Service: "chat", Self: "n0"}
	for i := range 5 {
		dir.Nodes = append(dir.Nodes, directory.Node{
			ID: fmt.Sprintf("n%d", i), Addr: fmt.Sprintf("10.0.0.%d:7000", i), HTTP: fmt.Sprintf("10.0.0.%d:8080", i),
			Group: "eu/a", Status: directory.Up, Users: 100 * i, Capacity: 1000, Version: "0.1.0", AgeMS: int64(i),
		})
	}
	m := wire.DirectoryMessage(dir)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = wire.Append(buf[:0], m); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

// Every kind of message answers Directory without panicking: the
// directory of a directory message, the fresh one of a refusal, or nil.
func TestMessageDirectory(t *testing.T) {
	refusal := wire.Message{Op: wire.OpError, Code: wire.CodeFull, Dir: sampleDirectory()}
	tests := []struct {
		name string
		in   string
		want *wire.Directory
	}{
		{"directory message", `{"op":"directory","v":1,` + sampleDirectoryJSON + `}`, sampleDirectory()},
		{"refusal with a directory", mustEncode(t, refusal), sampleDirectory()},
		{"error without one", `{"op":"error","code":"bad_json","message":"x"}`, nil},
		{"text", `{"op":"text","room":"r","seq":1,"t":"a"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := wire.Decode([]byte(strings.TrimSuffix(tt.in, "\n")))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(m.Directory(), tt.want); diff != "" {
				t.Errorf("Directory() (-got +want):\n%s", diff)
			}
			if m.Op != wire.OpDirectory && m.Nodes != nil {
				t.Errorf("a %s message has nodes %v", m.Op, m.Nodes)
			}
		})
	}
}

func mustEncode(t *testing.T, m wire.Message) string {
	t.Helper()
	b, err := wire.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// StringLen is never below what Append writes for a string, and equal to
// it for strings without control characters.
func TestStringLen(t *testing.T) {
	for _, s := range []string{
		"", "hello", `"quoted" \ back`, "<b>&amp;</b>", "é漢字🙂", "a\u2028b\u2029c",
		"\xff\xfe bad utf-8 \xc3", strings.Repeat(`"`, 64), "tab\there\nline\x01\x1f",
	} {
		line, err := wire.Encode(wire.Message{Op: wire.OpText, T: s})
		if err != nil {
			t.Fatal(err)
		}
		got := len(line) - len(`{"op":"text","t":}`+"\n")
		if s == "" {
			got = 2 // an empty t is left out
		}
		want := wire.StringLen(s)
		if want < got {
			t.Errorf("StringLen(%q) = %d, below the %d bytes written", s, want, got)
		}
		if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 }) && want != got {
			t.Errorf("StringLen(%q) = %d, want the %d bytes Append writes", s, want, got)
		}
	}
}

// A client line stuffed with fields only servers send (a directory's
// nodes, a room's state) costs the node the bytes it reads, not the
// structures those fields would decode into.
func TestDecodeFromClientSkipsServerFields(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"op":"ping","nodes":[{}`)
	for b.Len() < wire.MaxLine-100 {
		b.WriteString(`,{}`)
	}
	b.WriteString(`],"state":{"lines":[],"live":{}},"room":"r"}`)
	line := []byte(b.String())
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m, err := wire.DecodeFromClient(line)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if m.Op != wire.OpPing || m.Room != "r" || m.Nodes != nil || m.State != nil {
		t.Errorf("decoded op %q room %q with %d nodes and state %v, want a ping in room r and no server fields", m.Op, m.Room, len(m.Nodes), m.State != nil)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<10 {
		t.Errorf("decoding a %d-byte line allocated %d bytes, want at most 64 KiB", len(line), alloc)
	}
	// The same errors as Decode for what a client may send.
	for _, tt := range []struct{ line, code string }{
		{`{"op":"text","seq":-1}`, wire.CodeBadJSON},
		{`{"op":"text","t":5}`, wire.CodeBadJSON},
		{`[1]`, wire.CodeBadJSON},
		{`{"room":"r"}`, wire.CodeBadRequest},
		{`{"op":"nope"}`, wire.CodeUnknownOp},
		{"{\"op\":\"ping\",\"t\":\"\xff\"}", wire.CodeBadUTF8},
	} {
		_, err := wire.DecodeFromClient([]byte(tt.line))
		var we *wire.Error
		if !errors.As(err, &we) || we.Code != tt.code {
			t.Errorf("DecodeFromClient(%s) = %v, want %s", tt.line, err, tt.code)
		}
	}
}

func TestRoomNameProblem(t *testing.T) {
	tests := []struct {
		name, room string
		ok         bool
	}{
		{"simple", "lobby", true},
		{"all classes", "Ab-9_x.y", true},
		{"64 bytes", strings.Repeat("r", 64), true},
		{"empty", "", false},
		{"65 bytes", strings.Repeat("r", 65), false},
		{"space", "a b", false},
		{"star", "*", false},
		{"gt", ">", false},
		{"slash", "a/b", false},
		{"equals", "a=b", false},
		{"non-ascii", "café", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := wire.RoomNameProblem(tt.room) == ""; got != tt.ok {
				t.Errorf("RoomNameProblem(%q) ok = %v, want %v (%s)", tt.room, got, tt.ok, wire.RoomNameProblem(tt.room))
			}
		})
	}
}

// TestTextCost: a chunk counts against the byte rate at least as much as
// the escapes a line carries it with, for the control characters that
// take six bytes; other text counts its own bytes.
func TestTextCost(t *testing.T) {
	for _, tt := range []struct {
		text string
		want int
	}{
		{"", 0},
		{"hello", 5},
		{"é", 2},
		{"\b\t\n\f\r", 5},
		{"\x01", 6},
		{"a\x1bb", 8},
		{"\x00\x1f", 12},
	} {
		if got := wire.TextCost(tt.text); got != tt.want {
			t.Errorf("wire.TextCost(%q) = %d, want %d", tt.text, got, tt.want)
		}
	}
	// Never less than a six-byte escape on the wire; a two-byte one is
	// within twice the text's length, as a quote's is.
	for c := range 0x20 {
		s := string(rune(c))
		line, err := wire.Encode(wire.Message{Op: wire.OpText, Room: "r", Seq: 1, T: s})
		if err != nil {
			t.Fatal(err)
		}
		plain, err := wire.Encode(wire.Message{Op: wire.OpText, Room: "r", Seq: 1, T: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if onWire := len(line) - len(plain) + 1; onWire > 2 && wire.TextCost(s) < onWire {
			t.Errorf("U+%04X costs %d, its escape on the wire takes %d", c, wire.TextCost(s), onWire)
		}
	}
}
