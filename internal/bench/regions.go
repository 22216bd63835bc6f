package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/switchboard/switchboard/client"
	"github.com/switchboard/switchboard/directory"
	"github.com/switchboard/switchboard/internal/localcluster"
	"github.com/switchboard/switchboard/wire"
)

// checkRegions checks, on a cluster of regions (scale --regions), what a
// supercluster must give: every node lists every node of the other
// regions up (the directory crosses the gateways); a session of each
// region's group dialled through a node of another region ends up on a
// node of its own region (the pick is group-aware across regions); and a
// room with a member in each of two regions carries text from one to the
// other (the rooms' JetStream streams live in one cluster, whichever
// created them first, and the other region reaches them through the
// gateway).
func (e *env) checkRegions(ctx context.Context, rep *ScaleReport, lc *localcluster.Cluster) error {
	groupOf := map[string]string{}
	for _, n := range lc.Nodes {
		groupOf[n.ID] = n.Group
	}
	listed := make([]int, len(lc.Nodes)) // each written by its node's goroutine alone
	if err := eachNode(lc.Nodes, func(i int, n *localcluster.Node) error {
		d, err := n.Directory(ctx)
		if err != nil {
			return err
		}
		cross := 0
		for _, entry := range d.Nodes {
			if entry.Status == directory.Up && entry.Group != n.Group && groupOf[entry.ID] == entry.Group {
				cross++
			}
		}
		want := 0
		for _, m := range lc.Nodes {
			if m.Group != n.Group {
				want++
			}
		}
		if cross != want {
			return fmt.Errorf("bench: %s (%s) lists %d nodes of other regions up, want %d", n.ID, n.Group, cross, want)
		}
		listed[i] = cross
		return nil
	}); err != nil {
		return err
	}
	for _, c := range listed {
		rep.CrossListed += c
	}
	e.logf("[scale] regions: every node lists the other regions' nodes (%d pairs)", rep.CrossListed)

	// A session of each region's group, dialled at a node of another.
	sessions := map[string]*client.Session{}
	defer func() {
		for _, s := range sessions {
			_ = s.Close()
		}
	}()
	for _, want := range rep.Regions {
		var via *localcluster.Node
		for _, n := range lc.Nodes {
			if n.Group != want {
				via = n
				break
			}
		}
		s, err := client.Dial(ctx, via.Addr, client.WithGroup(want), client.WithUser("region-"+want))
		if err != nil {
			return fmt.Errorf("bench: a session of group %s through %s: %w", want, via.ID, err)
		}
		sessions[want] = s
		landed := s.Node()
		rep.CrossAttach = append(rep.CrossAttach, CrossAttach{Want: want, Via: via.ID, Landed: landed.ID, LandedGroup: landed.Group})
		e.logf("[scale] regions: a session of group %s dialled at %s (%s) attached to %s (%s)", want, via.ID, via.Group, landed.ID, landed.Group)
	}

	// A room across the first two regions.
	from, to := sessions[rep.Regions[0]], sessions[rep.Regions[1]]
	ra := &RoomAcross{From: from.Node().ID, To: to.Node().ID}
	rep.RoomAcross = ra
	room := "regions-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, s := range []*client.Session{from, to} {
		if _, err := s.JoinWait(jctx, room); err != nil {
			ra.Err = fmt.Sprintf("joining %s: %v", room, err)
			return nil
		}
	}
	const text = "hello across the gateway"
	sent := time.Now()
	if _, err := from.SendTextWait(jctx, room, text); err != nil {
		ra.Err = fmt.Sprintf("sending: %v", err)
		return nil
	}
	for {
		select {
		case <-jctx.Done():
			ra.Err = "the text did not arrive within 30 s"
			return nil
		case ev := <-to.Events():
			if ev.Kind == client.Received && ev.Message.Op == wire.OpText && ev.Message.Room == room && ev.Message.T == text {
				ra.Delivered, ra.MS = true, float64(time.Since(sent).Microseconds())/1000
				e.logf("[scale] regions: text from %s reached %s in %.1f ms", ra.From, ra.To, ra.MS)
				return nil
			}
		}
	}
}
