package client_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/switchboard/switchboard/client"
)

// Example attaches to a service as alice, preferring zone eu/a, and says
// which node it landed on. The target is the service's common address,
// read here from SWITCHBOARD_TARGET (this package's tests point it at a
// one-node service they start); in production it is a name such as
// "dns:chat.example.com".
func Example() {
	target := os.Getenv("SWITCHBOARD_TARGET") // e.g. "dns:chat.example.com"

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := client.Dial(ctx, target, client.WithUser("alice"), client.WithGroup("eu/a"))
	if err != nil {
		fmt.Println("dial:", err)
		return
	}
	defer s.Close()
	fmt.Println("attached to", s.Node().ID)
	fmt.Println("nodes in the directory:", len(s.Directory().Nodes))
	// Output:
	// attached to n1
	// nodes in the directory: 1
}

// ExampleSession_SendTextWait joins a room, waiting for its state, and
// types a line, waiting until the service has stored it durably; the
// session's state and error say it is alive.
func ExampleSession_SendTextWait() {
	target := os.Getenv("SWITCHBOARD_TARGET") // e.g. "dns:chat.example.com"

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := client.Dial(ctx, target, client.WithUser("bob"))
	if err != nil {
		fmt.Println("dial:", err)
		return
	}
	defer s.Close()
	go func() { // the waits are answered in order with the events: read them
		for range s.Events() {
		}
	}()
	room := fmt.Sprintf("example-%d", time.Now().UnixNano()) // a new room
	state, err := s.JoinWait(ctx, room)
	if err != nil {
		fmt.Println("join:", err)
		return
	}
	fmt.Println("in the room:", state.Users)
	seq, err := s.SendTextWait(ctx, room, "hello\n")
	if err != nil {
		fmt.Println("text:", err)
		return
	}
	fmt.Println("stored as seq", seq)
	fmt.Println(s.State(), s.Err())
	// Output:
	// in the room: [bob]
	// stored as seq 1
	// attached <nil>
}
