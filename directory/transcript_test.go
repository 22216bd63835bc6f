package directory_test

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/directory"
)

var update = flag.Bool("update", false, "rewrite the expected output in testdata/transcripts")

// TestTranscripts replays the scenarios in testdata/transcripts, in the
// spirit of raft's interaction tests. A file is a list of blocks:
//
//	# comments and blank lines
//	COMMAND key=value ...
//	----
//	expected output, one or more lines
//
// Commands (times are durations since the start of the scenario):
//
//	new self=ID down=DUR remove=DUR          a fresh table
//	apply t=DUR id=ID inc=N seq=N status=S [users=N cap=N group=G hb=MS conn=C]
//	tick t=DUR
//	disconnected t=DUR conn=C                the bus reports connection C closed
//	nodes t=DUR                              the Nodes snapshot
//	entries                                  the Entries snapshot
//	view t=DUR seed=N [max=N group=G budget=N] the view Sample chooses from
//	                                         the Nodes snapshot, with a
//	                                         random source seeded by seed
//
// Run with -update to rewrite the expected output from the actual one.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "transcripts", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no transcripts in testdata/transcripts")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			blocks := parseTranscript(t, file)
			var tab *directory.Table
			var out strings.Builder
			for _, b := range blocks {
				got, err := runCommand(&tab, b.cmd)
				if err != nil {
					t.Fatalf("%s:%d: %s: %v", file, b.line, b.cmd, err)
				}
				for _, l := range b.pre {
					fmt.Fprintln(&out, l)
				}
				fmt.Fprintf(&out, "%s\n----\n%s\n", b.cmd, strings.Join(got, "\n"))
				if *update {
					continue
				}
				if diff := cmp.Diff(got, b.want); diff != "" {
					t.Errorf("%s:%d: %s (-got +want):\n%s", file, b.line, b.cmd, diff)
				}
			}
			if *update {
				if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

type block struct {
	pre  []string // comment and blank lines before the command
	line int      // of the command
	cmd  string
	want []string
}

func parseTranscript(t *testing.T, file string) []block {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []block
	var cur block
	const (
		before = iota
		sep
		output
	)
	state, n := before, 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		l := sc.Text()
		switch state {
		case before:
			if l == "" || strings.HasPrefix(l, "#") {
				cur.pre = append(cur.pre, l)
				continue
			}
			cur.cmd, cur.line, state = l, n, sep
		case sep:
			if l != "----" {
				t.Fatalf("%s:%d: want ---- after the command, got %q", file, n, l)
			}
			state = output
		case output:
			if l == "" {
				blocks = append(blocks, cur)
				cur, state = block{pre: []string{""}}, before
				continue
			}
			cur.want = append(cur.want, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	switch state {
	case output:
		blocks = append(blocks, cur)
	case sep:
		t.Fatalf("%s:%d: command without ----", file, cur.line)
	}
	return blocks
}

// runCommand runs one transcript command against *tab.
func runCommand(tab **directory.Table, cmd string) ([]string, error) {
	fields := strings.Fields(cmd)
	args := map[string]string{}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("argument %q is not key=value", f)
		}
		args[k] = v
	}
	var err error
	dur := func(k string) time.Duration {
		d, e := time.ParseDuration(args[k])
		if e != nil && err == nil {
			err = fmt.Errorf("%s: %v", k, e)
		}
		return d
	}
	num := func(k string, def int) int {
		v, ok := args[k]
		if !ok {
			return def
		}
		i, e := strconv.Atoi(v)
		if e != nil && err == nil {
			err = fmt.Errorf("%s: %v", k, e)
		}
		return i
	}
	if fields[0] != "new" && *tab == nil {
		return nil, fmt.Errorf("no table: start with new")
	}
	var out []string
	switch fields[0] {
	case "new":
		*tab = directory.NewTable(args["self"], directory.Timeouts{DownAfter: dur("down"), RemoveAfter: dur("remove")})
		out = []string{"ok"}
	case "apply":
		e := directory.Entry{
			Node: directory.Node{
				ID: args["id"], Addr: args["id"] + ":7000", Group: args["group"],
				Status: directory.Status(args["status"]), Users: num("users", 0), Capacity: num("cap", 10),
				HeartbeatMS: int64(num("hb", 0)),
			},
			Incarnation: uint64(num("inc", 0)),
			Seq:         uint64(num("seq", 0)),
			Conn:        args["conn"],
		}
		now := at(dur("t"))
		if err != nil {
			return nil, err
		}
		out = []string{formatChange((*tab).Apply(e, now))}
	case "tick":
		now := at(dur("t"))
		if err != nil {
			return nil, err
		}
		for _, c := range (*tab).Tick(now) {
			out = append(out, formatChange(c))
		}
		if len(out) == 0 {
			out = []string{"(no changes)"}
		}
	case "disconnected":
		now := at(dur("t"))
		if err != nil {
			return nil, err
		}
		for _, c := range (*tab).Disconnected(args["conn"], now) {
			out = append(out, formatChange(c))
		}
		if len(out) == 0 {
			out = []string{"(no changes)"}
		}
	case "nodes":
		now := at(dur("t"))
		if err != nil {
			return nil, err
		}
		for _, n := range (*tab).Nodes(now) {
			out = append(out, fmt.Sprintf("%s %s %d/%d group=%s age=%dms", n.ID, n.Status, n.Users, n.Capacity, n.Group, n.AgeMS))
		}
		if len(out) == 0 {
			out = []string{"(empty)"}
		}
	case "view":
		now := at(dur("t"))
		seed := uint64(num("seed", 0))
		req := directory.ViewRequest{Max: num("max", 0), Group: args["group"], Budget: num("budget", 0)}
		if err != nil {
			return nil, err
		}
		nodes := (*tab).Nodes(now)
		view := directory.View(nodes, req, rand.New(rand.NewPCG(seed, seed)))
		for _, n := range view {
			out = append(out, fmt.Sprintf("%s %s %d/%d group=%s", n.ID, n.Status, n.Users, n.Capacity, n.Group))
		}
		out = append(out, fmt.Sprintf("(%d of %d)", len(view), len(nodes)))
	case "entries":
		for _, e := range (*tab).Entries() {
			out = append(out, fmt.Sprintf("%s inc=%d seq=%d %s %d/%d", e.ID, e.Incarnation, e.Seq, e.Status, e.Users, e.Capacity))
		}
		if len(out) == 0 {
			out = []string{"(empty)"}
		}
	default:
		return nil, fmt.Errorf("unknown command %q", fields[0])
	}
	return out, nil
}

func formatChange(c directory.Change) string {
	switch c.Kind {
	case directory.Added:
		return fmt.Sprintf("added %s -> %s", c.ID, c.To)
	case directory.StatusChanged:
		return fmt.Sprintf("status %s %s -> %s", c.ID, c.From, c.To)
	case directory.Removed:
		return fmt.Sprintf("removed %s (was %s)", c.ID, c.From)
	}
	return fmt.Sprintf("%s %s %s", c.Kind, c.ID, c.To)
}
