package sipfront_test

import (
	"bytes"
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
	"sync"
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
	t.Parallel()
	if _, err := exec.LookPath("dumpcap"); err != nil {
		t.Fatal("this test needs tshark and dumpcap (apt-get install tshark; .ci/run installs it)")
	}
	c := nodetest.Start(t, 1, nodetest.Options{})
	c.WaitRoomsReady(settle)
	front := startFront(t, c.Nodes[0], nil)
	bob := join(t, c.Nodes[0], "bob", "lobby")

	pcap := filepath.Join(t.TempDir(), "call.pcap")
	ctx, cancel := context.WithTimeout(context.Background(), 2*settle)
	defer cancel()
	// dumpcap (tshark's capture engine) keeps the SIP front's port and
	// RTP packets of the payload types in play (version 2, PT 98 or
	// 100), and a probe port of ours: a probe found in the capture shows
	// that every packet before it was captured.
	probe, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	probePort := strconv.Itoa(probe.LocalAddr().(*net.UDPAddr).Port)
	filter := fmt.Sprintf("udp and host 127.0.0.1 and (port %d or port %s or (udp[8] & 0xc0 == 0x80 and (udp[9] & 0x7f == 98 or udp[9] & 0x7f == 100)))",
		front.Addr().Port(), probePort)
	// dumpcap writes the capture (pcap) to a pipe, which it flushes as
	// packets come; this test keeps the bytes, watching for its probes.
	capture := exec.CommandContext(ctx, "dumpcap", "-i", "lo", "-B", "16", "-f", filter, "-P", "-w", "-", "-q")
	var errs nodetest.LockedBuffer
	capture.Stderr = &errs
	stdout, err := capture.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := capture.Start(); err != nil {
		t.Fatal(err)
	}
	var capMu sync.Mutex
	var captured []byte
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		buf := make([]byte, 64<<10)
		for {
			n, err := stdout.Read(buf)
			capMu.Lock()
			captured = append(captured, buf[:n]...)
			capMu.Unlock()
			if err != nil {
				return
			}
		}
	}()

	// probeThrough sends probes until one of them is in the capture: the
	// capture is live, and everything sent before the first was captured.
	round := 0
	probeThrough := func() {
		t.Helper()
		round++
		mark := []byte(fmt.Sprintf("switchboard capture probe, round %d;", round))
		nodetest.Eventually(t, settle, func() error {
			if _, err := probe.WriteToUDPAddrPort(mark, probe.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
				return err
			}
			// The capture holds the packets' bytes as they were.
			capMu.Lock()
			defer capMu.Unlock()
			if !bytes.Contains(captured, mark) {
				select {
				case <-copied:
					return fmt.Errorf("dumpcap stopped (capturing needs root or CAP_NET_RAW): %s", errs.String())
				default:
				}
				return fmt.Errorf("no probe of round %d in the %d bytes captured yet", round, len(captured))
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
	<-copied
	if err := capture.Wait(); err != nil {
		t.Logf("dumpcap exited: %v", err)
	}
	capMu.Lock()
	err = os.WriteFile(pcap, captured, 0o600)
	capMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}

	// read prints fields of the packets filter keeps; occurrence says
	// which of a field's occurrences: l the last, a all (comma-joined).
	// One pass of tshark over the capture (it starts slowly): every SIP
	// message with SDP and every RTP packet, each field's occurrences
	// joined with commas.
	args := []string{"-r", pcap, "-Y", "(sip && sdp) || rtp", "-T", "fields", "-E", "occurrence=a", "-E", "separator=/t"}
	for _, f := range []string{"sip.Method", "sip.Status-Code", "sdp.media.media", "sdp.mime.type", "udp.dstport", "rtp.p_type", "rtp.payload"} {
		args = append(args, "-e", f)
	}
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark -r: %v", err)
	}
	last := func(field string) string { return field[strings.LastIndex(field, ",")+1:] }
	var offers, answers int
	texts := map[string]*strings.Builder{}
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		r := strings.Split(line, "\t")
		if len(r) != 7 {
			t.Fatalf("tshark printed %q", line)
		}
		if r[2] == "text" && strings.Contains(r[3], "t140") && strings.Contains(r[3], "red") {
			switch {
			case r[0] == "INVITE":
				offers++
			case r[1] == "200":
				answers++
			}
		}
		if r[5] == "" {
			continue // not RTP
		}
		// The last block header's payload type is the primary's: t140.
		if last(r[5]) != "98" {
			t.Errorf("tshark decoded a packet to port %s as payload types %q, not RFC 2198 blocks of t140", r[4], r[5])
			continue
		}
		if texts[r[4]] == nil {
			texts[r[4]] = &strings.Builder{}
		}
		payload := last(r[6])
		if payload == "<MISSING>" || payload == "" {
			continue // a packet of redundancy alone
		}
		data, err := hex.DecodeString(strings.ReplaceAll(payload, ":", ""))
		if err != nil {
			t.Fatalf("payload %q: %v", payload, err)
		}
		texts[r[4]].Write(data)
	}
	if offers == 0 || answers == 0 {
		t.Errorf("tshark found %d INVITEs and %d 200s with an m=text of red and t140:\n%s", offers, answers, out)
	}
	text := func(port uint16) string {
		if b := texts[strconv.Itoa(int(port))]; b != nil {
			return b.String()
		}
		return ""
	}
	if got := text(call.Answer.Addr.Port()); got != "hello" {
		t.Errorf("tshark read the caller's text as %q, want %q", got, "hello")
	}
	if got, want := text(call.LocalRTP().Port()), "[bob]: hi there\u2028"; got != want {
		t.Errorf("tshark read the front's text as %q, want %q", got, want)
	}
}
