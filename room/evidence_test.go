package room_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/room"
)

// TestRemovalsHaveEvidence checks every leave Reconcile asks for against
// a deliberately simple reading of the rule (room/presence.go), over the
// whole history of calls, on random clusters: nodes going down, missing
// and restarting, members joining and leaving, and times that jump ahead
// (a pause) or step back.
//
// A member of this node may go once it has been stale (no local session,
// or an earlier incarnation) at every call for OwnGrace. A member of
// another node may go, and only if this node is the steward, once its
// node announced a newer incarnation, or once, at every call for Grace,
// its node was not live, the cluster had a majority live and some member
// lived on that node, with no call more than MaxGap after the one before
// and none before it.
func TestRemovalsHaveEvidence(t *testing.T) {
	for seed := range uint64(200) {
		checkEvidence(t, seed)
	}
}

type evCall struct {
	now       time.Time
	listed    map[string]directory.Status
	newest    map[string]uint64
	members   map[string]room.Member
	locals    map[string]bool
	majority  bool
	steward   bool
	withNodes map[string]bool // nodes with a member
}

func checkEvidence(t *testing.T, seed uint64) {
	prng := rand.New(rand.NewPCG(seed, 2))
	const self, inc = "n3", 30
	cfg := room.DefaultConfig(self, inc)
	cfg.Grace, cfg.MaxGap, cfg.OwnGrace, cfg.Retry = 3*time.Second, 1500*time.Millisecond, time.Second, 500*time.Millisecond
	r, err := room.New("r", cfg)
	if err != nil {
		t.Fatal(err)
	}
	nodes := []string{"n1", "n2", "n3", "n4", "n5"}
	listed := map[string]directory.Status{}
	newest := map[string]uint64{}
	for i, n := range nodes {
		listed[n] = directory.Up
		newest[n] = uint64(10 * (i + 1))
	}
	locals := map[string]bool{}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	seq := uint64(0)
	apply := func(rec room.Record) {
		seq++
		r.Apply(seq, rec)
	}
	var calls []evCall
	var log []string
	for step := range 300 {
		switch op := prng.IntN(100); {
		case op < 20: // a node's status changes
			n := nodes[prng.IntN(len(nodes))]
			if n == self {
				break
			}
			switch prng.IntN(4) {
			case 0:
				delete(listed, n)
			case 1:
				listed[n] = directory.Down
			default:
				listed[n] = directory.Up
			}
			log = append(log, fmt.Sprintf("%d: %s %q", step, n, listed[n]))
		case op < 23: // a node restarts
			n := nodes[prng.IntN(len(nodes))]
			if n != self {
				newest[n]++
				log = append(log, fmt.Sprintf("%d: %s restarts as %d", step, n, newest[n]))
			}
		case op < 35: // a session joins
			n := nodes[prng.IntN(len(nodes))]
			key := fmt.Sprintf("%s/%d", n, step)
			minc := newest[n]
			if n == self {
				minc = inc
				if prng.IntN(3) == 0 {
					minc = inc - 1 // left over from an earlier run
				} else {
					r.Register(key, "u"+key)
					locals[key] = true
				}
			}
			apply(room.Record{Op: room.OpJoin, User: "u" + key, Key: key, Node: n, Inc: minc})
			if locals[key] {
				if _, err := r.Activate(key); err != nil {
					t.Fatal(err)
				}
			}
			log = append(log, fmt.Sprintf("%d: join %s inc %d", step, key, minc))
		case op < 40: // a session leaves, or a local one ends without its leave
			ms := r.Members()
			if len(ms) == 0 {
				break
			}
			keys := slices.Sorted(maps.Keys(ms))
			key := keys[prng.IntN(len(keys))]
			if locals[key] && prng.IntN(2) == 0 {
				r.Detach(key)
				delete(locals, key)
				log = append(log, fmt.Sprintf("%d: detach %s", step, key))
				break
			}
			apply(room.Record{Op: room.OpLeave, Keys: []string{key}})
			log = append(log, fmt.Sprintf("%d: leave %s", step, key))
		default: // time passes and Reconcile runs
			switch prng.IntN(20) {
			case 0:
				now = now.Add(-time.Duration(prng.IntN(5000)) * time.Millisecond)
			case 1:
				now = now.Add(time.Duration(prng.IntN(5000)) * time.Millisecond)
			default:
				now = now.Add(time.Duration(prng.IntN(600)) * time.Millisecond)
			}
			var dir []directory.Node
			for _, n := range slices.Sorted(maps.Keys(listed)) {
				dir = append(dir, directory.Node{ID: n, Status: listed[n]})
			}
			v := room.NewView(dir, newest)
			c := evCall{
				now: now, listed: maps.Clone(listed), newest: maps.Clone(newest),
				members: r.Members(), locals: maps.Clone(locals),
				steward: r.Steward(v), withNodes: map[string]bool{},
			}
			for _, m := range c.members {
				c.withNodes[m.Node] = true
			}
			c.majority = simpleMajority(self, c)
			calls = append(calls, c)
			recs := r.Reconcile(now, v)
			log = append(log, fmt.Sprintf("%d: reconcile at %s: %v", step, now.Format("15:04:05.000"), recs))
			for _, rec := range recs {
				if rec.Op != room.OpLeave {
					continue
				}
				for _, key := range rec.Keys {
					if why := justified(cfg, calls, key); why != "" {
						t.Fatalf("seed %d: leave of %s at call %d without evidence: %s\n%s", seed, key, len(calls)-1, why, strings.Join(log, "\n"))
					}
				}
				if prng.IntN(2) == 0 {
					apply(rec)
				}
			}
		}
	}
}

// simpleMajority: more than half of the nodes listed, self and the nodes
// of the members are live (self always is).
func simpleMajority(self string, c evCall) bool {
	cluster := map[string]bool{self: true}
	for n := range c.listed {
		cluster[n] = true
	}
	for n := range c.withNodes {
		cluster[n] = true
	}
	live := 0
	for n := range cluster {
		if s, ok := c.listed[n]; n == self || (ok && s != directory.Down) {
			live++
		}
	}
	return 2*live > len(cluster)
}

// justified says why the last call had no evidence to remove key, or "".
func justified(cfg room.Config, calls []evCall, key string) string {
	last := calls[len(calls)-1]
	m, ok := last.members[key]
	if !ok {
		return "not a member"
	}
	if m.Node == cfg.Self {
		ownStale := func(c evCall) bool {
			cm, ok := c.members[key]
			return ok && cm == m && (cm.Inc != cfg.Incarnation || !c.locals[key])
		}
		for j := len(calls) - 1; j >= 0 && ownStale(calls[j]); j-- {
			if last.now.Sub(calls[j].now) >= cfg.OwnGrace {
				return ""
			}
		}
		return "own member not stale for OwnGrace"
	}
	if !last.steward {
		return "not the steward"
	}
	if last.newest[m.Node] > m.Inc {
		return ""
	}
	down := func(c evCall) bool {
		s, listed := c.listed[m.Node]
		return (!listed || s == directory.Down) && c.majority && c.withNodes[m.Node]
	}
	for j := len(calls) - 1; j >= 0 && down(calls[j]); j-- {
		if last.now.Sub(calls[j].now) >= cfg.Grace {
			return ""
		}
		if j > 0 {
			d := calls[j].now.Sub(calls[j-1].now)
			if d < 0 || d > cfg.MaxGap {
				break
			}
		}
	}
	return "its node not seen down for Grace with a majority up, without a gap"
}
