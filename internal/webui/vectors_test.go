package webui_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/failover"
	"github.com/switchboard/switchboard/pick"
	"github.com/switchboard/switchboard/rtt"
)

var update = flag.Bool("update", false, "rewrite the wants of testdata/*.json from the Go packages")

// The vector files: inputs written by hand, wants written from the Go
// packages with -update. The browser test runs the JavaScript over the
// same files.

type rttFile struct {
	Comment string    `json:"comment"`
	Cases   []rttCase `json:"cases"`
}

type rttCase struct {
	Name     string      `json:"name"`
	MaxLines int         `json:"max_lines,omitempty"`
	Steps    []rttStep   `json:"steps"`
	Want     *rttOutcome `json:"want,omitempty"`
}

type rttStep struct {
	From string        `json:"from,omitempty"`
	Seq  uint64        `json:"seq,omitempty"`
	T    string        `json:"t,omitempty"`
	Load *rttLoadState `json:"load,omitempty"`
}

type rttLoadState struct {
	Lines []struct {
		From string `json:"from"`
		T    string `json:"t"`
	} `json:"lines"`
	Live map[string]string `json:"live"`
	Seqs map[string]uint64 `json:"seqs"`
}

// rttOutcome is what the vectors compare: each step's result and the
// room's state at the end.
type rttOutcome struct {
	Results []rttResult `json:"results"`
	State   rttState    `json:"state"`
}

type rttResult struct {
	Duplicate bool     `json:"duplicate"`
	Gap       bool     `json:"gap"`
	Alerts    int      `json:"alerts"`
	Lines     []string `json:"lines"`
}

type rttState struct {
	Lines     []rttLine         `json:"lines"`
	Live      map[string]string `json:"live"`
	Seqs      map[string]uint64 `json:"seqs"`
	PendingCR map[string]bool   `json:"pending_cr"`
}

type rttLine struct {
	From string `json:"from"`
	Text string `json:"text"`
}

// runRTT applies a case's steps to a Go rtt.Room.
func runRTT(t *testing.T, c rttCase) rttOutcome {
	room := rtt.NewRoom(c.MaxLines)
	out := rttOutcome{Results: []rttResult{}}
	for _, s := range c.Steps {
		if s.Load != nil {
			st := rtt.State{Lines: []rtt.Line{}, Live: s.Load.Live, Seqs: s.Load.Seqs}
			for _, l := range s.Load.Lines {
				st.Lines = append(st.Lines, rtt.Line{From: l.From, Text: l.T})
			}
			if err := room.Load(st); err != nil {
				t.Fatalf("%s: loading: %v", c.Name, err)
			}
			out.Results = append(out.Results, rttResult{Lines: []string{}})
			continue
		}
		res := room.Apply(s.From, s.Seq, s.T)
		r := rttResult{Duplicate: res.Duplicate, Gap: res.Gap, Alerts: res.Alerts, Lines: []string{}}
		for _, l := range res.Lines {
			r.Lines = append(r.Lines, l.Text)
		}
		out.Results = append(out.Results, r)
	}
	st := room.State()
	out.State = rttState{Lines: []rttLine{}, Live: st.Live, Seqs: st.Seqs, PendingCR: st.PendingCR}
	for _, l := range st.Lines {
		out.State.Lines = append(out.State.Lines, rttLine{From: l.From, Text: l.Text})
	}
	return out
}

type pickFile struct {
	Comment string     `json:"comment"`
	Cases   []pickCase `json:"cases"`
}

type pickCase struct {
	Name    string           `json:"name"`
	Policy  string           `json:"policy"`
	Group   string           `json:"group,omitempty"`
	Self    string           `json:"self,omitempty"`
	AgeMS   int64            `json:"age_ms,omitempty"`
	Exclude []string         `json:"exclude,omitempty"`
	Rand    []int            `json:"rand,omitempty"`
	Nodes   []directory.Node `json:"nodes"`
	// Want is the ID picked, or "" when the policy finds no node.
	Want *string `json:"want,omitempty"`
}

// scripted draws the case's numbers in order, each modulo the n asked
// for, and 0 once they run out.
type scripted struct {
	vals []int
	i    int
}

func (s *scripted) IntN(n int) int {
	if s.i >= len(s.vals) {
		return 0
	}
	v := s.vals[s.i] % n
	s.i++
	return v
}

func runPick(t *testing.T, c pickCase) string {
	p, err := pick.ByName(c.Policy, &scripted{vals: c.Rand})
	if err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	excluded := map[string]bool{}
	for _, id := range c.Exclude {
		excluded[id] = true
	}
	req := pick.Request{Group: c.Group, Self: c.Self, Exclude: func(id string) bool { return excluded[id] }}
	req.Age = msDuration(c.AgeMS)
	res, err := p.Pick(c.Nodes, req)
	if errors.Is(err, pick.ErrNoNode) {
		return ""
	}
	if err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	return res.Node.ID
}

type failoverFile struct {
	Comment string         `json:"comment"`
	Cases   []failoverCase `json:"cases"`
}

// failoverCase is a run of the failover machine with its default
// configuration: outcomes at times in ms after the start, and the
// random draws its jitter takes, in order.
type failoverCase struct {
	Name  string         `json:"name"`
	Nodes []string       `json:"nodes"` // the nodes whose cool-down the wants list
	Rand  []int          `json:"rand,omitempty"`
	Steps []failoverStep `json:"steps"`
	// Want has one line per step: the action and the nodes in their
	// cool-down just after ("retry n1 after 12000us | excluded n1").
	Want []string `json:"want,omitempty"`
}

type failoverStep struct {
	AtMS       int64  `json:"at_ms,omitempty"`
	Kind       string `json:"kind"`
	Node       string `json:"node,omitempty"`
	Held       bool   `json:"held,omitempty"`
	DeadlineMS int64  `json:"deadline_ms,omitempty"`
}

// runFailover replays a case's steps on a failover.Machine.
func runFailover(t *testing.T, c failoverCase) []string {
	kinds := map[string]failover.Kind{}
	for k := failover.Begin; k <= failover.Dropped; k++ {
		kinds[k.String()] = k
	}
	m, err := failover.New(failover.DefaultConfig(), &scripted{vals: c.Rand})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []string
	for _, s := range c.Steps {
		k, ok := kinds[s.Kind]
		if !ok {
			t.Fatalf("%s: unknown outcome %q", c.Name, s.Kind)
		}
		o := failover.Outcome{Kind: k, Node: s.Node, Held: s.Held}
		if s.DeadlineMS > 0 {
			o.Deadline = t0.Add(msDuration(s.DeadlineMS))
		}
		now := t0.Add(msDuration(s.AtMS))
		a := m.Next(o, now)
		line := a.Step.String()
		if a.Node != "" {
			line += " " + a.Node
		}
		if a.After > 0 {
			line += fmt.Sprintf(" after %dus", a.After.Microseconds())
		}
		var cooling []string
		for _, id := range c.Nodes {
			if m.Excluded(id, now) {
				cooling = append(cooling, id)
			}
		}
		if len(cooling) > 0 {
			line += " | excluded " + strings.Join(cooling, " ")
		}
		out = append(out, line)
	}
	return out
}

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func writeJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", name), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestVectors checks the vector files against the Go packages: their
// wants are what packages rtt, pick and failover do.
func TestVectors(t *testing.T) {
	var rf rttFile
	readJSON(t, "rtt.json", &rf)
	for i, c := range rf.Cases {
		got := runRTT(t, c)
		if *update {
			rf.Cases[i].Want = &got
			continue
		}
		if c.Want == nil {
			t.Errorf("rtt %q has no want; run with -update", c.Name)
		} else if diff := cmp.Diff(got, *c.Want); diff != "" {
			t.Errorf("rtt %q (-got +want):\n%s", c.Name, diff)
		}
	}
	var pf pickFile
	readJSON(t, "pick.json", &pf)
	for i, c := range pf.Cases {
		got := runPick(t, c)
		if *update {
			pf.Cases[i].Want = &got
			continue
		}
		if c.Want == nil {
			t.Errorf("pick %q has no want; run with -update", c.Name)
		} else if got != *c.Want {
			t.Errorf("pick %q: got %q, want %q", c.Name, got, *c.Want)
		}
	}
	var ff failoverFile
	readJSON(t, "failover.json", &ff)
	for i, c := range ff.Cases {
		got := runFailover(t, c)
		if *update {
			ff.Cases[i].Want = got
			continue
		}
		if c.Want == nil {
			t.Errorf("failover %q has no want; run with -update", c.Name)
		} else if diff := cmp.Diff(got, c.Want); diff != "" {
			t.Errorf("failover %q (-got +want):\n%s", c.Name, diff)
		}
	}
	if *update {
		writeJSON(t, "rtt.json", rf)
		writeJSON(t, "pick.json", pf)
		writeJSON(t, "failover.json", ff)
	}
}
