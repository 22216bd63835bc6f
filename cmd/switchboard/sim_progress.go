package main

import (
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// simProgressEvery is how often sim prints how far its runs are.
const simProgressEvery = 5 * time.Second

// simMeter follows how far each of a sim's runs is, in simulated time, and
// estimates the time left from the wall time so far. Its methods are safe
// for concurrent use: every run reports from its own goroutine.
type simMeter struct {
	start time.Time
	done  []atomic.Uint64 // per run: the fraction done, as math.Float64bits
}

func newSimMeter(runs int, start time.Time) *simMeter {
	return &simMeter{start: start, done: make([]atomic.Uint64, runs)}
}

// set records that run i reached simulated time reached of total.
func (m *simMeter) set(i int, reached, total time.Duration) {
	f := 0.0
	if total > 0 {
		f = min(max(float64(reached)/float64(total), 0), 1)
	}
	m.done[i].Store(math.Float64bits(f))
}

// finish records that run i ended.
func (m *simMeter) finish(i int) { m.done[i].Store(math.Float64bits(1)) }

// fraction is how much of all the runs is done, 0..1, and how many runs
// have ended.
func (m *simMeter) fraction() (float64, int) {
	sum, ended := 0.0, 0
	for i := range m.done {
		f := math.Float64frombits(m.done[i].Load())
		sum += f
		if f >= 1 {
			ended++
		}
	}
	if len(m.done) == 0 {
		return 1, 0
	}
	return sum / float64(len(m.done)), ended
}

// line says how far the runs are at now, and about how long is left:
// "3/8 runs done, 41% after 12s, about 17s left".
func (m *simMeter) line(now time.Time) string {
	f, ended := m.fraction()
	elapsed := now.Sub(m.start)
	s := fmt.Sprintf("%d/%d runs done, %.0f%% after %s", ended, len(m.done), 100*f, elapsed.Round(time.Second))
	switch {
	case f >= 1:
	case f <= 0:
		s += ", time left unknown yet"
	default:
		left := time.Duration(float64(elapsed) * (1 - f) / f)
		s += fmt.Sprintf(", about %s left", left.Round(time.Second))
	}
	return s
}

// report prints a progress line to w every interval until the returned
// func is called; that func may be called more than once.
func (m *simMeter) report(w io.Writer, every time.Duration) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case now := <-tick.C:
				fmt.Fprintf(w, "sim: %s\n", m.line(now))
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		wg.Wait()
	}
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// Write writes p to the underlying writer under the lock.
func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
