package webui_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/internal/web"
	"github.com/switchboard/switchboard/stats"
	"github.com/switchboard/switchboard/wire"
)

// mem is what a node's /metrics says of its memory.
type mem struct{ heap, stack, rss, goroutines, gcs float64 }

// readMem makes the node collect garbage twice (every read of /metrics
// allocates: read until its GC count has grown by two), then reads it.
func readMem(ctx context.Context, addr string) (mem, error) {
	read := func() (mem, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
		if err != nil {
			return mem{}, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return mem{}, fmt.Errorf("reading the metrics: %w", err)
		}
		defer resp.Body.Close()
		var m mem
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			name, rest, _ := strings.Cut(sc.Text(), " ")
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				continue
			}
			switch name {
			case "go_memstats_heap_inuse_bytes":
				m.heap = v
			case "go_memstats_stack_inuse_bytes":
				m.stack = v
			case "process_resident_memory_bytes":
				m.rss = v
			case "go_goroutines":
				m.goroutines = v
			case "go_gc_duration_seconds_count":
				m.gcs = v
			}
		}
		return m, sc.Err()
	}
	first, err := read()
	if err != nil {
		return mem{}, err
	}
	for last := first; last.gcs < first.gcs+2; {
		if last, err = read(); err != nil {
			return mem{}, err
		}
	}
	// Let the runtime sweep what the collections freed (a measurement's
	// pause, not a synchronisation).
	time.Sleep(500 * time.Millisecond)
	return read()
}

// BenchmarkIdleWebSocketMemory measures what an idle attached session
// costs a node, over WebSocket and, for comparison, over TCP: 2,000
// sessions on a node process of its own, measured once whatever b.N.
//
//	go test ./internal/webui -run '^$' -bench IdleWebSocketMemory -benchtime 1x
func BenchmarkIdleWebSocketMemory(b *testing.B) {
	binary, err := localcluster.Build(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("websocket", func(b *testing.B) {
		measureIdle(b, binary, func(ctx context.Context, n *localcluster.Node, user string) (io.Closer, error) {
			ws, err := attachWS(ctx, n.HTTP, user)
			if err != nil {
				return nil, err
			}
			return closer(func() error { return ws.CloseNow() }), nil
		})
	})
	b.Run("tcp", func(b *testing.B) {
		measureIdle(b, binary, func(ctx context.Context, n *localcluster.Node, user string) (io.Closer, error) {
			return attachTCP(ctx, n.Addr, user)
		})
	})
}

type closer func() error

func (f closer) Close() error { return f() }

// measureIdle attaches 2,000 idle sessions to a node process of its own
// and reports what they cost it.
func measureIdle(b *testing.B, binary string, attach func(context.Context, *localcluster.Node, string) (io.Closer, error)) {
	const sessions = 2000
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := localcluster.Start(ctx, localcluster.Config{Binary: binary, Nodes: 1, Standalone: true, Capacity: sessions + 100, DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Stop()
	addr := c.Nodes[0].HTTP
	before, err := readMem(ctx, addr)
	if err != nil {
		b.Fatal(err)
	}
	conns := make([]io.Closer, sessions)
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	next := make(chan int)
	for range 50 {
		wg.Go(func() {
			for i := range next {
				conn, err := attach(ctx, c.Nodes[0], fmt.Sprintf("idle%d", i))
				if err != nil {
					errs <- err
					continue
				}
				conns[i] = conn
			}
		})
	}
	for i := range sessions {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	defer func() {
		for _, conn := range conns {
			_ = conn.Close()
		}
	}()
	after, err := readMem(ctx, addr)
	if err != nil {
		b.Fatal(err)
	}
	per := func(a, b float64) float64 { return (a - b) / sessions / 1024 }
	b.ReportMetric(per(after.heap, before.heap), "heap-KiB/session")
	b.ReportMetric(per(after.stack, before.stack), "stack-KiB/session")
	b.ReportMetric(per(after.heap+after.stack, before.heap+before.stack), "heap+stack-KiB/session")
	b.ReportMetric(per(after.rss, before.rss), "RSS-KiB/session")
	b.ReportMetric((after.goroutines-before.goroutines)/sessions, "goroutines/session")
}

// attachTCP attaches a protocol session over TCP and leaves it idle.
func attachTCP(ctx context.Context, addr, user string) (io.Closer, error) {
	c, err := client.DialConn(ctx, nil, addr)
	if err != nil {
		return nil, err
	}
	if _, err := c.Hello(ctx, "memory/1", ""); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.Send(wire.Message{Op: wire.OpAttach, User: user}); err != nil {
		c.Close()
		return nil, err
	}
	for {
		m, err := c.Recv(ctx)
		if err != nil {
			c.Close()
			return nil, err
		}
		switch m.Op {
		case wire.OpAttached:
			return closer(func() error { c.Close(); return nil }), nil
		case wire.OpError:
			c.Close()
			return nil, fmt.Errorf("attaching %s: %s %s", user, m.Code, m.Message)
		}
	}
}

// attachWS opens a WebSocket session and attaches it, then leaves it
// idle (nothing reads it: an attached idle session receives nothing).
func attachWS(ctx context.Context, addr, user string) (*websocket.Conn, error) {
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+web.WebSocketPath, &websocket.DialOptions{Subprotocols: []string{web.Subprotocol}})
	if err != nil {
		return nil, err
	}
	for _, m := range []wire.Message{{Op: wire.OpHello, V: wire.Version, Client: "memory/1"}, {Op: wire.OpAttach, User: user}} {
		line, err := wire.Encode(m)
		if err != nil {
			return nil, err
		}
		if err := ws.Write(ctx, websocket.MessageText, bytes.TrimSuffix(line, []byte("\n"))); err != nil {
			return nil, err
		}
	}
	for {
		_, p, err := ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		m, err := wire.Decode(p)
		if err != nil {
			return nil, err
		}
		switch m.Op {
		case wire.OpAttached:
			return ws, nil
		case wire.OpError:
			return nil, fmt.Errorf("attaching %s: %s %s", user, m.Code, m.Message)
		}
	}
}

// BenchmarkBrowserKeystroke measures keystroke to screen between two
// real browser pages attached to different nodes of a three-node cluster
// (processes): from the moment ann's page sends a character to the
// moment bob's page has applied it to his view of her line (the screen
// shows it at the next frame). 300 characters, typed 20 a second.
//
//	go test ./internal/webui -run '^$' -bench BrowserKeystroke -benchtime 1x
func BenchmarkBrowserKeystroke(b *testing.B) {
	binary, err := localcluster.Build(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := localcluster.Start(ctx, localcluster.Config{Binary: binary, Nodes: 3, Service: "chat.test", DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Stop()
	browser := newBrowser(b)
	ann := page(b, browser, c.Nodes[0].HTTP, "ann")
	annNode := nodeOf(b, ann)
	if err := localcluster.Await(ctx, wait, func(ctx context.Context) error {
		d, err := c.Nodes[0].Directory(ctx)
		if err != nil {
			return err
		}
		for _, n := range d.Nodes {
			if n.ID == annNode && n.Users == 1 {
				return nil
			}
		}
		return fmt.Errorf("the directory does not count ann yet")
	}); err != nil {
		b.Fatal(err)
	}
	bob := page(b, browser, c.Nodes[0].HTTP, "bob")
	if nodeOf(b, bob) == annNode {
		b.Fatal("ann and bob on one node")
	}
	const chars = 300
	eval[bool](b, bob, `(() => {
  window.got = {};
  window.switchboard.session.addEventListener("text", (e) => { if (e.detail.from === "ann") window.got[e.detail.seq] = performance.timeOrigin + performance.now(); });
  return true;
})()`)
	// Ann's page types by itself, as a person would, 20 characters a
	// second, through the compose box's input handling.
	eval[bool](b, ann, `(async () => {
  window.sent = {};
  const s = window.switchboard.session;
  const send = s.sendText.bind(s);
  s.sendText = (room, t) => { const seq = send(room, t); window.sent[seq] = performance.timeOrigin + performance.now(); return seq; };
  const box = document.querySelector("#compose");
  for (let i = 0; i < `+strconv.Itoa(chars)+`; i++) {
    box.value += i % 40 === 39 ? "" : String.fromCharCode(97 + (i % 26));
    if (i % 40 === 39) { box.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" })); } else { box.dispatchEvent(new Event("input")); }
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
})()`)
	poll[bool](b, bob, "every keystroke on bob's page", `Object.keys(window.got).length >= `+strconv.Itoa(chars))
	sent := eval[map[string]float64](b, ann, `window.sent`)
	got := eval[map[string]float64](b, bob, `window.got`)
	var lat []float64
	for seq, at := range got {
		if s, ok := sent[seq]; ok {
			lat = append(lat, at-s)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(stats.Quantile(lat, 0.5), "p50-ms")
	b.ReportMetric(stats.Quantile(lat, 0.9), "p90-ms")
	b.ReportMetric(stats.Quantile(lat, 0.99), "p99-ms")
	b.ReportMetric(lat[len(lat)-1], "max-ms")
	b.ReportMetric(float64(len(lat)), "keystrokes")
}
