package node

import "github.com/prometheus/client_golang/prometheus"

// roomMetrics are the room engine's Prometheus metrics, registered in the
// node's registry as one collector.
type roomMetrics struct {
	feeds       prometheus.Gauge
	deliveries  prometheus.Counter
	stored      *prometheus.CounterVec
	storeErrors prometheus.Counter
	duplicates  prometheus.Counter
	snapshots   prometheus.Counter
}

func newRoomMetrics() *roomMetrics {
	return &roomMetrics{
		feeds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_rooms_open",
			Help: "Rooms this node holds a feed for (rooms with local members).",
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
		snapshots: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_room_snapshots_written_total",
			Help: "Room snapshots this node wrote.",
		}),
	}
}

func (m *roomMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.feeds, m.deliveries, m.stored, m.storeErrors, m.duplicates, m.snapshots}
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
