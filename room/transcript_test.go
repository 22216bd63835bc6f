package room_test

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/room"
)

var update = flag.Bool("update", false, "rewrite the expected output in testdata/transcripts")

// TestTranscripts replays the scenarios in testdata/transcripts, in the
// spirit of raft's interaction tests and of directory's. A file is a list
// of blocks:
//
//	# comments and blank lines
//	COMMAND key=value ...
//	----
//	expected output, one or more lines
//
// A value may be a Go-quoted string (t="a b\n"). Commands, for one room
// "r" on one node (times are durations since the start of the scenario):
//
//	new self=ID inc=N [users=N senders=N grace=DUR gap=DUR own=DUR retry=DUR leaderwait=DUR]
//	local key=K user=U                     Register a local session
//	activate key=K | resync key=K | leaving key=K | detach key=K
//	join seq=S key=K user=U node=ID inc=N  Apply a join stored at S
//	leave seq=S keys=K1,K2                 Apply a leave
//	text seq=S key=K user=U n=N t="..." [dev=D]  Apply a text chunk (n: its seq; dev: its device)
//	batch seq=S c1="K U N TEXT" c2=... [d1=D ...]  Apply a batch of text chunks, c1 first (dI: cI's device)
//	live key=K user=U n=N t="..."          ApplyLive a text chunk (or c1=... for a batch)
//	dir ID=STATUS ... [inc.ID=N ...] [vouched=DUR]  this node's view; unlisted nodes are missing; vouched: View.Vouched, the answer asked at DUR
//	stream leader=ID | stream leader=- | stream known=no  StoreLeader: the room's stream leader, none, or not known
//	reconcile t=DUR                        the records Reconcile returns
//	steward                                whether this node is the steward
//	members                                members and users
//	snapshot                               Snapshot's JSON
//	restore                                Restore from Snapshot, losing the locals
//
// Deliveries print as "KEY <- LINE". Run with -update to rewrite the
// expected output from the actual one.
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
			h := &harness{}
			var out strings.Builder
			for _, b := range blocks {
				got, err := h.run(b.cmd)
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
	sc.Buffer(nil, 1<<20)
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

// harness holds one scenario's room, view and collected deliveries.
type harness struct {
	r         *room.Room
	cfg       room.Config
	view      *room.View
	delivered []string
}

// args splits "cmd k=v k="quoted v"" into the command and its arguments.
func args(cmd string) (string, map[string]string, error) {
	name, rest, _ := strings.Cut(cmd, " ")
	m := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; rest = strings.TrimSpace(rest) {
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			return "", nil, fmt.Errorf("argument %q is not key=value", rest)
		}
		if strings.HasPrefix(v, `"`) {
			q, err := strconv.QuotedPrefix(v)
			if err != nil {
				return "", nil, fmt.Errorf("%s: %v", k, err)
			}
			m[k], _ = strconv.Unquote(q)
			rest = v[len(q):]
			continue
		}
		v, rest, _ = strings.Cut(v, " ")
		m[k] = v
	}
	return name, m, nil
}

var start = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func (h *harness) run(cmd string) ([]string, error) {
	name, a, err := args(cmd)
	if err != nil {
		return nil, err
	}
	num := func(k string) uint64 {
		v, e := strconv.ParseUint(a[k], 10, 64)
		if e != nil && err == nil {
			err = fmt.Errorf("%s: %v", k, e)
		}
		return v
	}
	dur := func(k string) time.Duration {
		if a[k] == "" {
			return 0
		}
		d, e := time.ParseDuration(a[k])
		if e != nil && err == nil {
			err = fmt.Errorf("%s: %v", k, e)
		}
		return d
	}
	if name != "new" && h.r == nil {
		return nil, fmt.Errorf("no room: start with new")
	}
	h.delivered = nil
	var out []string
	switch name {
	case "new":
		h.cfg = room.Config{
			Self: a["self"], Incarnation: num("inc"),
			Grace: dur("grace"), MaxGap: dur("gap"), OwnGrace: dur("own"), Retry: dur("retry"), LeaderWait: dur("leaderwait"),
			Sink: room.SinkFunc(func(key string, line []byte) {
				h.delivered = append(h.delivered, key+" <- "+strings.TrimSuffix(string(line), "\n"))
			}),
		}
		if a["users"] != "" {
			h.cfg.MaxUsers = int(num("users"))
		}
		if a["senders"] != "" {
			h.cfg.MaxSenders = int(num("senders"))
		}
		if err != nil {
			return nil, err
		}
		h.r, err = room.New("r", h.cfg)
		if err != nil {
			return nil, err
		}
		h.view = room.NewView(nil, nil)
		out = []string{"ok"}
	case "local":
		h.r.Register(a["key"], a["user"])
		out = []string{"ok"}
	case "activate", "resync":
		var line []byte
		var aerr error
		if name == "activate" {
			line, aerr = h.r.Activate(a["key"])
		} else {
			line, aerr = h.r.Resync(a["key"])
		}
		switch {
		case aerr != nil:
			out = []string{"error: " + aerr.Error()}
		case line == nil:
			out = []string{"(nothing)"}
		default:
			out = []string{a["key"] + " <- " + strings.TrimSuffix(string(line), "\n")}
		}
	case "leaving":
		h.r.MarkLeaving(a["key"])
		out = []string{"ok"}
	case "detach":
		h.r.Detach(a["key"])
		out = []string{"ok"}
	case "join", "leave", "text", "batch", "live":
		op := name
		switch {
		case name == "live" && a["c1"] != "":
			op = room.OpBatch
		case name == "live":
			op = room.OpText
		}
		rec := room.Record{Op: op, User: a["user"], Key: a["key"], Node: a["node"], T: a["t"]}
		for i := 1; a["c"+strconv.Itoa(i)] != ""; i++ {
			f := strings.SplitN(a["c"+strconv.Itoa(i)], " ", 4)
			if len(f) != 4 {
				return nil, fmt.Errorf("c%d: want \"KEY USER N TEXT\"", i)
			}
			n, perr := strconv.ParseUint(f[2], 10, 64)
			if perr != nil {
				return nil, fmt.Errorf("c%d: %v", i, perr)
			}
			rec.Recs = append(rec.Recs, room.Record{Op: room.OpText, Key: f[0], User: f[1], Seq: n, T: f[3], Dev: a["d"+strconv.Itoa(i)]})
		}
		if name == "join" {
			rec.Inc = num("inc")
		}
		if op == room.OpText {
			rec.Seq = num("n")
			rec.Dev = a["dev"]
		}
		if name == "live" {
			shown := h.r.ApplyLive(rec)
			out = append(h.delivered, "shown="+strconv.Itoa(shown), "waiting="+strconv.Itoa(h.r.Waiting()))
			break
		}
		if a["keys"] != "" {
			rec.Keys = strings.Split(a["keys"], ",")
		}
		seq := num("seq")
		if err != nil {
			return nil, err
		}
		res := h.r.Apply(seq, rec)
		out = h.delivered
		if res.Skipped {
			out = append(out, "skipped")
		}
		if res.Duplicates > 0 {
			out = append(out, "duplicates="+strconv.Itoa(res.Duplicates))
		}
		if res.Moved > 0 {
			out = append(out, "moved="+strconv.Itoa(res.Moved))
		}
		if len(res.Lost) > 0 {
			out = append(out, "lost="+strings.Join(res.Lost, ","))
		}
		if len(out) == 0 {
			out = []string{"(no deliveries)"}
		}
	case "dir":
		var nodes []directory.Node
		incs := map[string]uint64{}
		for _, k := range slices.Sorted(maps.Keys(a)) {
			if k == "vouched" {
				continue
			}
			if id, ok := strings.CutPrefix(k, "inc."); ok {
				incs[id] = num(k)
				continue
			}
			nodes = append(nodes, directory.Node{ID: k, Status: directory.Status(a[k])})
		}
		if err != nil {
			return nil, err
		}
		h.view = room.NewView(nodes, incs)
		if _, ok := a["vouched"]; ok {
			h.view = h.view.Vouched(start.Add(dur("vouched")))
		}
		out = []string{"ok"}
	case "stream":
		switch {
		case a["leader"] == "-":
			h.r.StoreLeader("", true)
		case a["leader"] != "":
			h.r.StoreLeader(a["leader"], true)
		case a["known"] == "no":
			h.r.StoreLeader("", false)
		default:
			return nil, fmt.Errorf("stream: want leader=ID, leader=- or known=no")
		}
		out = []string{"ok"}
	case "reconcile":
		now := start.Add(dur("t"))
		if err != nil {
			return nil, err
		}
		for _, rec := range h.r.Reconcile(now, h.view) {
			b, _ := json.Marshal(rec)
			out = append(out, "store "+string(b))
		}
		if len(out) == 0 {
			out = []string{"(nothing)"}
		}
	case "steward":
		if h.r.Steward(h.view) {
			out = []string{"steward"}
		} else {
			out = []string{"not steward"}
		}
	case "members":
		ms := h.r.Members()
		for _, k := range slices.Sorted(maps.Keys(ms)) {
			m := ms[k]
			out = append(out, fmt.Sprintf("%s user=%s node=%s inc=%d", k, m.User, m.Node, m.Inc))
		}
		out = append(out, fmt.Sprintf("users %q", h.r.Users()))
	case "snapshot":
		data, serr := h.r.Snapshot()
		if serr != nil {
			return nil, serr
		}
		out = []string{string(data)}
	case "restore":
		data, serr := h.r.Snapshot()
		if serr != nil {
			return nil, serr
		}
		if h.r, err = room.Restore("r", data, h.cfg); err != nil {
			return nil, err
		}
		out = []string{fmt.Sprintf("restored at seq %d", h.r.Applied())}
	default:
		return nil, fmt.Errorf("unknown command %q", name)
	}
	return out, nil
}
