// Package health serves the init's HTTP endpoints: the probes /livez,
// /readyz and /healthz (kube-apiserver style, with ?verbose and one route
// per check), /metrics (a private registry, internal/promtext), and, when
// enabled, the admin page /debug/admin with its JSON API.
//
// It reads the supervisor only through status.Controller and asks it to
// act through status.Do, as the control socket does; it never signals,
// starts or waits for a process itself, and must never import the
// supervisor (init/), so that it builds on any OS. Metrics implements
// status.Events so the supervisor can count what happened
// without knowing about Prometheus.
//
// Invariants:
//   - its own http.ServeMux; nothing is registered on http.DefaultServeMux
//     and no pprof is served;
//   - the admin routes never start on a non-loopback address without a
//     token, change state only on POST, refuse cross-site requests and never
//     log the token;
//   - with TLS the certificate and key are re-read when their files change
//     (a rotated Kubernetes Secret), without a restart.
package health
