package rtcfront_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/internal/rtcfront"
	"github.com/switchboard/switchboard/internal/token"
)

// TestConcurrentTokensAreBoundedPerAddress: forged tokens posted all at
// once from one address are judged by the node 3 at most (403), the rest
// refused before the member attaches (429): an offer with a token counts
// as a try from the moment it is admitted. Before, a refusal was counted
// only once the node had judged the token, and offers posted together
// all passed: one address had as many tokens judged at once as it may
// hold peers.
func TestConcurrentTokensAreBoundedPerAddress(t *testing.T) {
	_, pubFile := nodetest.TokenKey(t)
	stranger, _ := nodetest.TokenKey(t)
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(i int, cfg *node.Config) { cfg.TokenKey = pubFile }})
	c.WaitRoomsReady(settle)
	const n = 16
	_, url := startFront(t, c.Nodes[0], func(cfg *rtcfront.Config) { cfg.MaxPeersPerSource = n })
	_, offer := newPeer(t, rtcfront.Protocol, nil)
	toks := make([]string, n)
	for i := range toks {
		tok, err := token.Mint(stranger, token.Claims{User: fmt.Sprint("eve", i), Service: c.Config.Service, Expires: time.Now().Add(time.Hour)}, time.Now().Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		toks[i] = tok
	}
	// From 127.0.0.2, as post, on a connection each: a shared client's
	// connections dialled for requests that took another would stay
	// behind, idle.
	hc := &http.Client{Transport: &http.Transport{
		DialContext:       (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext,
		DisableKeepAlives: true,
	}}
	codes := make(chan int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, tok := range toks {
		wg.Go(func() {
			<-start
			req, err := http.NewRequest(http.MethodPost, url+"?room=lobby", strings.NewReader(offer))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/sdp")
			req.Header.Set("Authorization", "Bearer "+tok)
			res, err := hc.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			codes <- res.StatusCode
		})
	}
	close(start)
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for code := range codes {
		count[code]++
	}
	if count[http.StatusForbidden] > 3 || count[http.StatusForbidden] < 1 || count[http.StatusForbidden]+count[http.StatusTooManyRequests] != n {
		t.Errorf("statuses %v of %d forged tokens posted at once from one address: want 1 to 3 judged (403), the rest 429", count, n)
	}
}
