package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/leaktest"
	"github.com/switchboard/switchboard/internal/localcluster"
)

// binary is the switchboard executable built once for the scenario tests.
var binary string

func TestMain(m *testing.M) { localcluster.RunTests(leaktest.LeakChecked(m), &binary) }

// Each scenario kind, small: it runs, every policy gets a row, the
// report prints, marshals and draws, and the figures that do not depend
// on the machine's speed hold.
func TestScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("starts clusters of child processes")
	}
	tests := []struct {
		name  string
		cfg   Config
		check func(t *testing.T, r Report)
	}{
		{"storm", Config{Clients: 60, Policies: []string{"default", "dns-only", NATS, NATSDNS}}, func(t *testing.T, r Report) {
			rep := r.(*StormReport)
			for _, row := range rep.Rows {
				if sumCounts(row.PerNode) != 60 || row.Failed != 0 {
					t.Errorf("%s: %v, %d failed; want 60 sessions placed", row.Policy, row.PerNode, row.Failed)
				}
			}
			// Given every server (by list or by one name), nats.go
			// spreads its clients: not all 60 on one server.
			for _, nats := range rep.Rows[2:] {
				if len(nats.PerNode) != 3 || nats.MaxMean >= 3 {
					t.Errorf("%s: %v, want the clients spread over 3 servers", nats.Policy, nats.PerNode)
				}
			}
		}},
		{"scaleout", Config{Clients: 60, Arrivals: 30, Policies: []string{"default", NATS}}, func(t *testing.T, r Report) {
			for _, row := range r.(*ScaleoutReport).Rows {
				if len(row.PerNode) != 4 || sumCounts(row.PerNode) != 90 {
					t.Errorf("%s: %v at the end, want 90 sessions on 4 nodes", row.Policy, row.PerNode)
				}
			}
		}},
		{"failover", Config{Clients: 60, Policies: []string{"default", "dns-only", NATS}, Victim: "dns"}, func(t *testing.T, r Report) {
			// The node whose DNS responder is asked first dies: the
			// clients find the others through the other responders.
			for _, row := range r.(*FailoverReport).Rows {
				if row.Killed != "n1" {
					t.Errorf("%s: killed %s, want the first node", row.Policy, row.Killed)
				}
				if row.Held == 0 || row.Reattach.Dropped != row.Held || row.Reattach.Pending != 0 {
					t.Errorf("%s: held %d, reattach %+v; want every dropped session back", row.Policy, row.Held, row.Reattach)
				}
				if _, ok := row.Survivors[row.Killed]; ok || sumCounts(row.Survivors) != 60 {
					t.Errorf("%s: survivors %v after killing %s", row.Policy, row.Survivors, row.Killed)
				}
			}
		}},
		{"drain", Config{Clients: 30, Rooms: 2, RoomSize: 3, Rate: 5, Within: 10 * time.Second, Policies: []string{"default"}}, func(t *testing.T, r Report) {
			// The drained node's 30 idle sessions and 6 typists all moved
			// (none dropped) and the node ended empty; the typists' text
			// is whole. The nats row (lame duck mode takes 30 s at the
			// least) is the benchmark's.
			row := r.(*DrainReport).Rows[0]
			if row.Step.Reason != "empty" || row.Step.Closed != 0 || row.Dropped != 0 || row.Moved < row.Step.Asked || row.Step.Asked == 0 {
				t.Errorf("drain: %+v; want every session of the drained node moved, none dropped", row)
			}
			if _, ok := row.After[row.Drained]; ok || sumCounts(row.After) != 36 {
				t.Errorf("drain: sessions after %v; want all 36 off %s", row.After, row.Drained)
			}
			if res := row.Result; res == nil || res.MissingAcked != 0 || res.Duplicates != 0 || res.TextWrong != 0 || res.Leaves+res.Joins != 0 || len(res.Errors) != 0 {
				t.Errorf("drain: typists %+v; want nothing lost, doubled or churned", res)
			}
		}},
		{"latency", Config{Samples: 20, Policies: []string{"default"}}, func(t *testing.T, r Report) {
			rows := r.(*LatencyReport).Rows
			if len(rows) != 2 || len(rows[0].samples) != 20 || len(rows[1].samples) != 20 {
				t.Errorf("latency rows %+v, want direct and default with 20 samples each", rows)
			}
		}},
		{"detect", Config{Kills: 1, Busy: time.Second, Heartbeat: 50 * time.Millisecond}, func(t *testing.T, r Report) {
			rep := r.(*DetectReport)
			// Every peer saw the kill, the first no later than the last.
			// How fast is the scenario's figure (docs/benchmarks.md,
			// target <= 1 s), not this test's: a wall-time bound here
			// would only measure the machine running it.
			if len(rep.Kills) != 1 || rep.Kills[0].Missed != 0 || rep.Kills[0].AllMS <= 0 || rep.Kills[0].FirstMS > rep.Kills[0].AllMS {
				t.Errorf("detect: %+v, want one kill seen by every peer", rep.Kills)
			}
			if math.Abs(rep.AllMS.Max-rep.Kills[0].AllMS) > 0.01 || math.Abs(rep.FirstMS.Max-rep.Kills[0].FirstMS) > 0.01 {
				t.Errorf("detect: summaries all %+v, first %+v do not hold the one kill %+v", rep.AllMS, rep.FirstMS, rep.Kills[0])
			}
			if rep.Busy.Polls == 0 || rep.Busy.Churn == 0 {
				t.Errorf("busy check did nothing: %+v", rep.Busy)
			}
		}},
		{"ready", Config{Repeat: 1}, func(t *testing.T, r Report) {
			// The figures are a bench's; here: both starts served a join
			// on every node, after the last node started.
			rep := r.(*ReadyReport)
			if len(rep.Fresh) != 1 || len(rep.Restart) != 1 {
				t.Fatalf("ready: %+v, want one fresh run and one restart", rep)
			}
			for _, run := range append(rep.Fresh, rep.Restart...) {
				if run.JoinMS <= 0 || run.UpMS <= 0 {
					t.Errorf("ready: run %+v, want a join and /readyz 200 after the last start", run)
				}
			}
		}},
		{"rtt", Config{Rooms: 2, RoomSize: 3, Duration: time.Second, Transport: TransportWS}, func(t *testing.T, r Report) {
			// Over WebSocket: every keystroke reached every other member
			// and was acked, as over TCP. A second of typing is some 60
			// keystrokes and 120 deliveries, each counted: one lost is
			// as plain in them as in twice as many.
			rep := r.(*RTTReport)
			if rep.Transport != TransportWS || rep.Sent == 0 || rep.Delivered != rep.Expected || rep.Acked != rep.Sent || len(rep.Errors) != 0 {
				t.Errorf("rtt over ws: transport %s, sent %d, delivered %d of %d, acked %d, errors %v", rep.Transport, rep.Sent, rep.Delivered, rep.Expected, rep.Acked, rep.Errors)
			}
		}},
		{"scale", Config{Clients: 60, Duration: time.Second}, func(t *testing.T, r Report) {
			// Three nodes on three nats-server processes: the storm placed
			// every session, the killed node's sessions came back, every
			// live node showed it down and the joiner up. How fast is the
			// bench's figure (docs/benchmarks.md), not this test's.
			rep := r.(*ScaleReport)
			if rep.StormFailed != 0 || len(rep.Killed) != 1 || rep.Reattach.Pending != 0 || rep.Reattach.Dropped != rep.Held {
				t.Errorf("scale: %d failed, killed %v holding %d, reattach %+v", rep.StormFailed, rep.Killed, rep.Held, rep.Reattach)
			}
			if rep.DownMissing != 0 || rep.JoinMissing != 0 || rep.Joined != 1 {
				t.Errorf("scale: %d (node, killed) pairs never down, %d (node, joined) never up, %d joined", rep.DownMissing, rep.JoinMissing, rep.Joined)
			}
			// The nodes' own logs say the same (peerLog).
			if rep.NodeDownMissing != 0 || rep.NodeJoinMissing != 0 || rep.NodeDownMS.Max <= 0 {
				t.Errorf("scale: by the nodes' logs %d (node, killed) pairs never down, %d (node, joined) never up, down %+v", rep.NodeDownMissing, rep.NodeJoinMissing, rep.NodeDownMS)
			}
			// Each live node learned of the kill from the nats-servers'
			// disconnect event (serve --bus-system), not from silence.
			if !rep.BusWatch || rep.Disconnects != 2 {
				t.Errorf("scale: bus watch %v, %d of 2 (live, killed) pairs learned the death from a disconnect event", rep.BusWatch, rep.Disconnects)
			}
			// Both hellos list the whole directory of three nodes (their
			// bytes may differ: counts and ages change between them).
			if rep.HelloBytes == 0 || rep.HelloNodes != 3 || rep.HelloNodesV1 != 3 || rep.RSSMiB.P50 <= 0 {
				t.Errorf("scale: hellos of %d and %d bytes listing %d and %d nodes (want the whole directory, 3), RSS %+v",
					rep.HelloBytes, rep.HelloBytesV1, rep.HelloNodes, rep.HelloNodesV1, rep.RSSMiB)
			}
		}},
		{"memory", Config{Clients: 300}, func(t *testing.T, r Report) {
			rep := r.(*MemoryReport)
			// A goroutine each, give or take the node's own: one of its
			// background goroutines may end between the two readings.
			if rep.Attached != 300 || rep.After.Goroutines < rep.Before.Goroutines+290 {
				t.Errorf("memory: %+v, want 300 sessions with a goroutine each", rep)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cfg := tt.cfg
			cfg.Binary = binary
			cfg.Nodes = 3
			rep, err := RunScenario(ctx, tt.name, cfg)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, rep)
			var out bytes.Buffer
			rep.WriteTable(&out)
			if !strings.Contains(out.String(), tt.name) {
				t.Errorf("table does not name the scenario:\n%s", out.String())
			}
			if _, err := json.Marshal(rep); err != nil {
				t.Errorf("marshal: %v", err)
			}
			for _, c := range rep.Charts() {
				var svg bytes.Buffer
				if err := c.Render(&svg); err != nil || !strings.Contains(svg.String(), "<svg") {
					t.Errorf("chart %s: %v", c.Name, err)
				}
			}
		})
	}
}

// TestScaleRegions runs scale on a supercluster: two NATS clusters of
// two servers joined by gateways, two nodes on each. Every node listed
// the other region's two nodes, a session of each region's group dialled
// through the other region landed in its own, a room carried text across
// the gateway, and the kill was learned from a disconnect event. The
// nodes run with GOMAXPROCS=1 (--node-env) and the joiner is started on
// its own (--serial-joins): it came up on every node.
func TestScaleRegions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts clusters of child processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := RunScenario(ctx, "scale", Config{Binary: binary, Nodes: 4, Clients: 20, Kills: 1, Duration: time.Second, Regions: []string{"eu", "us"},
		NodeEnv: []string{"GOMAXPROCS=1"}, SerialJoins: true})
	if err != nil {
		t.Fatal(err)
	}
	rep := r.(*ScaleReport)
	if rep.CrossListed != 4*2 {
		t.Errorf("%d (node, node of another region) pairs listed up, want 8", rep.CrossListed)
	}
	if len(rep.CrossAttach) != 2 {
		t.Errorf("cross attaches %+v, want one per region", rep.CrossAttach)
	}
	for _, c := range rep.CrossAttach {
		if c.LandedGroup != c.Want {
			t.Errorf("a session of group %s dialled at %s landed on %s of group %s", c.Want, c.Via, c.Landed, c.LandedGroup)
		}
	}
	if rep.RoomAcross == nil || !rep.RoomAcross.Delivered {
		t.Errorf("room across regions %+v, want the text delivered", rep.RoomAcross)
	}
	if !rep.SerialJoins || rep.Joined != 1 || rep.NodeJoinMissing != 0 {
		t.Errorf("serial joins %v: %d joined, %d (node, joined) pairs never up by the nodes' logs", rep.SerialJoins, rep.Joined, rep.NodeJoinMissing)
	}
	if rep.StormFailed != 0 || rep.DownMissing != 0 || rep.Disconnects != 3 {
		t.Errorf("%d failed, %d (node, killed) pairs never down, %d of 3 (live, killed) pairs learned from a disconnect event", rep.StormFailed, rep.DownMissing, rep.Disconnects)
	}
	var out bytes.Buffer
	rep.WriteTable(&out)
	if !strings.Contains(out.String(), "regions eu,us") {
		t.Errorf("table does not name the regions:\n%s", out.String())
	}
}

func TestRunScenarioRejects(t *testing.T) {
	tests := []struct {
		name, scenario string
		cfg            Config
		want           string
	}{
		{"unknown scenario", "nope", Config{Binary: "x"}, "unknown scenario"},
		{"unknown policy", "storm", Config{Binary: "x", Policies: []string{"fastest"}}, "unknown policy"},
		{"failover cannot use a running service", "failover", Config{Service: "127.0.0.1:7070"}, "cannot use --service"},
		{"nats with a running service", "storm", Config{Service: "127.0.0.1:7070", Policies: []string{NATS}}, "nats baseline"},
		{"bad common address", "storm", Config{Binary: "x", Common: "carrier-pigeon"}, "want dns or list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := RunScenario(context.Background(), tt.scenario, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("RunScenario = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// With TLS, latency and storm measure every path plain and with TLS in
// one run, by first-time and by returning clients: the TLS rows exist,
// next to the plain ones, every TLS attach succeeded, the first-time
// clients' rows made full handshakes and the returning clients' none.
// How much TLS costs is the scenarios' figure (docs/benchmarks.md), not
// this test's.
func TestScenariosTLS(t *testing.T) {
	t.Run("latency", func(t *testing.T) {
		rep := runTLS(t, "latency", Config{Samples: 10, Policies: []string{"default"}}).(*LatencyReport)
		var names []string
		for _, row := range rep.Rows {
			names = append(names, row.Name)
			if row.Failed != 0 || len(row.samples) != 10 {
				t.Errorf("%s: %d failed, %d samples; want 10 attaches", row.Name, row.Failed, len(row.samples))
			}
			if row.TLS != strings.Contains(row.Name, tlsSuffix) || (row.TLS && row.VsPlain <= 0) {
				t.Errorf("%s: tls %v, p50 vs plain %v", row.Name, row.TLS, row.VsPlain)
			}
			checkHandshakes(t, row.Name, row.kind(), row.Handshakes, 10)
		}
		if want := "direct default direct+tls default+tls direct+tls-resumed default+tls-resumed"; strings.Join(names, " ") != want {
			t.Errorf("latency rows %q, want %q", names, want)
		}
	})
	t.Run("storm", func(t *testing.T) {
		rep := runTLS(t, "storm", Config{Clients: 50, Policies: []string{"default"}}).(*StormReport)
		if len(rep.Rows) != 3 || rep.Rows[0].kind() != plainTCP || rep.Rows[1].kind() != tlsFirstTime || rep.Rows[2].kind() != tlsReturning {
			t.Fatalf("storm rows %+v, want default plain, then with TLS by first-time and by returning clients", rep.Rows)
		}
		for _, row := range rep.Rows {
			name := rowName(row.Policy, row.kind())
			if sumCounts(row.PerNode) != 50 || row.Failed != 0 || row.PrimeFailed != 0 {
				t.Errorf("%s: %v, %d failed, %d earlier visits failed (%v); want 50 sessions placed", name, row.PerNode, row.Failed, row.PrimeFailed, row.Errors)
			}
			if row.TLS && row.VsPlain <= 0 {
				t.Errorf("%s: TLS row without its ratio to plain: %+v", name, row)
			}
			checkHandshakes(t, name, row.kind(), row.Handshakes, 50)
			if row.NodesCPUMS <= 0 || row.ClientsCPUMS <= 0 {
				t.Errorf("%s: CPU nodes %v ms, clients %v ms; want both read", name, row.NodesCPUMS, row.ClientsCPUMS)
			}
			if row.NodesCPUPerSessionMS <= 0 || (row.TLS && row.NodesCPUVsPlain <= 0) {
				t.Errorf("%s: nodes' CPU per session %v ms, vs plain %v; want both", name, row.NodesCPUPerSessionMS, row.NodesCPUVsPlain)
			}
		}
		var fair int
		for _, tg := range rep.Targets {
			if strings.Contains(tg.What, "nodes' CPU per session") {
				fair++
			}
		}
		if fair != 2 {
			t.Errorf("%d targets of the nodes' CPU per session, want one per kind of TLS client: %+v", fair, rep.Targets)
		}
	})
	t.Run("other scenarios refuse it", func(t *testing.T) {
		_, err := RunScenario(context.Background(), "failover", Config{Binary: binary, TLS: true})
		if err == nil || !strings.Contains(err.Error(), "--tls") {
			t.Errorf("failover with TLS: %v, want a refusal", err)
		}
	})
}

// checkHandshakes checks a row's TLS handshakes for dials attaches of
// clients of kind: none without TLS, one full handshake per first-time
// client (its attach at another node resumes the hello's session), and
// not one full handshake for returning clients. A first-time client
// whose first connection is not made within the hello stagger (250 ms,
// on a starved machine) says hello to a second address as well, before
// it holds a ticket: a second full handshake, at most one in ten here.
func checkHandshakes(t *testing.T, name string, kind tlsKind, h *Handshakes, dials int) {
	t.Helper()
	switch {
	case kind == plainTCP && h != nil:
		t.Errorf("%s: TLS handshakes %+v on plain TCP", name, *h)
	case kind == plainTCP:
	case h == nil:
		t.Errorf("%s: no TLS handshakes counted", name)
	case kind == tlsFirstTime && (h.Full < dials || h.Full > 2*dials):
		// One full handshake per client; on a loaded machine a client
		// whose first connection is not made within the bootstrap's
		// stagger says hello to a second address too before it holds a
		// ticket: a second full handshake (64 for 50 clients, the most
		// seen). The attach after the hello resumes: returning clients'
		// rows check that no full handshake is made with a ticket held.
		t.Errorf("%s: %+v handshakes of first-time clients, want %d full (2 a client at most, staggered hellos)", name, *h, dials)
	case kind == tlsReturning && (h.Full != 0 || h.Resumed < dials):
		t.Errorf("%s: %+v handshakes of returning clients, want none full and at least %d resumed", name, *h, dials)
	}
}

// runTLS runs a scenario small with Config.TLS on 3 nodes and checks that
// its table shows the TLS comparison and the TLS targets of both kinds of
// client.
func runTLS(t *testing.T, name string, cfg Config) Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg.Binary, cfg.Nodes, cfg.TLS = binary, 3, true
	rep, err := RunScenario(ctx, name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep.WriteTable(&out)
	if !strings.Contains(out.String(), "TLS on the client listener vs plain TCP") ||
		!strings.Contains(out.String(), "TLS ("+tlsFirstTime.clients()+") vs plain") || !strings.Contains(out.String(), "TLS ("+tlsReturning.clients()+") vs plain") {
		t.Errorf("table without the TLS comparison or target:\n%s", out.String())
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Errorf("marshal: %v", err)
	}
	return rep
}
