// Package chaos holds the tests that hurt a cluster of real node
// processes in ways beyond kill -9: a node cut off from the others by the
// network (network namespaces made by the test, a veth pair each, a
// bridge; localcluster.Net), and healed; the external bus of nodes run
// with --bus (a real nats-server process) killed with kill -9 and started
// again on its storage; the data directories of one node, then of every
// node, on small file systems of their own (tmpfs) filled up, and freed;
// a node started on a full disk. They check what users see: no session
// left stranded while a node is up, text acknowledged before the fault
// neither lost nor shown twice after it, and the hurt nodes stepping
// aside (degraded) and coming back by themselves.
//
// The partition test needs root (CAP_NET_ADMIN) and iproute2's ip, and
// the full disk tests (Linux only) root to mount their file systems, as
// .ci/run has; elsewhere they skip and say what is missing. The bus test
// needs neither. The timed versions of the network faults are `switchboard
// bench failover --fault ...` (docs/benchmarks.md).
package chaos
