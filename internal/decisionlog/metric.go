package decisionlog

import dto "github.com/prometheus/client_model/go"

// dtoMetric reads one counter's value.
type dtoMetric struct{ d dto.Metric }

func (m *dtoMetric) m() *dto.Metric { return &m.d }

func (m *dtoMetric) value() float64 { return m.d.GetCounter().GetValue() }
