package node

import (
	"testing"
	"time"
)

// The storage watch, step by step: what it reads each second and what it
// tells the node to do. The times are seconds from an arbitrary start.
func TestStorageWatch(t *testing.T) {
	const mib = 1 << 20
	running := storageRead{ready: true, leader: true}
	stopping := storageRead{stopped: true, stopping: true, free: 0, size: 1 << 40, known: true}
	full := storageRead{stopped: true, free: 0, size: 1 << 40, known: true}
	freed := storageRead{stopped: true, free: 100 * mib, size: 1 << 40, known: true}
	smallFreed := storageRead{stopped: true, free: 7 * mib, size: 64 * mib, known: true} // 10% of 64 MiB is less than 64 MiB
	unknown := storageRead{stopped: true}
	unknownStopping := storageRead{stopped: true, stopping: true}
	restarted := storageRead{ready: true} // electing its metadata leader
	current := storageRead{ready: true, leader: true, current: true}
	steps := []struct {
		at   int // seconds
		read storageRead
		want storageAction
	}{
		{0, running, storageKeep},
		{1, stopping, storageLose},
		{2, stopping, storageKeep}, // nats-server is still taking it down
		{3, full, storageKeep},     // the stop has finished: once is not twice
		{4, full, storageWait},
		{5, freed, storageRestart},
		{6, full, storageKeep}, // stopped again at once: retried 5 s after the last try
		{9, full, storageKeep},
		{10, full, storageWait},
		{11, smallFreed, storageRestart},
		{12, restarted, storageKeep}, // running, not following its leader yet
		{13, restarted, storageKeep},
		{14, current, storageBack},
		{15, current, storageKeep},
		{16, unknown, storageLose},
		{17, unknown, storageRestart}, // space unknown: try anyway
		{18, unknown, storageKeep},
		{22, unknownStopping, storageKeep},
		{23, unknown, storageKeep},
		{24, unknown, storageRestart},
	}
	names := map[storageAction]string{storageKeep: "keep", storageLose: "lose", storageWait: "wait", storageRestart: "restart", storageBack: "back"}
	var w storageWatch
	start := time.Unix(1_000_000, 0)
	for _, s := range steps {
		if got := w.next(start.Add(time.Duration(s.at)*time.Second), s.read); got != s.want {
			t.Fatalf("at %d s, reading %+v: %s, want %s", s.at, s.read, names[got], names[s.want])
		}
	}
}

// A JetStream that runs without a metadata leader, read by read (seconds
// from an arbitrary start): a node still waiting for its first election
// (not ready) keeps waiting; a ready one without a leader for
// leaderlessFor steps aside, and comes back once it follows a leader
// again. A leader known for one read starts the count afresh. (The
// watch here waits 15 s; the node's, leaderlessFor.)
func TestStorageWatchLeaderless(t *testing.T) {
	starting := storageRead{}
	electing := storageRead{ready: true}
	led := storageRead{ready: true, leader: true}
	current := storageRead{ready: true, leader: true, current: true}
	full := storageRead{stopped: true, free: 0, size: 1 << 40, known: true}
	freed := storageRead{stopped: true, free: 100 << 20, size: 1 << 40, known: true}
	steps := []struct {
		at   int // seconds
		read storageRead
		want storageAction
	}{
		{0, starting, storageKeep},
		{30, starting, storageKeep}, // a first election, however long, is not a loss
		{31, electing, storageKeep}, // ready, and no leader read yet: since 31
		{45, electing, storageKeep},
		{46, electing, storageLeaderless},
		{47, current, storageBack},
		{48, electing, storageKeep}, // no leader since 48
		{62, electing, storageKeep},
		{63, electing, storageLeaderless},
		{64, electing, storageKeep},
		{65, led, storageKeep}, // a leader, but not followed yet
		{66, current, storageBack},
		{67, electing, storageKeep}, // no leader since 67
		{80, led, storageKeep},      // one again: the count starts afresh
		{81, electing, storageKeep}, // since 81
		{95, electing, storageKeep},
		{96, electing, storageLeaderless},
		{97, full, storageLose}, // stopped meanwhile: a full disk is told as such
		{98, full, storageWait},
		{99, freed, storageRestart},
		{100, electing, storageKeep},
		{105, full, storageKeep}, // stopped again: the stop seen finished once is not twice
		{106, freed, storageRestart},
		{108, electing, storageKeep}, // restarted, electing
		{130, electing, storageKeep},
		{131, current, storageBack},
	}
	names := map[storageAction]string{storageKeep: "keep", storageLose: "lose", storageWait: "wait", storageRestart: "restart", storageBack: "back", storageLeaderless: "leaderless"}
	w := storageWatch{leaderlessFor: 15 * time.Second}
	start := time.Unix(1_000_000, 0)
	for _, s := range steps {
		if got := w.next(start.Add(time.Duration(s.at)*time.Second), s.read); got != s.want {
			t.Fatalf("at %d s, reading %+v: %s, want %s", s.at, s.read, names[got], names[s.want])
		}
	}
}

// Raft groups stopped while JetStream runs, read by read (seconds from
// an arbitrary start; the jitter here is 1 s). A group stopped for 5 s,
// then eligible for the jitter (room in the descriptor table, every peer
// up or JetStream leaderless), makes the node step aside, and the next
// check stops JetStream; the stop then goes as any other, and its restart
// waits for room in the table too. Each group is timed on its own: groups
// that take turns being stopped add nothing up. A repair may come while
// JetStream runs as it should, after the leaderless step aside, or after
// a restart that has not caught up; one within 10 min of the last waits
// 15 s longer, then 30 s, and so on.
func TestStorageWatchStoppedGroups(t *testing.T) {
	running := storageRead{ready: true, leader: true}
	broken := func(groups ...string) storageRead {
		return storageRead{ready: true, leader: true, stoppedGroups: groups, room: true, peersUp: true}
	}
	brokenFull := storageRead{ready: true, leader: true, stoppedGroups: []string{"R"}, peersUp: true} // no descriptors to spare
	brokenPeerDown := storageRead{ready: true, leader: true, stoppedGroups: []string{"R"}, room: true}
	stopping := storageRead{stopped: true, stopping: true, size: 1 << 40, free: 1 << 30, known: true, room: true}
	stopped := storageRead{stopped: true, size: 1 << 40, free: 1 << 30, known: true, room: true}
	stoppedFull := storageRead{stopped: true, size: 1 << 40, free: 1 << 30, known: true} // the table full again
	stoppedDiskFull := storageRead{stopped: true, size: 1 << 40, known: true}
	restarted := storageRead{ready: true}
	restartedBroken := storageRead{ready: true, stoppedGroups: []string{"_meta_"}, room: true} // a peer aside too, but no leader
	current := storageRead{ready: true, leader: true, current: true}
	leaderlessBroken := storageRead{ready: true, stoppedGroups: []string{"_meta_"}, room: true}
	leaderlessNoRoom := storageRead{ready: true, stoppedGroups: []string{"_meta_"}}
	steps := []struct {
		at   int // seconds
		read storageRead
		want storageAction
	}{
		{0, running, storageKeep},
		{1, broken("A"), storageKeep}, // A since 1
		{5, broken("A"), storageKeep},
		{6, running, storageKeep},           // gone: the count starts afresh
		{7, broken("A"), storageKeep},       // A since 7
		{8, broken("B"), storageKeep},       // A gone, B since 8
		{12, broken("A", "B"), storageKeep}, // A since 12; B 4 s
		{13, broken("A", "B"), storageKeep}, // B 5 s: eligible since 13
		{14, broken("A", "B"), storageRepair},
		{15, broken("A", "B"), storageStop}, // a check later
		{16, stopping, storageLose},         // the stop
		{17, stopped, storageKeep},          // finished once is not twice
		{18, stoppedFull, storageKeep},
		{19, stopped, storageRestart},
		{20, restarted, storageKeep},
		{21, current, storageBack},
		// The next repair, within 10 min: 15 s more.
		{22, brokenFull, storageKeep}, // R since 22
		{30, brokenFull, storageKeep}, // stopped long enough, but no room
		{31, brokenPeerDown, storageKeep},
		{32, broken("R"), storageKeep}, // eligible since 32
		{47, broken("R"), storageKeep}, // 1 s + 15 s: not yet
		{48, broken("R"), storageRepair},
		{49, stoppedDiskFull, storageLose}, // stopped by itself before the check: a stop like any
		{50, stoppedDiskFull, storageWait}, // a repair waits for disk space like any restart
		{51, stopped, storageRestart},
		// The restart fails the metadata group again before it catches up,
		// and the peers step aside for want of a leader: repaired anyway,
		// 1 s + 30 s after it is eligible.
		{52, restarted, storageKeep},
		{53, restartedBroken, storageKeep}, // since 53
		{58, restartedBroken, storageKeep}, // eligible since 58
		{88, restartedBroken, storageKeep},
		{89, restartedBroken, storageRepair},
		{90, restartedBroken, storageStop},
		{91, stopped, storageKeep}, // lost already: on to the restart
		{92, stopped, storageRestart},
		{93, current, storageBack},
		// Leaderless, after the step aside for it, ten minutes on.
		{700, leaderlessNoRoom, storageKeep}, // no leader since 700
		{710, leaderlessNoRoom, storageLeaderless},
		{711, leaderlessBroken, storageKeep}, // room: eligible since 711
		{712, leaderlessBroken, storageRepair},
		{713, leaderlessBroken, storageStop},
		{714, stopped, storageLose},
		{715, stopped, storageRestart},
		{716, current, storageBack},
	}
	names := map[storageAction]string{storageKeep: "keep", storageLose: "lose", storageWait: "wait", storageRestart: "restart", storageBack: "back", storageLeaderless: "leaderless", storageRepair: "repair", storageStop: "stop"}
	w := storageWatch{leaderlessFor: 10 * time.Second, jitter: time.Second}
	start := time.Unix(1_000_000, 0)
	for _, s := range steps {
		if got := w.next(start.Add(time.Duration(s.at)*time.Second), s.read); got != s.want {
			t.Fatalf("at %d s, reading %+v: %s, want %s", s.at, s.read, names[got], names[s.want])
		}
	}
}

// The free space a restart waits for: 64 MiB, or a tenth of a smaller
// file system; exactly that much is enough, a byte less is not.
func TestStorageWatchFreeSpace(t *testing.T) {
	const mib = 1 << 20
	for _, tt := range []struct {
		size, free int64
		want       storageAction
	}{
		{1 << 40, 64 * mib, storageRestart},
		{1 << 40, 64*mib - 1, storageWait},
		{100 * mib, 10 * mib, storageRestart},
		{100 * mib, 10*mib - 1, storageWait},
		{640 * mib, 64 * mib, storageRestart},
		{640 * mib, 64*mib - 1, storageWait},
	} {
		var w storageWatch
		start := time.Unix(1_000_000, 0)
		read := storageRead{stopped: true, size: tt.size, free: tt.free, known: true}
		w.next(start, read)                         // lose
		got := w.next(start.Add(time.Second), read) // the stop finished twice in a row
		if got != tt.want {
			t.Errorf("%d bytes free of %d: action %d, want %d", tt.free, tt.size, got, tt.want)
		}
	}
}

// The bus watch, read by read (seconds from an arbitrary start): two
// reads in a row saying JetStream is not enabled step aside, and so does
// no answer for busSilentFor (longer than an election); an answer ends
// either run, and after a step aside two answers in a row store again;
// while the bus is unreachable nothing is counted.
func TestBusStorageWatch(t *testing.T) {
	steps := []struct {
		at   int
		read busRead
		want storageAction
	}{
		{0, busAnswered, storageKeep},
		{1, busNoJetStream, storageKeep}, // once is not twice
		{2, busAnswered, storageKeep},
		{3, busNoJetStream, storageKeep},
		{4, busSilent, storageKeep}, // a silence between them breaks the run
		{5, busNoJetStream, storageKeep},
		{6, busNoJetStream, storageLose},
		{7, busNoJetStream, storageKeep},
		{8, busSilent, storageKeep},   // electing: not back yet
		{9, busAnswered, storageKeep}, // once is not twice
		{10, busAnswered, storageBack},
		{11, busSilent, storageKeep}, // an election: silent from 11 s
		{20, busSilent, storageKeep},
		{25, busSilent, storageKeep}, // 14 s
		{26, busAnswered, storageKeep},
		{27, busSilent, storageKeep},      // silent again from 27 s
		{30, busUnreachable, storageKeep}, // the bus-loss watch's; the silence starts again
		{31, busSilent, storageKeep},
		{45, busSilent, storageKeep},      // 14 s
		{46, busNoJetStream, storageLose}, // 15 s without an answer
		{47, busUnreachable, storageKeep},
		{48, busSilent, storageKeep},
		{49, busAnswered, storageKeep},
		{50, busAnswered, storageBack},
		{51, busSilent, storageKeep}, // a bus at the edge: silent from 51 s
		{66, busSilent, storageLose},
		{67, busAnswered, storageKeep}, // an answer now and then does not make it flap
		{68, busSilent, storageKeep},
		{69, busAnswered, storageKeep},
		{70, busUnreachable, storageKeep},
		{71, busAnswered, storageKeep},
		{72, busAnswered, storageBack},
	}
	names := map[storageAction]string{storageKeep: "keep", storageLose: "lose", storageBack: "back"}
	reads := map[busRead]string{busAnswered: "answered", busNoJetStream: "no JetStream", busSilent: "silent", busUnreachable: "unreachable"}
	var w busStorageWatch
	start := time.Unix(1_000_000, 0)
	for _, s := range steps {
		if got := w.next(start.Add(time.Duration(s.at)*time.Second), s.read); got != s.want {
			t.Fatalf("at %d s, %s: %s, want %s", s.at, reads[s.read], names[got], names[s.want])
		}
	}
}
