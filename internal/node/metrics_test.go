package node_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/node"
	"github.com/switchboard/switchboard/internal/nodetest"
	"github.com/switchboard/switchboard/wire"
)

// promtoolPackage is the Debian package that ships promtool.
const promtoolPackage = "prometheus"

// series is one sample of a gathered metric: a counter's or gauge's value,
// or a histogram's count and sum.
type series struct {
	labels map[string]string
	value  float64
	count  uint64
}

// gather returns every series of the metric name in n's registry.
func gather(t *testing.T, n *node.Node, name string) []series {
	t.Helper()
	families, err := n.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []series
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			s := series{labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.GetCounter() != nil:
				s.value = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				s.value = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				s.count = m.GetHistogram().GetSampleCount()
				s.value = m.GetHistogram().GetSampleSum()
			}
			out = append(out, s)
		}
	}
	return out
}

// one returns the single series of name whose labels include want.
func one(t *testing.T, n *node.Node, name string, want map[string]string) (series, error) {
	t.Helper()
	var found []series
next:
	for _, s := range gather(t, n, name) {
		for k, v := range want {
			if s.labels[k] != v {
				continue next
			}
		}
		found = append(found, s)
	}
	if len(found) != 1 {
		return series{}, fmt.Errorf("%s%v: %d series, want 1", name, want, len(found))
	}
	return found[0], nil
}

// wireCodes reads the values of the wire package's Code constants from
// its source, so that a code added there without a metric label fails.
func wireCodes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "wire", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Code") || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						code, err := strconv.Unquote(lit.Value)
						if err != nil {
							t.Fatal(err)
						}
						codes = append(codes, code)
					}
				}
			}
		}
	}
	if len(codes) < 10 {
		t.Fatalf("found %d Code constants in ../../wire, want all of them: %q", len(codes), codes)
	}
	return codes
}

// checkStatus checks that switchboard_node_status is 1 for want only.
func checkStatus(t *testing.T, n *node.Node, want directory.Status) error {
	t.Helper()
	all := gather(t, n, "switchboard_node_status")
	if len(all) != 6 {
		return fmt.Errorf("switchboard_node_status has %d series, want 6 (one a status)", len(all))
	}
	for _, s := range all {
		if got, wantV := s.value, map[bool]float64{true: 1}[s.labels["status"] == string(want)]; got != wantV {
			return fmt.Errorf("switchboard_node_status{status=%q} = %v, want %v (node is %s)", s.labels["status"], got, wantV, want)
		}
	}
	return nil
}

// Every labelled series exists at zero before its first event; an attach,
// a text round trip and a bad line then each show in their metric.
func TestMetricsObserveEvents(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.Version = "v9.8.7-metrics" // as serve sets it, -ldflags' version first
	}})
	c.WaitRoomsReady(wait)
	n := c.Nodes[0]

	for _, code := range wireCodes(t) {
		s, err := one(t, n, "switchboard_bad_input_total", map[string]string{"code": code})
		if err != nil || s.value != 0 {
			t.Errorf("before any input: %v, value %v; want a series at 0", err, s.value)
		}
	}
	for name, labels := range map[string][]map[string]string{
		"switchboard_attach_refused_total":      {{"code": wire.CodeFull}, {"code": wire.CodeDraining}},
		"switchboard_directory_changes_total":   {{"kind": "stale"}, {"kind": "removed"}},
		"switchboard_room_records_stored_total": {{"op": "join"}, {"op": "leave"}, {"op": "text"}},
	} {
		for _, l := range labels {
			if _, err := one(t, n, name, l); err != nil {
				t.Errorf("before any event: %v", err)
			}
		}
	}
	for _, name := range []string{"switchboard_attach_seconds", "switchboard_room_store_seconds", "switchboard_room_delivery_seconds"} {
		s, err := one(t, n, name, nil)
		if err != nil || s.count != 0 {
			t.Errorf("before any event: %v, count %d; want a histogram with no observations", err, s.count)
		}
	}
	build, err := one(t, n, "switchboard_build_info", nil)
	if err != nil || build.value != 1 || build.labels["version"] != "v9.8.7-metrics" || build.labels["revision"] == "" || !strings.HasPrefix(build.labels["goversion"], "go") {
		t.Errorf("switchboard_build_info = %+v (%v); want 1 with the node's version, a revision and goversion", build, err)
	}
	if err := checkStatus(t, n, directory.Up); err != nil {
		t.Error(err)
	}

	// An attach each, a text round trip from alice to bob.
	alice, bob := newPeer(t, n.Addr(), "alice"), newPeer(t, n.Addr(), "bob")
	alice.join("r")
	bob.join("r")
	alice.acked("r", alice.typeText("r", "hi"))
	bob.await("alice's i", func(m wire.Message) bool { return m.Op == wire.OpText && m.From == "alice" && m.T == "i" })
	nodetest.Eventually(t, wait, func() error {
		for name, want := range map[string]uint64{"switchboard_attach_seconds": 2, "switchboard_room_store_seconds": 2} {
			if s, err := one(t, n, name, nil); err != nil || s.count != want {
				return fmt.Errorf("%s: %v, %d observations; want %d", name, err, s.count, want)
			}
		}
		// bob gets both chunks, alice bob's join.
		d, err := one(t, n, "switchboard_room_delivery_seconds", nil)
		if err != nil || d.count < 3 || d.value < 0 {
			return fmt.Errorf("switchboard_room_delivery_seconds: %v, %d observations, sum %v; want at least 3", err, d.count, d.value)
		}
		total, err := one(t, n, "switchboard_room_deliveries_total", nil)
		if err != nil || uint64(total.value) != d.count {
			return fmt.Errorf("switchboard_room_deliveries_total = %v (%v); want the histogram's count %d", total.value, err, d.count)
		}
		return nil
	})

	// A bad line is counted under its code, and only there.
	raw, err := net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	fmt.Fprint(raw, "{nope\n")
	_ = raw.SetReadDeadline(time.Now().Add(wait))
	line, err := wire.NewLineReader(raw, 0).Next()
	if err != nil || !strings.Contains(string(line), wire.CodeBadJSON) {
		t.Fatalf("answer to a bad line: %q, %v; want %s", line, err, wire.CodeBadJSON)
	}
	nodetest.Eventually(t, wait, func() error {
		for _, s := range gather(t, n, "switchboard_bad_input_total") {
			want := 0.0
			if s.labels["code"] == wire.CodeBadJSON {
				want = 1
			}
			if s.value != want {
				return fmt.Errorf("switchboard_bad_input_total%v = %v, want %v", s.labels, s.value, want)
			}
		}
		return nil
	})

	n.SetDraining(true)
	if err := checkStatus(t, n, directory.Draining); err != nil {
		t.Error(err)
	}
}

// A real node's /metrics passes promtool's checks, and the embedded NATS
// monitoring endpoint answers when asked for.
func TestMetricsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (%v): install Debian's %q package (apt-get install -y %s); this test checks /metrics with it", err, promtoolPackage, promtoolPackage)
	}
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.NATSMonitor = "127.0.0.1:0"
	}})
	n := c.Nodes[0]
	get := func(url string) []byte {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d, %v", url, resp.StatusCode, err)
		}
		return body
	}

	// Observations first, so that the histograms expose filled buckets.
	p := dial(t, n.Addr())
	attach(t, p, "alice")
	send(t, p, wire.Message{Op: "teleport"})
	if m := recvReply(t, p); m.Code != wire.CodeUnknownOp {
		t.Fatalf("got %+v, want %s", m, wire.CodeUnknownOp)
	}
	body := get("http://" + n.HTTPAddr() + "/metrics")
	for _, want := range []string{"switchboard_attach_seconds_bucket{le=\"0.0005\"}", "switchboard_build_info{", "switchboard_node_status{status=\"up\"} 1", "switchboard_bad_input_total{code=\"unknown_op\"} 1"} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	// Every metric the alerting rules name is on the page, so that a
	// renamed metric cannot leave a rule that never fires.
	for _, name := range alertMetrics(t) {
		if name == certExpiryMetric {
			continue // only with TLS: TestReloadClientCertificate checks it
		}
		if slices.Contains(clusterOnlyMetrics, name) {
			continue // only with a clustered NATS: TestAlertMetricsOfACluster
		}
		if !regexp.MustCompile(`(?m)^` + name + `[ {]`).Match(body) {
			t.Errorf("deploy/alerts.yml names %s, which /metrics lacks", name)
		}
	}

	addr := n.MonitorAddr()
	if addr == "" {
		t.Fatal("NATSMonitor set, but no monitoring address")
	}
	var varz struct {
		ServerName string `json:"server_name"`
	}
	if err := json.Unmarshal(get("http://"+addr+"/varz"), &varz); err != nil || varz.ServerName != n.ID() {
		t.Errorf("GET /varz: server_name %q (%v), want %q", varz.ServerName, err, n.ID())
	}
}

// certExpiryMetric is the alerting rules' one metric that a node serves
// only with TLS.
const certExpiryMetric = "switchboard_certificate_expiry_timestamp_seconds"

// clusterOnlyMetrics are the metrics deploy/alerts.yml names that a node
// exports only when it embeds a clustered NATS (a --cluster listener, no
// --bus): the rooms' stream gauges.
var clusterOnlyMetrics = []string{"switchboard_room_streams", "switchboard_room_streams_caught_up"}

// The metrics the alerting rules name that a node alone does not export
// are on the /metrics page of a node of a cluster, so that a renamed one
// cannot leave a rule that never fires either.
func TestAlertMetricsOfACluster(t *testing.T) {
	named := alertMetrics(t)
	for _, name := range clusterOnlyMetrics {
		if !slices.Contains(named, name) {
			t.Errorf("clusterOnlyMetrics lists %s, which %s does not name: drop it", name, alertsFile)
		}
	}
	c := nodetest.Start(t, 2, nodetest.Options{})
	resp, err := http.Get("http://" + c.Nodes[0].HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d, %v", resp.StatusCode, err)
	}
	for _, name := range clusterOnlyMetrics {
		if !regexp.MustCompile(`(?m)^` + name + `[ {]`).Match(body) {
			t.Errorf("deploy/alerts.yml names %s, which a cluster node's /metrics lacks", name)
		}
	}
}

// alertsFile holds the alerting rules shipped for operators.
const alertsFile = "../../deploy/alerts.yml"

// alertMetrics lists the metrics deploy/alerts.yml names: the node's own
// (switchboard_) and the process collector's (process_).
func alertMetrics(t *testing.T) []string {
	t.Helper()
	rules, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`\b(?:switchboard|process)_[a-z_]+`).FindAllString(string(rules), -1)
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) == 0 {
		t.Fatalf("%s names no switchboard_ metric", alertsFile)
	}
	return names
}

// The alerting rules load in Prometheus (promtool check rules) and fire
// as their cases in deploy/alerts_test.yml say (promtool test rules).
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (%v): install Debian's %q package (apt-get install -y %s); this test checks deploy/alerts.yml with it", err, promtoolPackage, promtoolPackage)
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = filepath.Dir(alertsFile)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// serve's DNS bounds reach the responder, and its refusals are counted in
// /metrics: with --dns-max-tcp 1 a second TCP connection is closed at
// once and switchboard_dns_tcp_refused_total counts it.
func TestDNSLimitsAreCounted(t *testing.T) {
	c := nodetest.Start(t, 1, nodetest.Options{Configure: func(_ int, cfg *node.Config) {
		cfg.DNS = "127.0.0.1:0"
		cfg.DNSMaxTCP = 1
	}})
	n := c.Nodes[0]
	first, err := net.Dial("tcp", n.DNSAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	nodetest.Eventually(t, wait, func() error {
		second, err := net.Dial("tcp", n.DNSAddr())
		if err != nil {
			return err
		}
		defer second.Close()
		_ = second.SetReadDeadline(time.Now().Add(wait))
		if _, err := second.Read(make([]byte, 1)); err != io.EOF {
			return fmt.Errorf("a second TCP connection: read %v, want it closed (EOF)", err)
		}
		return nil
	})
	for _, s := range gather(t, n, "switchboard_dns_tcp_refused_total") {
		if s.value < 1 {
			t.Errorf("switchboard_dns_tcp_refused_total = %v, want at least 1", s.value)
		}
		return
	}
	t.Error("no switchboard_dns_tcp_refused_total on a node with DNS")
}
