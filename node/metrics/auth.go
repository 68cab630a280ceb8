package metrics

import "github.com/prometheus/client_golang/prometheus"

// AuthFailed counts a refused sign-in ("login") or request ("denied"),
// by a short fixed reason, so an alert can tell a guessing client from a
// misconfigured robot. Reasons come from node/access and are bounded.
func (m *Metrics) AuthFailed(kind, reason string) {
	m.authFailures.WithLabelValues(kind, reason).Inc()
}

func (m *Metrics) registerAuth() {
	m.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "berth_auth_failures_total",
		Help: "Refused sign-ins (kind=login) and refused requests (kind=denied) on the OCI API.",
	}, []string{"kind", "reason"})
	m.reg.MustRegister(m.authFailures)
}
