package wire_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/wire"
)

// The view fields: a hello's max and a directory's total travel as the
// protocol says, are left out when zero (a v1 peer sees exactly what it
// saw before views), and survive a round trip in both kinds of message
// that carry a directory.
func TestViewFields(t *testing.T) {
	nodes := []directory.Node{{ID: "n1", Addr: "h:1", Status: directory.Up, Capacity: 5}}
	tests := []struct {
		name string
		m    wire.Message
		want string
	}{
		{"hello with max", wire.Message{Op: wire.OpHello, V: 1, Group: "eu/a", Max: 64},
			`{"op":"hello","v":1,"group":"eu/a","max":64}`},
		{"hello without max", wire.Message{Op: wire.OpHello, V: 1},
			`{"op":"hello","v":1}`},
		{"a view", wire.DirectoryMessage(&wire.Directory{Service: "s", Self: "n1", Nodes: nodes, Total: 1000}),
			`{"op":"directory","v":1,"service":"s","self":"n1","nodes":[{"id":"n1","addr":"h:1","status":"up","users":0,"capacity":5,"age_ms":0}],"total":1000}`},
		{"a whole directory", wire.DirectoryMessage(&wire.Directory{Service: "s", Self: "n1", Nodes: nodes}),
			`{"op":"directory","v":1,"service":"s","self":"n1","nodes":[{"id":"n1","addr":"h:1","status":"up","users":0,"capacity":5,"age_ms":0}]}`},
		{"a view with a refusal", wire.Message{Op: wire.OpError, Code: wire.CodeFull, Dir: &wire.Directory{Service: "s", Self: "n1", Nodes: nodes, Total: 7}},
			`{"op":"error","code":"full","directory":{"service":"s","self":"n1","nodes":[{"id":"n1","addr":"h:1","status":"up","users":0,"capacity":5,"age_ms":0}],"total":7}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line, err := wire.Encode(tt.m)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(line), tt.want+"\n"); diff != "" {
				t.Fatalf("encoding (-got +want):\n%s", diff)
			}
			back, err := wire.Decode(line[:len(line)-1])
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(back, tt.m); diff != "" {
				t.Fatalf("round trip (-got +want):\n%s", diff)
			}
			if d := tt.m.Directory(); d != nil {
				if diff := cmp.Diff(back.Directory(), d); diff != "" {
					t.Fatalf("directory read back (-got +want):\n%s", diff)
				}
			}
		})
	}
}
