package node

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchboard/switchboard/directory"
)

// metrics are a node's Prometheus metrics, in a registry of its own so
// that several nodes can live in one process.
type metrics struct {
	registry    *prometheus.Registry
	received    prometheus.Counter
	changes     *prometheus.CounterVec
	pushes      prometheus.Counter
	connections prometheus.Gauge
	attaches    prometheus.Counter
	refused     *prometheus.CounterVec
	badInput    prometheus.Counter
}

func newMetrics(n *Node) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_directory_updates_received_total",
			Help: "Directory entries received from the bus (own echoes included).",
		}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_directory_changes_total",
			Help: "Changes applied to the directory table, by kind.",
		}, []string{"kind"}),
		pushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_directory_pushes_total",
			Help: "Directory messages pushed to attached clients.",
		}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_connections",
			Help: "Open client connections, attached or not.",
		}),
		attaches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_attaches_total",
			Help: "Sessions attached.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_attach_refused_total",
			Help: "Attaches refused, by error code.",
		}, []string{"code"}),
		badInput: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_bad_input_total",
			Help: "Protocol lines answered with an error.",
		}),
	}
	m.registry.MustRegister(m.received, m.changes, m.pushes, m.connections, m.attaches, m.refused, m.badInput,
		directoryCollector{n},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

var (
	usersDesc    = prometheus.NewDesc("switchboard_users", "Sessions attached to this node.", nil, nil)
	capacityDesc = prometheus.NewDesc("switchboard_capacity", "Sessions this node admits.", nil, nil)
	nodesDesc    = prometheus.NewDesc("switchboard_nodes", "Nodes in this node's directory, by status.", []string{"status"}, nil)
	ageDesc      = prometheus.NewDesc("switchboard_directory_entry_age_seconds", "Time since each directory entry was last heard from.", []string{"node"}, nil)
	peerUsers    = prometheus.NewDesc("switchboard_directory_users", "Users of each node as this node's directory shows them.", []string{"node"}, nil)
)

// directoryCollector reads the directory snapshot at scrape time.
type directoryCollector struct{ n *Node }

func (c directoryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{usersDesc, capacityDesc, nodesDesc, ageDesc, peerUsers} {
		ch <- d
	}
}

func (c directoryCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(usersDesc, prometheus.GaugeValue, float64(c.n.Users()))
	ch <- prometheus.MustNewConstMetric(capacityDesc, prometheus.GaugeValue, float64(c.n.cfg.Capacity))
	counts := map[directory.Status]int{}
	for _, node := range c.n.Nodes() {
		counts[node.Status]++
		ch <- prometheus.MustNewConstMetric(ageDesc, prometheus.GaugeValue, float64(node.AgeMS)/1000, node.ID)
		ch <- prometheus.MustNewConstMetric(peerUsers, prometheus.GaugeValue, float64(node.Users), node.ID)
	}
	for _, s := range []directory.Status{directory.Starting, directory.Up, directory.Draining, directory.Full, directory.Down} {
		ch <- prometheus.MustNewConstMetric(nodesDesc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
}
