package node

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// streamsCollectors are the gauges that say how many of the rooms'
// streams there are and how many of them this node's embedded server
// leads with every copy caught up: registered with the rooms' engine
// (rooms.go), only where the node embeds a clustered NATS (an external bus's servers are watched
// with their own monitoring). Both read 0 until the rooms are ready: the
// number of streams is the service's, read from the bucket then (e.shards).
func streamsCollectors(e *roomEngine) []prometheus.Collector {
	if e.n.cfg.Bus != "" || e.n.cfg.Cluster == "" {
		return nil
	}
	// names are the streams' names once the rooms are ready (built once
	// then: they never change), else nil.
	all := sync.OnceValue(func() map[string]bool {
		names := map[string]bool{"KV_" + e.bucket: true}
		for k := range e.shards {
			names[e.streamName(k)] = true
		}
		return names
	})
	names := func() map[string]bool {
		select {
		case <-e.ready:
			return all()
		default:
			return nil
		}
	}
	total := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "switchboard_room_streams",
		Help: "The rooms' JetStream streams: one a shard, and the snapshot bucket's; 0 until the rooms are ready.",
	}, func() float64 { return float64(len(names())) })
	caughtUp := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "switchboard_room_streams_caught_up",
		Help: "The rooms' streams this node's embedded NATS leads with every configured copy caught up; summed over the nodes, the streams that survive the loss of a minority of their copies.",
	}, func() float64 {
		names := names()
		if names == nil {
			return 0
		}
		n, _ := e.n.bus.StreamsCaughtUp(func(name string) bool { return names[name] })
		return float64(n)
	})
	return []prometheus.Collector{total, caughtUp}
}

// roomMetrics are the room engine's Prometheus metrics, registered in the
// node's registry as one collector.
type roomMetrics struct {
	streams     []prometheus.Collector // streamsCollectors
	feeds       prometheus.Gauge
	replicas    prometheus.Gauge
	deliveries  prometheus.Counter
	stored      *prometheus.CounterVec
	storeErrors prometheus.Counter
	duplicates  prometheus.Counter
	moved       prometheus.Counter
	snapshots   prometheus.Counter
	restarts    prometheus.Counter
	storeTime   prometheus.Histogram
	deliverTime prometheus.Histogram
	batchChunks prometheus.Histogram

	livePublished prometheus.Counter
	liveShown     prometheus.Counter
	liveDropped   prometheus.Counter
}

func newRoomMetrics() *roomMetrics {
	m := &roomMetrics{
		feeds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_rooms_open",
			Help: "Rooms this node holds a feed for (rooms with local members).",
		}),
		replicas: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_room_replicas",
			Help: "Copies JetStream keeps of the rooms' streams, as this node created, found or raised them; 0 until the rooms are ready.",
		}),
		deliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_room_deliveries_total",
			Help: "Room messages (text and presence) queued to local sessions.",
		}),
		stored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_room_records_stored_total",
			Help: "Room records this node stored in JetStream, by op.",
		}, []string{"op"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_room_store_errors_total",
			Help: "Room records this node gave up storing.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_room_duplicate_chunks_total",
			Help: "Text chunks dropped when applied because their (sender, seq) was seen.",
		}),
		moved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_room_moved_chunks_total",
			Help: "Text chunks applied under their user's next seq: another device of the user had stored text under the seq they came with.",
		}),
		snapshots: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_room_snapshots_written_total",
			Help: "Room snapshots this node wrote.",
		}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_room_consumer_restarts_total",
			Help: "Room consumers this node replaced because they stopped delivering records the stream holds.",
		}),
		storeTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "switchboard_room_store_seconds",
			Help:    "Time from a text chunk's line being read to JetStream acknowledging it (what the client's ack waits for), for chunks stored.",
			Buckets: latencyBuckets,
		}),
		deliverTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "switchboard_room_delivery_seconds",
			Help:    "Time from this node's room consumer receiving a record to its message being queued to a local member's socket, once per member.",
			Buckets: latencyBuckets,
		}),
		batchChunks: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "switchboard_room_store_batch_chunks",
			Help:    "Text chunks per record this node stored: 1 for a text record, more for a batch of the chunks that waited while the record before them was stored.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
		}),
	}
	m.livePublished = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchboard_room_live_published_total",
		Help: "Text chunks of this node's sessions published live, before they are stored.",
	})
	m.liveShown = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchboard_room_live_shown_total",
		Help: "Live text chunks shown to this node's members before the stream brought them.",
	})
	m.liveDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchboard_room_live_dropped_total",
		Help: "Live text records dropped because a room's feed was behind; their text comes through the stream.",
	})
	for _, op := range []string{recJoin, recLeave, recText, recBatch} {
		m.stored.WithLabelValues(op)
	}
	return m
}

func (m *roomMetrics) collectors() []prometheus.Collector {
	return append([]prometheus.Collector{m.feeds, m.replicas, m.deliveries, m.stored, m.storeErrors, m.duplicates, m.moved, m.snapshots, m.restarts, m.storeTime, m.deliverTime, m.batchChunks, m.livePublished, m.liveShown, m.liveDropped}, m.streams...)
}

// Describe implements prometheus.Collector.
func (m *roomMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *roomMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

// textStored observes a text chunk, read at start, that JetStream has just
// acknowledged.
func (m *roomMetrics) textStored(start time.Time) {
	m.storeTime.Observe(time.Since(start).Seconds())
}

// delivered counts a message queued to one member now for a record this
// node's consumer received at received.
func (m *roomMetrics) delivered(received time.Time) {
	m.deliveries.Inc()
	m.deliverTime.Observe(time.Since(received).Seconds())
}
