// Package telemetry measures the gateway: the Prometheus metrics of the
// product spec (through VictoriaMetrics/metrics) plus backend and LLM
// metrics, and the structured access log.
//
// Label values never come from raw request data: paths are reduced to a
// fixed set of route classes, methods to the standard verbs, client IPs to
// a bounded set (the rest counted as "other"), models to those the
// backends reported. Metric handles are created once per label set and
// cached in arrays indexed by class, so recording a request is a few
// atomic adds and no allocation.
package telemetry
