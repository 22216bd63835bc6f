package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/switchboard/switchboard/sim"
)

// smallSim is a scenario that runs in well under a second.
var smallSim = []string{
	"-nodes", "20", "-capacity", "500", "-sessions", "3000", "-rate", "1000", "-lifetime", "10s",
	"-kill", "2", "-kill-at", "1s", "-join", "3", "-join-at", "2s", "-staleness", "0s,1s",
}

func simOut(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	var out, errs bytes.Buffer
	if err := runSim(context.Background(), args, &out, &errs); err != nil {
		t.Fatalf("sim %q: %v\n%s", args, err, errs.String())
	}
	return out.String(), errs.String()
}

func TestSimTable(t *testing.T) {
	out, progress := simOut(t, smallSim...)
	for _, want := range []string{"20 nodes of capacity 500", "2 killed at 1s", "3 join at 2s", "staleness 0s", "staleness 1s", "max/mean", "reattach p50"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// One line per policy per staleness.
	for _, p := range sim.Policies() {
		if got := len(linesStarting(out, p)); got != 2 {
			t.Errorf("policy %s starts %d table lines, want 2:\n%s", p, got, out)
		}
	}
	// A line per finished run, with how far all the runs are.
	for _, want := range []string{"sim: done in", "runs done, ", fmt.Sprintf("%d/%d runs done, 100%%", 2*len(sim.Policies()), 2*len(sim.Policies()))} {
		if !strings.Contains(progress, want) {
			t.Errorf("progress on stderr lacks %q:\n%s", want, progress)
		}
	}
	if _, quiet := simOut(t, append(slices.Clone(smallSim), "--quiet", "--policies", "random")...); quiet != "" {
		t.Errorf("--quiet printed %q", quiet)
	}
}

// TestSimPushes: -pushes on,off runs both side by side, one table each;
// only without pushes do the storm's sessions fetch a directory. Every
// table says what the nodes pushed.
func TestSimPushes(t *testing.T) {
	out, _ := simOut(t, append(slices.Clone(smallSim), "-staleness", "0s", "-pushes", "on,off", "-policies", "p2c", "-quiet")...)
	for _, want := range []string{"staleness 0s, pushes on", "staleness 0s, pushes off", "pushed MB", "as views MB", "pushes (p2c):", "2 down and 3 joined: changes to"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	rows := linesStarting(out, "p2c")
	if len(rows) != 2 {
		t.Fatalf("p2c rows %q\n%s", rows, out)
	}
	// storm and fetched (fields 10 and 11: "worst max/mean" is two):
	// none fetched with pushes, nearly all without (some leave first).
	on, off := rows[0], rows[1]
	size, _ := strconv.Atoi(off[10])
	fetched, _ := strconv.Atoi(off[11])
	if on[11] != "0" || size < 50 || fetched < size*9/10 {
		t.Errorf("storm and fetched, pushes on: %s %s; off: %s %s\n%s", on[10], on[11], off[10], off[11], out)
	}
	bytesOut, _ := simOut(t, "-push-bytes")
	for _, n := range []string{"100", "1000", "10000"} {
		if r := linesStarting(bytesOut, n); len(r) != 1 || len(r[0]) != 8 {
			t.Errorf("push bytes at %s nodes: %q\n%s", n, r, bytesOut)
		}
	}
}

func TestSimJSON(t *testing.T) {
	out, _ := simOut(t, append(slices.Clone(smallSim), "-json", "-policies", "default,random")...)
	var rep simReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	var got []string
	for _, r := range rep.Runs {
		got = append(got, r.Policy)
		if r.Arrived != 3000 || len(r.Storms) != 1 || r.Storms[0].Killed != 2 || len(r.Series) == 0 {
			t.Errorf("run %s: %+v", r.Policy, r)
		}
	}
	if diff := cmp.Diff(got, []string{"default", "random", "default", "random"}); diff != "" {
		t.Errorf("runs (-got +want):\n%s", diff)
	}
	if rep.Scenario["nodes"] != float64(20) {
		t.Errorf("scenario %v", rep.Scenario)
	}
	// The same flags give the same JSON.
	again, _ := simOut(t, append(slices.Clone(smallSim), "-json", "-policies", "default,random", "-parallel", "1")...)
	if again != out {
		t.Error("two runs with the same seed differ")
	}
}

func TestSimSVG(t *testing.T) {
	dir := t.TempDir()
	simOut(t, append(slices.Clone(smallSim), "-svg", dir, "-chart-policy", "p2c")...)
	var names []string
	files, _ := filepath.Glob(filepath.Join(dir, "*.svg"))
	for _, f := range files {
		names = append(names, filepath.Base(f))
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		wellFormed(t, f, data)
	}
	want := []string{
		"sim-maxmean-0s.svg", "sim-maxmean-1s.svg", "sim-reattach-0s.svg", "sim-reattach-1s.svg",
		"sim-spread-0s.svg", "sim-spread-1s.svg", "sim-users-p2c-0s.svg", "sim-users-p2c-1s.svg",
	}
	if diff := cmp.Diff(names, want); diff != "" {
		t.Errorf("files (-got +want):\n%s", diff)
	}
}

func TestSimBalls(t *testing.T) {
	dir := t.TempDir()
	out, _ := simOut(t, "-balls", "-balls-max", "10000", "-trials", "3", "-svg", dir)
	for _, want := range []string{"ln n / ln ln n", "ln ln n / ln 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("balls table lacks %q:\n%s", want, out)
		}
	}
	for _, n := range []string{"1000", "10000"} {
		if rows := linesStarting(out, n); len(rows) != 1 || len(rows[0]) != 9 || rows[0][1] != "3" {
			t.Errorf("row for n=%s: %q\n%s", n, rows, out)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "sim-balls.svg"))
	if err != nil {
		t.Fatal(err)
	}
	wellFormed(t, "sim-balls.svg", data)
	js, _ := simOut(t, "-balls", "-balls-max", "1000", "-trials", "2", "-json")
	var rep simReport
	if err := json.Unmarshal([]byte(js), &rep); err != nil || len(rep.Balls) != 1 || rep.Balls[0].N != 1000 {
		t.Errorf("balls JSON %v: %s", err, js)
	}
}

func TestSimErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown policy", []string{"-policies", "fastest"}, `unknown policy "fastest"`},
		{"bad staleness", []string{"-staleness", "soon"}, `bad staleness "soon"`},
		{"no staleness", []string{"-staleness", ","}, "no policy, staleness or pushes mode"},
		{"bad pushes", []string{"-pushes", "sometimes"}, `bad -pushes "sometimes"`},
		{"bad config", []string{"-nodes", "-3"}, "at least one node"},
		{"stray argument", []string{"now"}, `unexpected argument "now"`},
		{"balls too small", []string{"-balls", "-balls-max", "10"}, "below 1000"},
		{"unknown flag", []string{"-bogus"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := runSim(context.Background(), tt.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// linesStarting returns the fields of the lines whose first field is first.
func linesStarting(out, first string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == first {
			rows = append(rows, f)
		}
	}
	return rows
}

func wellFormed(t *testing.T, name string, data []byte) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(data))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if bytes.Contains(data, []byte("NaN")) {
		t.Errorf("%s contains NaN", name)
	}
}
