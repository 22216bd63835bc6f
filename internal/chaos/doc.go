// Package chaos holds the tests that hurt a cluster of real node
// processes in ways beyond kill -9: a node cut off from the others by the
// network (network namespaces made by the test, a veth pair each, a
// bridge; localcluster.Net), and healed. They check what users see: no
// session left stranded while a majority is up, text acknowledged before
// the fault neither lost nor shown twice after it, and the cut-off node
// stepping aside (degraded) and coming back by itself.
//
// The tests need root (CAP_NET_ADMIN) and iproute2's ip, as .ci/run has;
// elsewhere they skip and say which is missing. The timed versions of the
// same faults are `switchboard bench failover --fault ...`
// (docs/benchmarks.md).
package chaos
