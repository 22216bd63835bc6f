package pick

import (
	"fmt"
	"strings"

	"github.com/switchboard/switchboard/directory"
)

// Default returns the default policy: Available, then Affinity, then
// Balanced with default settings. A nil r means DefaultRand().
func Default(r Rand) Policy {
	return Chain(Balanced{Rand: r}, Available, Affinity)
}

// names lists the policies ByName knows, in the order Names returns them.
var names = []struct {
	name, doc string
	build     func(Rand) Policy
}{
	{"default", "status, then group, then least loaded (p2c when stale)", Default},
	{"p2c", "status, then power of two choices by load", func(r Rand) Policy { return Chain(P2C(r), Available) }},
	{"least-users", "status, then lowest load", func(r Rand) Policy { return Chain(LeastUsers(r), Available) }},
	{"random", "status, then uniform random", func(r Rand) Policy { return Chain(Random(r), Available) }},
	{"group", "status, then group, then uniform random", func(r Rand) Policy { return Chain(Random(r), Available, Affinity) }},
}

// Names returns the names ByName accepts, "default" first.
func Names() []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n.name
	}
	return out
}

// Describe returns a one-line description of the named policy, or "" for
// an unknown name. It is meant for CLI help.
func Describe(name string) string {
	for _, n := range names {
		if n.name == name {
			return n.doc
		}
	}
	return ""
}

// DNSOnly is the name of the baseline that attaches to whichever node the
// common address led to, as a plain round-robin front does. ByName accepts
// it; Names leaves it out because it is a baseline, not a policy to choose.
const DNSOnly = "dns-only"

// Answerer is the chooser of the dns-only baseline: it takes the node named
// by Request.Self if it is among the candidates, and otherwise fails with
// ErrNoNode so that the client asks the common address again.
func Answerer() Policy {
	return PolicyFunc(func(nodes []directory.Node, req Request) (Result, error) {
		for _, n := range nodes {
			if n.ID == req.Self {
				return Result{Node: n, Reason: "dns-only: " + n.ID + " answered the common address"}, nil
			}
		}
		return Result{}, fmt.Errorf("%w: the node that answered is not available", ErrNoNode)
	})
}

// ByName returns the named policy, drawing from r (nil means DefaultRand()).
// Every named policy starts with the Available filter:
//
//	default      Available, Affinity, Balanced
//	p2c          Available, P2C
//	least-users  Available, LeastUsers
//	random       Available, Random
//	group        Available, Affinity, Random
//
// An unknown name gets an error listing the valid ones.
func ByName(name string, r Rand) (Policy, error) {
	for _, n := range names {
		if n.name == name {
			return n.build(r), nil
		}
	}
	if name == DNSOnly {
		return Chain(Answerer(), Available), nil
	}
	return nil, fmt.Errorf("pick: unknown policy %q (valid: %s)", name, strings.Join(append(Names(), DNSOnly), ", "))
}
