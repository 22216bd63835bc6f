package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/internal/chart"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/internal/promtext"
)

// MemoryReport is the memory scenario: one node, its memory before and
// after Sessions idle sessions attach.
type MemoryReport struct {
	Scenario string `json:"scenario"`
	Sessions int    `json:"sessions"`
	// Capped says why fewer sessions than asked were opened.
	Capped   string `json:"capped,omitempty"`
	Attached int    `json:"attached"`
	Failed   int    `json:"failed"`
	// NoFile is the descriptor limit the bench and the node ran with.
	NoFile uint64 `json:"nofile"`
	Before Mem    `json:"before"`
	After  Mem    `json:"after"`
	// KiB per attached session.
	HeapKiB      float64  `json:"heap_inuse_kib_per_session"`
	StackKiB     float64  `json:"stack_inuse_kib_per_session"`
	HeapStackKiB float64  `json:"heap_and_stack_kib_per_session"`
	RSSKiB       float64  `json:"rss_kib_per_session"`
	Goroutines   float64  `json:"goroutines_per_session"`
	Targets      []Target `json:"targets"`
}

// Mem is a node's memory as its /metrics reports it, read after the node
// ran at least two garbage collections so that little garbage is counted.
type Mem struct {
	HeapInuse  float64 `json:"heap_inuse_bytes"`
	HeapAlloc  float64 `json:"heap_alloc_bytes"`
	StackInuse float64 `json:"stack_inuse_bytes"`
	RSS        float64 `json:"rss_bytes"`
	Goroutines float64 `json:"goroutines"`
	GCs        float64 `json:"gcs"`
}

// memoryTarget is issue 2's bound on the memory of an idle session, KiB.
const memoryTarget = 12

func runMemory(ctx context.Context, e *env) (Report, error) {
	n := e.cfg.Clients
	rep := &MemoryReport{Scenario: "memory"}
	limit, err := raiseNoFile(uint64(n) + noFileSpare)
	if err != nil {
		return nil, fmt.Errorf("bench: memory: %w", err)
	}
	rep.NoFile = limit
	if room := int(limit) - noFileSpare; n > room {
		rep.Capped = fmt.Sprintf("%d sessions asked; the node's descriptor limit (%d, a hard limit this process may not raise) leaves room for %d", n, limit, room)
		e.logf("%s", rep.Capped)
		n = room
	}
	rep.Sessions = n
	e.logf("starting one node (descriptor limit %d)", limit)
	lc, err := localcluster.Start(ctx, localcluster.Config{Binary: e.cfg.Binary, Nodes: 1, Standalone: true, Capacity: n + 1000, Heartbeat: e.cfg.Heartbeat, Output: e.cfg.Logs})
	if err != nil {
		return nil, err
	}
	defer lc.Stop()
	nd := lc.Nodes[0]
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	time.Sleep(200 * time.Millisecond)
	if rep.Before, err = readMem(ctx, hc, nd.HTTP); err != nil {
		return nil, err
	}
	conns := make([]*client.Conn, n)
	progress, end := e.counter("attached", n)
	var done atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Value
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(e.cfg.Concurrency, n) {
		wg.Go(func() {
			for i := range next {
				actx, cancel := context.WithTimeout(ctx, 10*time.Second)
				c, err := attachDirect(actx, nd.Addr, nil, fmt.Sprintf("idle%d", i))
				cancel()
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				} else {
					conns[i] = c
				}
				progress(int(done.Add(1)))
			}
		})
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	end()
	defer func() {
		var cw sync.WaitGroup
		for _, c := range conns {
			if c != nil {
				cw.Go(func() { c.Close() })
			}
		}
		cw.Wait()
	}()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	rep.Failed = int(failed.Load())
	rep.Attached = n - rep.Failed
	if rep.Failed > 0 {
		e.logf("%d attaches failed, the first: %v", rep.Failed, firstErr.Load())
	}
	time.Sleep(time.Duration(min(2000, 100+n/10)) * time.Millisecond) // let the node settle
	if rep.After, err = readMem(ctx, hc, nd.HTTP); err != nil {
		return nil, err
	}
	a, b := rep.After, rep.Before
	rep.HeapKiB = KiBPer(b.HeapInuse, a.HeapInuse, rep.Attached)
	rep.StackKiB = KiBPer(b.StackInuse, a.StackInuse, rep.Attached)
	rep.HeapStackKiB = rep.HeapKiB + rep.StackKiB
	rep.RSSKiB = KiBPer(b.RSS, a.RSS, rep.Attached)
	rep.Goroutines = Ratio(a.Goroutines-b.Goroutines, float64(rep.Attached))
	rep.Targets = []Target{
		{What: "memory: heap + stacks in use per idle session (issue 2 d)", Want: fmt.Sprintf("<= %d KiB", memoryTarget), Got: f2(rep.HeapStackKiB) + " KiB", Met: rep.HeapStackKiB <= memoryTarget && rep.Failed == 0},
		{What: "memory: resident set per idle session (issue 2 d)", Want: fmt.Sprintf("<= %d KiB", memoryTarget), Got: f2(rep.RSSKiB) + " KiB", Met: rep.RSSKiB <= memoryTarget && rep.Failed == 0},
	}
	return rep, nil
}

// noFileSpare is the descriptors a node needs besides its sessions'
// (listeners, routes, files), with room to spare.
const noFileSpare = 256

// readMem makes the node collect garbage at least twice (by reading its
// /metrics until its GC count grows by two: every read allocates), lets
// it sweep, and then reads its memory.
func readMem(ctx context.Context, hc *http.Client, addr string) (Mem, error) {
	read := func() (Mem, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
		if err != nil {
			return Mem{}, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return Mem{}, err
		}
		defer resp.Body.Close()
		m, err := promtext.Values(resp.Body, "go_memstats_heap_inuse_bytes", "go_memstats_heap_alloc_bytes", "go_memstats_stack_inuse_bytes",
			"process_resident_memory_bytes", "go_goroutines", "go_gc_duration_seconds_count")
		if err != nil {
			return Mem{}, err
		}
		return Mem{HeapInuse: m["go_memstats_heap_inuse_bytes"], HeapAlloc: m["go_memstats_heap_alloc_bytes"], StackInuse: m["go_memstats_stack_inuse_bytes"],
			RSS: m["process_resident_memory_bytes"], Goroutines: m["go_goroutines"], GCs: m["go_gc_duration_seconds_count"]}, nil
	}
	first, err := read()
	if err != nil {
		return Mem{}, err
	}
	last := first
	deadline := time.Now().Add(60 * time.Second)
	for last.GCs < first.GCs+2 && time.Now().Before(deadline) {
		if last, err = read(); err != nil {
			return Mem{}, err
		}
	}
	// Spans the collection emptied count as in use until they are swept,
	// which the runtime does in the background soon after.
	time.Sleep(500 * time.Millisecond)
	return read()
}

// WriteTable implements Report.
func (r *MemoryReport) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "memory: one node, %d idle sessions attached (%d failed), descriptor limit %d\n", r.Attached, r.Failed, r.NoFile)
	if r.Capped != "" {
		fmt.Fprintf(w, "capped: %s\n", r.Capped)
	}
	fmt.Fprintln(w)
	mib := func(v float64) string { return fmt.Sprintf("%.1f", v/(1<<20)) }
	b, a := r.Before, r.After
	table(w, []string{"", "heap in use MiB", "stacks in use MiB", "RSS MiB", "goroutines"}, [][]string{
		{"before", mib(b.HeapInuse), mib(b.StackInuse), mib(b.RSS), fmt.Sprint(b.Goroutines)},
		{"after", mib(a.HeapInuse), mib(a.StackInuse), mib(a.RSS), fmt.Sprint(a.Goroutines)},
		{"per session KiB", f2(r.HeapKiB), f2(r.StackKiB), f2(r.RSSKiB), f2(r.Goroutines)},
	})
	fmt.Fprintf(w, "\nheap + stacks per session: %.2f KiB\n", r.HeapStackKiB)
	writeTargets(w, r.Targets)
}

// Charts implements Report.
func (r *MemoryReport) Charts() []Chart {
	return []Chart{
		{"memory", valueBars(fmt.Sprintf("memory per idle session, %d sessions on one node", r.Attached), "KiB per session",
			[]string{"heap in use", "stacks in use", "heap + stacks", "RSS", "target"},
			chart.BarSeries{Name: "KiB", Values: []float64{r.HeapKiB, r.StackKiB, r.HeapStackKiB, r.RSSKiB, memoryTarget}}).Render},
	}
}
