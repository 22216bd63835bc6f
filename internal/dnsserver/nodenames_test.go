package dnsserver

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/switchboard/switchboard/directory"
)

// TestNodeNamesAgree: responders that hold different sets of nodes (one
// has heard of a node the other has not, or still lists one the other has
// forgotten) give one node name the same node. A name under node.<zone>
// depends on the node's ID alone: IDs that clean up to the same label
// (Web1 and web1; IDs of letters no label holds, which both clean up to
// nothing) must not take turns at it by which of them a responder holds.
// Every name either responder's SRV answer points to is asked of both,
// over the network; each answers it with the same address or, not holding
// that node, NXDOMAIN.
func TestNodeNamesAgree(t *testing.T) {
	web1 := upNode("web1", "127.0.0.1:7001", 0, 10)
	Web1 := upNode("Web1", "127.0.0.2:7002", 0, 10)
	ja := upNode("日本", "127.0.0.3:7003", 0, 10)
	cn := upNode("中国", "127.0.0.4:7004", 0, 10)
	down := func(n directory.Node) directory.Node { n.Status = directory.Down; return n }
	sets := []struct {
		name string
		a, b []directory.Node // the two responders' directories, in ID order
	}{
		{"one holds both IDs that clean up alike, the other the second",
			[]directory.Node{Web1, web1}, []directory.Node{web1}},
		{"one holds both IDs that clean up alike, the other the first",
			[]directory.Node{Web1, web1}, []directory.Node{Web1}},
		{"one still lists a down node the other has forgotten",
			[]directory.Node{down(Web1), web1}, []directory.Node{web1}},
		{"IDs that clean up to nothing",
			[]directory.Node{cn, ja}, []directory.Node{ja}},
		{"IDs that clean up to nothing, the other one held",
			[]directory.Node{cn, ja}, []directory.Node{cn}},
	}
	for _, set := range sets {
		t.Run(set.name, func(t *testing.T) {
			responders := []*Server{startServer(t, newDir(set.a...)), startServer(t, newDir(set.b...))}
			var names []string
			for _, s := range responders {
				r := exchange(t, "udp", s.Addr(), query("_switchboard._tcp.chat.test.", dns.TypeSRV, 1232))
				for _, rr := range r.Answer {
					if name := rr.(*dns.SRV).Target; !slices.Contains(names, name) {
						names = append(names, name)
					}
				}
			}
			if len(names) == 0 {
				t.Fatal("no SRV targets")
			}
			for _, name := range names {
				addrs := map[string]int{} // address: responders that gave it
				for i, s := range responders {
					r := exchange(t, "udp", s.Addr(), query(name, dns.TypeA, 1232))
					switch got := ips(r.Answer); {
					case r.Rcode == dns.RcodeNameError:
					case r.Rcode == dns.RcodeSuccess && len(got) == 1:
						addrs[got[0]]++
					default:
						t.Errorf("responder %d, %s A: %s %v, want NXDOMAIN or one address", i, name, dns.RcodeToString[r.Rcode], got)
					}
				}
				if len(addrs) > 1 {
					t.Errorf("%s names different nodes on the two responders: %v", name, addrs)
				}
			}
		})
	}

	// The names themselves: the plain ID where it is a label already.
	s := startServer(t, newDir(Web1, web1, ja))
	for name, want := range map[string]string{
		"web1.node.chat.test.":          "127.0.0.1",
		"web1-13f03c00.node.chat.test.": "127.0.0.2",
	} {
		r := exchange(t, "udp", s.Addr(), query(name, dns.TypeA, 0))
		if got := ips(r.Answer); len(got) != 1 || got[0] != want {
			t.Errorf("%s A: %s %v, want %s", name, dns.RcodeToString[r.Rcode], got, want)
		}
	}
}

// TestNodeLabelCollision: an ID that is another ID's hashed label (made
// so on purpose: by chance it takes a 32-bit hash collision) does not
// make that name answer two nodes. The first in the directory keeps it;
// the other has no name, so no SRV record, and stays in the service's A
// records.
func TestNodeLabelCollision(t *testing.T) {
	s := startServer(t, newDir(
		upNode("Web1", "127.0.0.2:7002", 0, 10),
		upNode("web1-13f03c00", "127.0.0.5:7005", 0, 10),
	))
	if r := exchange(t, "udp", s.Addr(), query("web1-13f03c00.node.chat.test.", dns.TypeA, 0)); strings.Join(ips(r.Answer), " ") != "127.0.0.2" {
		t.Errorf("the shared name: %s %v, want the first node's address alone", dns.RcodeToString[r.Rcode], ips(r.Answer))
	}
	if r := exchange(t, "udp", s.Addr(), query("_switchboard._tcp.chat.test.", dns.TypeSRV, 0)); len(r.Answer) != 1 || r.Answer[0].(*dns.SRV).Port != 7002 {
		t.Errorf("SRV answer %v, want the first node's alone", r.Answer)
	}
	if r := exchange(t, "udp", s.Addr(), query("chat.test.", dns.TypeA, 0)); strings.Join(sortedCopy(ips(r.Answer)), " ") != "127.0.0.2 127.0.0.5" {
		t.Errorf("service A %v, want both nodes", ips(r.Answer))
	}
}
