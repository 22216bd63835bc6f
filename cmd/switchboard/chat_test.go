package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The terminal chat client, driven through tmux as a person would use it,
// shows a remote user's typing live: characters of an unfinished line
// typed on another node appear on its screen, as do completed lines.
func TestChatShowsRemoteTypingLive(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("tmux is not installed (.ci/run installs it)")
	}
	c := startCluster(t, 3)
	n1, n2 := c.Nodes[0], c.Nodes[1]
	session := fmt.Sprintf("sbchat%d", time.Now().UnixNano())
	bob := fmt.Sprintf("%s chat --service %s --policy dns-only --user bob lobby", binary, n2.Addr)
	if out, err := exec.Command("tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "20", bob).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("tmux", "kill-session", "-t", session).Run() })
	screen := func() string {
		out, _ := exec.Command("tmux", "capture-pane", "-p", "-t", session).Output()
		return string(out)
	}
	waitScreen := func(what string, want ...string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			s := screen()
			missing := ""
			for _, w := range want {
				if !strings.Contains(s, w) {
					missing = w
					break
				}
			}
			if missing == "" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: bob's screen never showed %q:\n%s", what, missing, s)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitScreen("bob joins", "room lobby as bob", "users: bob")

	// Alice, attached to another node, types a line and then half of one.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := exec.CommandContext(ctx, binary, "chat", "--script", "--pace", "10ms", "--linger", "20s",
		"--service", n1.Addr, "--policy", "dns-only", "--user", "alice", "lobby")
	alice.Stdin = strings.NewReader("hello bob\nstill typ")
	if err := alice.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = alice.Process.Kill(); _ = alice.Wait() })
	waitScreen("alice types", "alice: hello bob", "alice> still typ")
	if s := screen(); !strings.Contains(s, "on n2") {
		t.Errorf("bob's header does not say he is on n2:\n%s", s)
	}
}
