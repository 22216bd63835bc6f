package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/sipcall"
)

// The SIP front is off by default, and on loopback unless --sip-open says
// strangers may call; with user tokens it needs the key to sign its own.
func TestSIPFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"loopback", []string{"--sip", "127.0.0.1:5060"}, 0, "settings are valid"},
		{"all addresses, unasked", []string{"--sip", "0.0.0.0:5060"}, 2, "SIP callers are not authenticated; add --sip-open"},
		{"all addresses, asked", []string{"--sip", ":5060", "--sip-open"}, 0, "settings are valid"},
		{"not an address", []string{"--sip", "5060"}, 2, `--sip "5060"`},
		{"tokens without a signer", []string{"--sip", "127.0.0.1:5060", "--token-key", "/nonexistent/token.pub"}, 2, "needs --sip-token-signer"},
		{"the unconfirmed calls' pool", []string{"--sip", "127.0.0.1:5060", "--sip-max-unconfirmed", "5", "--sip-ack-grace", "500ms"}, 0, "settings are valid"},
		{"an ACK grace below T1's range", []string{"--sip", "127.0.0.1:5060", "--sip-ack-grace", "10ms"}, 2, "sip-ack-grace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HOME", t.TempDir())
			code, stdout, stderr := runArgs(t, append(append([]string{"serve"}, tt.args...), "--check")...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d\n%s%s", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stdout+stderr, tt.want) {
				t.Errorf("output lacks %q:\n%s%s", tt.want, stdout, stderr)
			}
		})
	}
}

// The SIP front's signing key is read when the settings are checked: one
// that does not load, or whose tokens the node's --token-key would refuse,
// is an error before the node starts, and one other users may read is
// warned about, as the node's other secret files are.
func TestSIPTokenSigner(t *testing.T) {
	ours, theirs := t.TempDir(), t.TempDir()
	for _, dir := range []string{ours, theirs} {
		if code, stdout, stderr := runArgs(t, "keygen", "--dir", dir); code != 0 {
			t.Fatalf("keygen: exit %d\n%s%s", code, stdout, stderr)
		}
	}
	readable := filepath.Join(t.TempDir(), "token.key")
	key, err := os.ReadFile(filepath.Join(ours, "token.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(readable, key, 0o644); err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(ours, "token.pub")
	tests := []struct {
		name, signer string
		code         int
		want         string
	}{
		{"its pair", filepath.Join(ours, "token.key"), 0, "settings are valid"},
		{"another pair's", filepath.Join(theirs, "token.key"), exitFailure, "is not the private half of any key in --token-key"},
		{"missing", filepath.Join(ours, "none.key"), exitFailure, "--sip-token-signer"},
		{"a public key", pub, exitFailure, "--sip-token-signer"},
		{"readable by others", readable, 0, "setting=sip-token-signer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HOME", t.TempDir())
			code, stdout, stderr := runArgs(t, "serve", "--sip", "127.0.0.1:5060", "--token-key", pub, "--sip-token-signer", tt.signer, "--check")
			if code != tt.code {
				t.Errorf("exit code %d, want %d\n%s%s", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stdout+stderr, tt.want) {
				t.Errorf("output lacks %q:\n%s%s", tt.want, stdout, stderr)
			}
			if warned := strings.Contains(stderr, "readable by other users"); warned != (tt.signer == readable) {
				t.Errorf("warned of a readable file: %v, want %v\n%s", warned, tt.signer == readable, stderr)
			}
		})
	}
}

// serve --sip answers a call: the caller's text reaches a TCP member of
// the room, and stopping serve ends the call with a BYE that says why.
// The bridge dials the node where this host reaches it, not where the
// node advertises itself: a node behind a NAT advertises an address the
// host itself may not reach (here 127.0.0.2, where nothing listens).
func TestServeSIPCall(t *testing.T) {
	port := freePort(t)
	tests := []struct {
		name string
		args []string
		dial string // the node's listener, "" for the address serve prints
	}{
		{"advertising its own address", []string{"--listen", "127.0.0.1:0"}, ""},
		{"advertising another address", []string{"--listen", "127.0.0.1:" + port, "--advertise", "127.0.0.2:" + port}, "127.0.0.1:" + port},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { serveSIPCall(t, tt.args, tt.dial) })
	}
}

// freePort is a TCP port free on 127.0.0.1 a moment ago, drawn below
// the kernel's ephemeral range (localcluster.FreePort), so that no
// listener on port 0 or outgoing connection of a test running meanwhile
// takes it before serve binds it.
func freePort(t *testing.T) string {
	t.Helper()
	port, err := localcluster.FreePort([]string{"127.0.0.1"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.Itoa(port)
}

func serveSIPCall(t *testing.T, listen []string, nodeAddr string) {
	var stdout, stderr nodetest.LockedBuffer
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runServe(ctx, append([]string{"--service", "sip.test", "--http", "", "--data", t.TempDir(),
			"--sip", "127.0.0.1:0", "--drain-grace", "0", "--log-level", "warn"}, listen...), &stdout, &stderr)
	}()
	var sipAddr string
	addrs := regexp.MustCompile(`on (127\.0\.0\.\d:\d+) \(http.*\n(?s:.*)SIP front on (127\.0\.0\.1:\d+)`)
	nodetest.Eventually(t, 30*time.Second, func() error {
		m := addrs.FindStringSubmatch(stdout.String())
		if m == nil {
			return fmt.Errorf("serve printed %q", stdout.String())
		}
		if nodeAddr == "" {
			nodeAddr = m[1]
		}
		sipAddr = m[2]
		return nil
	})
	if !strings.Contains(stderr.String(), "callers are not authenticated") {
		t.Errorf("the log does not say callers are unauthenticated:\n%s", stderr.String())
	}
	dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bob, err := client.Dial(dctx, nodeAddr, client.WithUser("bob"))
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if _, err := bob.JoinWait(dctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	call, err := sipcall.Dial(dctx, "sip:lobby@"+sipAddr, sipcall.Config{User: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	defer call.Close()
	call.Send("hi bob")
	var got strings.Builder
	for !strings.Contains(got.String(), "hi bob") {
		select {
		case e := <-bob.Events():
			if re, ok := e.Room(); ok && re.Kind == client.TextEvent && re.From == "sip:ann@127.0.0.1" {
				got.WriteString(re.Text)
			}
		case <-dctx.Done():
			t.Fatalf("bob got %q from the caller", got.String())
		}
	}
	stop()
	select {
	case <-call.Ended():
	case <-dctx.Done():
		t.Fatal("stopping serve did not end the call")
	}
	if !strings.Contains(call.Reason(), "shutting down") {
		t.Errorf("BYE Reason %q", call.Reason())
	}
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}
