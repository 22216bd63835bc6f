package bench

import (
	"context"
	"sync"
	"time"

	"github.com/switchboard/switchboard/internal/chart"
)

// Timeline is users per node over time, as one node's directory showed
// them.
type Timeline struct {
	// T are the sample times in seconds from the start.
	T []float64 `json:"t_s"`
	// Users holds, per node, its users at each sample (-1: not listed).
	Users map[string][]int `json:"users"`
}

// sampleUsers polls the directory of the node whose HTTP API is at addr
// every period until stop is called, and returns what it saw.
func sampleUsers(ctx context.Context, c *cluster, addr string, period time.Duration) (stop func() Timeline) {
	ctx, cancel := context.WithCancel(ctx)
	tl := Timeline{Users: map[string][]int{}}
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			d, err := fetchHTTP(ctx, c.http, addr)
			if err == nil {
				users := usersOf(d.Nodes)
				n := len(tl.T)
				tl.T = append(tl.T, time.Since(start).Seconds())
				for id := range users {
					if _, ok := tl.Users[id]; !ok {
						tl.Users[id] = make([]int, n)
						for i := range n {
							tl.Users[id][i] = -1
						}
					}
				}
				for id := range tl.Users {
					u, ok := users[id]
					if !ok {
						u = -1
					}
					tl.Users[id] = append(tl.Users[id], u)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	return func() Timeline {
		cancel()
		wg.Wait()
		return tl
	}
}

// chart draws the timeline, one line per node.
func (tl Timeline) chart(title string) chart.Line {
	l := chart.Line{Title: title, XLabel: "time (s)", YLabel: "sessions"}
	for _, id := range nodeIDs(countsOf(tl.Users)) {
		s := chart.Series{Name: id}
		for i, u := range tl.Users[id] {
			if u < 0 {
				continue
			}
			s.X = append(s.X, tl.T[i])
			s.Y = append(s.Y, float64(u))
		}
		l.Series = append(l.Series, s)
	}
	return l
}

// countsOf keeps the keys of a timeline's users for nodeIDs.
func countsOf(m map[string][]int) map[string]int {
	out := map[string]int{}
	for k := range m {
		out[k] = 0
	}
	return out
}
