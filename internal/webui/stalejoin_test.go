package webui_test

import (
	"strings"
	"testing"
)

// TestBrowserRejoinRefusedWhileAnotherJoinWaits: after a failover the
// page joins its room again on the new node, and a second join of the
// room goes out there before the first is answered (the page asking for
// the room once more, as a client resynchronises). The node answers in
// order: the first join is refused (limit: the room was full then), the
// second gets the room's state (a place freed). As the Go client does
// (client/session.go: a join's refusal leaves the room only when no other
// join of it is on its way), the refusal of the older join decides
// nothing: the page is in the room, resends what the new node has not
// acknowledged and takes new text. Before, the refusal made it forget the
// room, and it ignored the state that put it back in.
func TestBrowserRejoinRefusedWhileAnotherJoinWaits(t *testing.T) {
	got := scriptedSession(t, "stale-rejoin", `
  const answers = []; // n2's answers to its joins, given once both are in
  window.fakeOnSend = (ws, m, reply) => {
    if (m.op === "ping") {
      reply({ op: "pong" });
      return true;
    }
    if (ws.id !== "n2" || m.op !== "join") return false;
    log.push("n2 join " + m.room);
    answers.push(reply);
    if (answers.length === 2) {
      answers[0]({ op: "error", room: m.room, code: "limit", message: "room lobby is full (100 users)" });
      answers[1]({ op: "room", room: m.room, state: { seqs: {}, users: ["ann"] } });
    }
    return true;
  };
`, `
  const first = settled(s, "n1");
  s.start();
  await first;
  const joined = roomState(s);
  s.join("lobby");
  await joined;
  s.sendText("lobby", "a");
  const second = settled(s, "n2");
  drop("n1");
  await second; // the rejoin went out with the attach's answer, held by n2
  const refused = new Promise((resolve) => s.addEventListener("error", (e) => resolve(e.detail.code), { once: true }));
  const rejoined = roomState(s);
  s.join("lobby");
  log.push("error " + (await refused));
  log.push("holds lobby: " + s.holds("lobby"));
  await rejoined;
  try {
    s.sendText("lobby", "b");
    log.push("text to lobby taken");
  } catch (e) {
    log.push("text to lobby refused");
  }
`)
	want := []string{
		"n1 join lobby",
		"n1 text 1 1",
		"n2 join lobby", // the rejoin after the failover
		"n2 join lobby", // asked once more
		"error limit",   // the first's answer: the second is on its way
		"holds lobby: true",
		"n2 text 1 1", // the second's state: what n2 lacks goes again
		"n2 text 2 1",
		"text to lobby taken",
	}
	wantTranscript(t, "the page did", got, want)
}

// TestBrowserStaleJoinRefusedAfterRemoval drives the room page itself
// (app.js) against stand-ins for the nodes. After a failover to n2, the
// page's chunk is refused for a while (unavailable), and the page joins
// the room again after its pause; while that join waits (storage slow),
// n2 takes the page out of the room unasked (removed: its place lost
// while n2 was cut off), and the page joins once more. n2 answers in
// order: limit to the retry's join (the room was full), the room's state
// to the one after the removal (a place freed). The page must stay in the
// room, as the Go client does: the compose box open, nothing said of a
// refusal, and the refused chunk sent again with its seq. Before, the
// stale join's refusal made the page forget the room and shut the box,
// and the state that put it back in was ignored, the chunk never sent.
func TestBrowserStaleJoinRefusedAfterRemoval(t *testing.T) {
	tab := scriptPage(t, "stale-join")
	got := eval[[]string](t, tab, `(async () => {
  let limits = {};
  let joinReply = (id, m) => ({ op: "room", room: m.room, state: { seqs: {}, users: ["ann"] } });
`+fakeNodes+`
  let joins = 0, refusedText = false;
  const answers = []; // n2's answers to the joins after the rejoin
  window.fakeOnSend = (ws, m, reply) => {
    if (m.op === "ping") {
      reply({ op: "pong" });
      return true;
    }
    if (ws.id !== "n2") return false;
    if (m.op === "text" && !refusedText) {
      refusedText = true;
      log.push("n2 text " + m.seq + " " + m.t.length + ": unavailable");
      reply({ op: "error", room: m.room, seq: m.seq, code: "unavailable", message: "room lobby: storage timed out" });
      return true;
    }
    if (m.op !== "join" || ++joins === 1) return false; // the rejoin after the failover: its state
    log.push("n2 join " + m.room + " (held)");
    answers.push(reply);
    if (answers.length === 1) {
      reply({ op: "error", room: m.room, code: "removed", message: "room lobby is full (100 users): this session lost its place while its node was cut off" });
    } else {
      answers[0]({ op: "error", room: m.room, code: "limit", message: "room lobby is full (100 users)" });
      answers[1]({ op: "room", room: m.room, state: { seqs: {}, users: ["ann", "bob"] } });
    }
    return true;
  };
  const $ = (sel) => document.querySelector(sel);
  $("#user").value = "ann";
  $("#room").value = "lobby";
  $("#policy").value = "least-users";
  $("#join-form").requestSubmit();
  const s = window.switchboard.session;
  const first = settled(s, "n1"), joined = roomState(s);
  await first;
  await joined;
  const second = settled(s, "n2"), rejoined = roomState(s);
  drop("n1");
  await second;
  await rejoined;
  const last = roomState(s); // the state after the removal's join
  s.addEventListener("error", (e) => log.push("error " + e.detail.code));
  $("#compose").value = "x";
  $("#compose").dispatchEvent(new Event("input"));
  await last;
  log.push("holds lobby: " + s.holds("lobby"));
  log.push("box " + ($("#compose").disabled ? "shut" : "open"));
  log.push("why: " + $("#why").textContent);
  s.close();
  return log;
})()`)
	want := []string{
		"n1 join lobby",
		"n2 join lobby", // the rejoin after the failover
		"n2 text 1 1: unavailable",
		"error unavailable",
		"n2 join lobby (held)", // the retry's, after its pause
		"n2 join lobby (held)", // the one the removal calls for
		"error removed",
		"error limit", // the retry's answer: the other is on its way
		"n2 text 1 1", // the other's state: the chunk goes again
		"holds lobby: true",
		"box open",
	}
	if len(got) > 0 && strings.HasPrefix(got[len(got)-1], "why: ") {
		if why := got[len(got)-1]; strings.Contains(why, "Could not join") {
			t.Errorf("the page says %q under its status; want no refusal shown", why)
		}
		got = got[:len(got)-1]
	}
	wantTranscript(t, "the page did", got, want)
}
