package sipfront_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/sipcall"
)

// TestTsharkDecodesCall checks the front's SIP, SDP and RTP against a
// decoder we did not write: Wireshark's (Debian's tshark package, which
// .ci/run installs). dumpcap captures a call on the loopback interface,
// and tshark must find the SDP's text stream, RTP set up by it, RFC 2198
// blocks of the t140 payload type, and in them the text typed each way
// (tshark 4.0 has no T.140 dissector: the blocks' bytes are the text).
// Capturing needs root or CAP_NET_RAW on dumpcap (.ci/run grants it when
// not root).
func TestTsharkDecodesCall(t *testing.T) {
	if _, err := exec.LookPath("dumpcap"); err != nil {
		t.Fatal("this test needs tshark and dumpcap (apt-get install tshark; .ci/run installs it)")
	}
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], nil)
	bob := join(t, c.Nodes[0], "bob", "lobby")

	pcap := filepath.Join(t.TempDir(), "call.pcapng")
	ctx, cancel := context.WithTimeout(context.Background(), 2*settle)
	defer cancel()
	// dumpcap (tshark's capture engine) keeps the SIP front's port and
	// RTP packets of the payload types in play (version 2, PT 98 or
	// 100), and a probe port of ours: the last probe found in the file
	// shows that every packet before it was written.
	probe, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	probePort := strconv.Itoa(probe.LocalAddr().(*net.UDPAddr).Port)
	filter := fmt.Sprintf("udp and host 127.0.0.1 and (port %d or port %s or (udp[8] & 0xc0 == 0x80 and (udp[9] & 0x7f == 98 or udp[9] & 0x7f == 100)))",
		front.Addr().Port(), probePort)
	capture := exec.CommandContext(ctx, "dumpcap", "-i", "lo", "-B", "16", "-f", filter, "-w", pcap, "-q")
	stderr, err := capture.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := capture.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var seen []string
		for sc.Scan() {
			seen = append(seen, sc.Text())
			if strings.Contains(sc.Text(), "Capturing on") {
				started <- nil
				for sc.Scan() {
				}
				return
			}
		}
		started <- fmt.Errorf("dumpcap did not start capturing (it needs root or CAP_NET_RAW): %s", strings.Join(seen, " | "))
	}()
	select {
	case err := <-started:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("dumpcap did not start capturing in time")
	}

	// probeThrough sends probes until one is in the file: the capture is
	// live, and everything sent before the probe was written.
	n := 0
	probeThrough := func() {
		t.Helper()
		nodetest.Eventually(t, settle, func() error {
			n++
			if _, err := probe.WriteToUDPAddrPort([]byte(fmt.Sprintf("probe %d", n)), probe.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
				return err
			}
			out, err := exec.Command("tshark", "-r", pcap, "-Y", fmt.Sprintf("udp.dstport == %s && data.data == %x", probePort, fmt.Sprintf("probe %d", n))).Output()
			if err != nil || len(out) == 0 {
				return fmt.Errorf("probe %d is not in the capture yet (%v)", n, err)
			}
			return nil
		})
	}
	probeThrough()

	call := dial(t, sipTarget(front, "lobby"), sipcall.Config{User: "alice", Interval: 20 * time.Millisecond})
	for _, ch := range []string{"h", "e", "l", "l", "o"} {
		call.Send(ch)
		time.Sleep(40 * time.Millisecond)
	}
	nodetest.Eventually(t, settle, func() error {
		if got := bob.text("sip:alice@127.0.0.1"); got != "hello" {
			return fmt.Errorf("bob sees %q", got)
		}
		return nil
	})
	if _, err := bob.sess.SendText("lobby", "hi there\n"); err != nil {
		t.Fatal(err)
	}
	collect(t, call, "hi there")
	hctx, hcancel := context.WithTimeout(context.Background(), settle)
	defer hcancel()
	if err := call.Hangup(hctx); err != nil {
		t.Fatal(err)
	}
	// The last probe in the file: everything before it was written.
	probeThrough()
	if err := capture.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := capture.Wait(); err != nil {
		t.Logf("dumpcap exited: %v", err)
	}

	// read prints fields of the packets filter keeps; occurrence says
	// which of a field's occurrences: l the last, a all (comma-joined).
	read := func(occurrence, filter string, fields ...string) [][]string {
		args := []string{"-r", pcap, "-Y", filter, "-T", "fields", "-E", "occurrence=" + occurrence, "-E", "separator=/t"}
		for _, f := range fields {
			args = append(args, "-e", f)
		}
		out, err := exec.Command("tshark", args...).Output()
		if err != nil {
			t.Fatalf("tshark -r: %v", err)
		}
		var rows [][]string
		for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
			if line != "" {
				rows = append(rows, strings.Split(line, "\t"))
			}
		}
		return rows
	}
	sdp := read("a", "sdp && sip", "sip.Method", "sip.Status-Code", "sdp.media.media", "sdp.mime.type")
	var offers, answers int
	for _, r := range sdp {
		if len(r) == 4 && r[2] == "text" && strings.Contains(r[3], "t140") && strings.Contains(r[3], "red") {
			switch {
			case r[0] == "INVITE":
				offers++
			case r[1] == "200":
				answers++
			}
		}
	}
	if offers == 0 || answers == 0 {
		t.Errorf("tshark found %d INVITEs and %d 200s with an m=text of red and t140: %q", offers, answers, sdp)
	}
	// The primary block's text of each packet to a port, in capture order.
	text := func(port uint16) string {
		var b strings.Builder
		for _, r := range read("l", "rtp && udp.dstport == "+strconv.Itoa(int(port)), "rtp.p_type", "rtp.payload") {
			if len(r) < 2 || r[0] != "98" { // the last block header's payload type: t140
				t.Errorf("tshark decoded a packet to %d as %q, not RFC 2198 blocks of t140", port, r)
				continue
			}
			if r[1] == "<MISSING>" || r[1] == "" {
				continue // a packet of redundancy alone
			}
			data, err := hex.DecodeString(strings.ReplaceAll(r[1], ":", ""))
			if err != nil {
				t.Fatalf("payload %q: %v", r[1], err)
			}
			b.Write(data)
		}
		return b.String()
	}
	if got := text(call.Answer.Addr.Port()); got != "hello" {
		t.Errorf("tshark read the caller's text as %q, want %q", got, "hello")
	}
	if got, want := text(call.LocalRTP().Port()), "[bob]: hi there\u2028"; got != want {
		t.Errorf("tshark read the front's text as %q, want %q", got, want)
	}
}
