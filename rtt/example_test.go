package rtt_test

import (
	"fmt"

	"github.com/switchboard/switchboard/rtt"
)

func Example() {
	room := rtt.NewRoom(0)
	room.Apply("ann", 1, "Helo")
	room.Apply("ann", 2, "\blo") // erase the "o", type "lo"
	room.Apply("bob", 1, "Hi")
	res := room.Apply("ann", 3, "\r\n")
	fmt.Printf("completed: %q\n", res.Lines)
	fmt.Printf("resend: duplicate=%v\n", room.Apply("ann", 3, "\r\n").Duplicate)
	res = room.Apply("bob", 3, "!") // seq 2 was lost
	fmt.Printf("gap=%v bob: %+q\n", res.Gap, room.Live("bob"))

	view, err := rtt.FromState(0, room.State())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("restored: %q %+q\n", view.State().Lines, view.State().Live)
	// Output:
	// completed: [{"ann" "Hello"}]
	// resend: duplicate=true
	// gap=true bob: "Hi\ufffd!"
	// restored: [{"ann" "Hello"}] map["ann":"" "bob":"Hi\ufffd!"]
}

func ExampleBackspace() {
	fmt.Printf("%q\n", rtt.Backspace("café"))
	fmt.Printf("%q\n", rtt.Backspace("cafe\u0301"))
	fmt.Printf("%q\n", rtt.Backspace("ok 👍🏽"))
	fmt.Printf("%q\n", rtt.Backspace("go 🇸🇪"))
	// Output:
	// "caf"
	// "caf"
	// "ok "
	// "go "
}
