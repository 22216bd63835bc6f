package sipfront

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a call or a TCP connection is refused for a limit, as the
// metrics label them.
const (
	refusedTotal     = "total"      // MaxCalls or MaxConns reached
	refusedPerSource = "per_source" // MaxCallsPerSource or MaxConnsPerSource reached
	// connEvicted: an accepted TCP connection closed, MaxConns reached,
	// to make room for one from a source holding fewer (connLimiter).
	connEvicted = "evicted"
)

// metrics are the front's counters, in Config.Metrics when it is set.
// Every field is safe to use before registration and without a registry.
type metrics struct {
	callsRefused *prometheus.CounterVec // calls refused for a limit, by reason
	connsRefused *prometheus.CounterVec // TCP connections refused, by reason
	acceptErrors prometheus.Counter     // TCP accepts that failed (out of descriptors, say)
}

func newMetrics() *metrics {
	m := &metrics{
		callsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_sip_calls_refused_total",
			Help: "Calls the SIP front refused for a limit: total (--sip-max-calls, 503), per_source (--sip-max-calls-per-source, 486) or unconfirmed (calls being set up or not acknowledged, MaxUnconfirmedCalls, 503).",
		}, []string{"reason"}),
		connsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_sip_tcp_refused_total",
			Help: "TCP connections the SIP front closed as it accepted them, or did not open to a caller, over a limit: total (--sip-max-conns) or per_source (--sip-max-conns-per-source); evicted: a connection it held, from the source holding the most, closed to make room at --sip-max-conns for one from a source holding fewer.",
		}, []string{"reason"}),
		acceptErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_sip_tcp_accept_errors_total",
			Help: "Accepts on the SIP front's TCP listener that failed (out of descriptors, say); the listener retries with a backoff.",
		}),
	}
	for _, r := range []string{refusedTotal, refusedPerSource} {
		m.callsRefused.WithLabelValues(r)
		m.connsRefused.WithLabelValues(r)
	}
	m.callsRefused.WithLabelValues(refusedUnconfirmed)
	m.connsRefused.WithLabelValues(connEvicted)
	return m
}

// register adds the metrics, and gauges over s, to reg.
func (m *metrics) register(reg prometheus.Registerer, s *Server) error {
	calls := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "switchboard_sip_calls",
		Help: "Calls the SIP front holds, including those being set up.",
	}, func() float64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return float64(s.limits.calls) // a place from admission to the call's end
	})
	conns := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "switchboard_sip_tcp_conns",
		Help: "TCP connections the SIP front holds.",
	}, func() float64 { return float64(s.lim.Open()) })
	for _, c := range []prometheus.Collector{m.callsRefused, m.connsRefused, m.acceptErrors, calls, conns} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("sipfront: registering its metrics: %w", err)
		}
	}
	return nil
}
