package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/forwarded"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/web"
)

func node(id string, status directory.Status, users int) directory.Node {
	return directory.Node{ID: id, Status: status, Users: users, Capacity: 100}
}

func TestHistory(t *testing.T) {
	t0 := time.UnixMilli(1_000_000)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	ms := func(d time.Duration) int64 { return at(d).UnixMilli() }
	h := web.NewHistory(time.Minute, 10*time.Second)
	steps := []struct {
		name       string
		nodes      []directory.Node
		at         time.Duration
		wantEvents []web.Event
		wantSample bool
	}{
		{"the first directory starts the story", []directory.Node{node("n1", directory.Up, 3), node("n2", directory.Up, 1)}, 0, nil, true},
		{"users change: no event, no sample before its time", []directory.Node{node("n1", directory.Up, 4), node("n2", directory.Up, 1)}, time.Second, nil, false},
		{"a sample when due", []directory.Node{node("n1", directory.Up, 4), node("n2", directory.Up, 1)}, 10 * time.Second, nil, true},
		{"a node goes down", []directory.Node{node("n1", directory.Up, 4), node("n2", directory.Down, 1)}, 11 * time.Second,
			[]web.Event{{At: ms(11 * time.Second), Node: "n2", What: "down", From: "up"}}, true},
		{"a node joins, starting", []directory.Node{node("n1", directory.Up, 4), node("n2", directory.Down, 1), node("n3", directory.Starting, 0)}, 12 * time.Second,
			[]web.Event{{At: ms(12 * time.Second), Node: "n3", What: "joined starting"}}, true},
		{"a drain and a departure", []directory.Node{node("n1", directory.Draining, 4), node("n3", directory.Up, 0)}, 13 * time.Second,
			[]web.Event{{At: ms(13 * time.Second), Node: "n1", What: "draining", From: "up"}, {At: ms(13 * time.Second), Node: "n3", What: "up", From: "starting"}, {At: ms(13 * time.Second), Node: "n2", What: "left", From: "down"}}, true},
	}
	for _, s := range steps {
		evs, sample := h.Observe(s.nodes, at(s.at))
		if diff := cmp.Diff(evs, s.wantEvents); diff != "" {
			t.Errorf("%s: events (-got +want):\n%s", s.name, diff)
		}
		if (sample != nil) != s.wantSample {
			t.Errorf("%s: sample %v, want one: %v", s.name, sample, s.wantSample)
		}
	}
	if got := len(h.Events()); got != 5 {
		t.Errorf("%d events kept, want 5", got)
	}
	// Down nodes are left out of the chart; samples older than the window go.
	samples := h.Samples()
	if last := samples[len(samples)-1]; cmp.Diff(last.Users, map[string]int{"n1": 4, "n3": 0}) != "" {
		t.Errorf("last sample %v, want n1 and n3 only", last.Users)
	}
	h.Observe([]directory.Node{node("n1", directory.Up, 1)}, at(2*time.Minute))
	if samples := h.Samples(); len(samples) != 1 {
		t.Errorf("%d samples after the window passed, want 1", len(samples))
	}
}

// TestEventsStream reads the dashboard's stream: the first update holds
// the directory, and the stream ends when the monitor stops.
func TestEventsStream(t *testing.T) {
	src := &fakeSource{}
	mon := web.NewMonitor(src)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { mon.Run(ctx); close(done) }()
	srv := httptest.NewServer(web.NewHandler(src, prometheus.NewRegistry(), web.WithMonitor(mon)))
	defer srv.Close()
	defer func() { cancel(); <-done }()

	resp, err := http.Get(srv.URL + "/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	var first web.Update
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			if err := json.Unmarshal([]byte(data), &first); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if first.Directory.Self != "n1" || first.Window <= 0 {
		t.Errorf("first update %+v, want the directory of n1 and a window", first)
	}
	cancel()
	<-done
	for sc.Scan() { // the stream ends once the monitor has stopped
	}
}

// The dashboard's streams are bounded: each holds an HTTP connection busy
// for as long as it stays open, and enough of them from anyone held
// every connection the node's listener allows. One past web.MaxStreams is
// answered 503 with Retry-After; a stream closed leaves room for another.
func TestEventsStreamsAreBounded(t *testing.T) {
	src := &fakeSource{}
	mon := web.NewMonitor(src)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { mon.Run(ctx); close(done) }()
	srv := httptest.NewServer(web.NewHandler(src, prometheus.NewRegistry(), web.WithMonitor(mon)))
	defer srv.Close()
	defer func() { cancel(); <-done }()

	open := func() *http.Response {
		t.Helper()
		resp, err := http.Get(srv.URL + "/v1/events")
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	var streams []*http.Response
	defer func() {
		for _, s := range streams {
			s.Body.Close()
		}
	}()
	for i := range web.MaxStreams {
		resp := open()
		streams = append(streams, resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d = %d", i+1, resp.StatusCode)
		}
	}
	over := open()
	over.Body.Close()
	if over.StatusCode != http.StatusServiceUnavailable || over.Header.Get("Retry-After") == "" {
		t.Fatalf("stream %d = %d (Retry-After %q), want 503 with Retry-After", web.MaxStreams+1, over.StatusCode, over.Header.Get("Retry-After"))
	}
	streams[0].Body.Close()
	streams = streams[1:]
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp := open()
		if resp.StatusCode == http.StatusOK {
			streams = append(streams, resp)
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatalf("no stream once one closed: %d", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// One address holds at most web.MaxStreamsPerSource of the dashboard's
// streams, so that it cannot take all web.MaxStreams from everyone else:
// one past it is answered 429 while another address still gets its
// stream. A client behind a trusted proxy counts under its own address,
// and requests from the node's own host (a reverse proxy beside it) under
// none.
func TestEventsStreamsAreBoundedPerSource(t *testing.T) {
	src := &fakeSource{}
	mon := web.NewMonitor(src)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { mon.Run(ctx); close(done) }()
	proxies, err := forwarded.Parse("127.0.0.9")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.NewHandler(src, prometheus.NewRegistry(), web.WithMonitor(mon), web.WithTrustedProxies(proxies)))
	defer srv.Close()
	defer func() { cancel(); <-done }()

	var streams []*http.Response
	defer func() {
		for _, s := range streams {
			s.Body.Close()
		}
	}()
	// open asks for a stream from the address from, for the client
	// forwardedFor when it is not empty, and returns the status.
	open := func(from, forwardedFor string) int {
		t.Helper()
		client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext}}
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		if forwardedFor != "" {
			req.Header.Set("X-Forwarded-For", forwardedFor)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
				t.Errorf("a 429 from %s without Retry-After", from)
			}
			return resp.StatusCode
		}
		streams = append(streams, resp)
		return resp.StatusCode
	}
	steps := []struct {
		name          string
		from, forFor  string
		times, status int
	}{
		{"one address, up to its bound", "127.0.0.2", "", web.MaxStreamsPerSource, http.StatusOK},
		{"one address, one past its bound", "127.0.0.2", "", 1, http.StatusTooManyRequests},
		{"another address", "127.0.0.3", "", 1, http.StatusOK},
		{"a client behind the trusted proxy, up to its bound", "127.0.0.9", "192.0.2.7", web.MaxStreamsPerSource, http.StatusOK},
		{"that client, one past", "127.0.0.9", "192.0.2.7", 1, http.StatusTooManyRequests},
		{"another client behind the proxy", "127.0.0.9", "192.0.2.8", 1, http.StatusOK},
		{"the node's own host, past the bound", "127.0.0.1", "", web.MaxStreamsPerSource + 2, http.StatusOK},
	}
	for _, st := range steps {
		for i := range st.times {
			if got := open(st.from, st.forFor); got != st.status {
				t.Fatalf("%s: stream %d of %d: %d, want %d", st.name, i+1, st.times, got, st.status)
			}
		}
	}
	// A stream closed gives its address room again: the server notices
	// the close when its next update fails to go out, within a second.
	for i, s := range streams[:web.MaxStreamsPerSource] {
		s.Body.Close()
		streams[i] = nil
	}
	streams = slices.DeleteFunc(streams, func(r *http.Response) bool { return r == nil })
	nodetest.Eventually(t, 30*time.Second, func() error {
		if got := open("127.0.0.2", ""); got != http.StatusOK {
			return fmt.Errorf("127.0.0.2 after closing its streams: %d", got)
		}
		return nil
	})
}
