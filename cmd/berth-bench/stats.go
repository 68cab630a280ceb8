package main

import (
	"math"
	"sort"
	"time"
)

// Result is one workload's measurement against one registry.
type Result struct {
	Workload string        `json:"workload"`
	Target   string        `json:"target"`
	Ops      int           `json:"ops"`
	Errors   int           `json:"errors"`
	Bytes    int64         `json:"bytes"`
	Elapsed  time.Duration `json:"elapsedNs"`
	OpsPerS  float64       `json:"opsPerSec"`
	MBPerS   float64       `json:"mbPerSec"`
	P50      time.Duration `json:"p50Ns"`
	P99      time.Duration `json:"p99Ns"`
	FirstErr string        `json:"firstError,omitempty"`
	// Unfinished ops were cancelled at the round's grace deadline.
	Unfinished int `json:"unfinished,omitempty"`
	// ServerCPUPerOp is the CPU the server process used during the round
	// divided by the ops completed, where the bench started the server
	// (auth-ab); zero when not measured.
	ServerCPUPerOp time.Duration `json:"serverCpuPerOpNs,omitempty"`
}

// maxOpsPerS is the most this result can stand for: ops/s as if every
// unfinished op had completed just then.
func (r Result) maxOpsPerS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops+r.Unfinished) / r.Elapsed.Seconds()
}

// summarize turns raw latencies into a Result.
func summarize(workload, target string, lat []time.Duration, errs int, bytes int64, elapsed time.Duration, firstErr string) Result {
	r := Result{Workload: workload, Target: target, Ops: len(lat), Errors: errs, Bytes: bytes, Elapsed: elapsed, FirstErr: firstErr}
	if elapsed > 0 {
		r.OpsPerS = float64(len(lat)) / elapsed.Seconds()
		r.MBPerS = float64(bytes) / 1e6 / elapsed.Seconds()
	}
	r.P50 = percentile(lat, 50)
	r.P99 = percentile(lat, 99)
	return r
}

// percentile uses the nearest-rank method on a sorted copy.
func percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), lat...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	if rank < 1 {
		rank = 1
	}
	return s[rank-1]
}

// median of a non-empty slice of floats.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
