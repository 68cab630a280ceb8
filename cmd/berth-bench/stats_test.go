package main

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0, time.Millisecond}}
	for _, tt := range tests {
		if got := percentile(lat, tt.p); got != tt.want {
			t.Errorf("p%v = %v, want %v", tt.p, got, tt.want)
		}
	}
	if percentile(nil, 50) != 0 {
		t.Error("empty percentile")
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{{[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}, {nil, 0}}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	r := summarize("w", "x", []time.Duration{time.Millisecond, 3 * time.Millisecond}, 1, 2e6, time.Second, "boom")
	if r.OpsPerS != 2 || r.MBPerS != 2 || r.Errors != 1 || r.P50 != time.Millisecond || r.P99 != 3*time.Millisecond {
		t.Errorf("%+v", r)
	}
}

func TestNextPage(t *testing.T) {
	tests := map[string]string{
		`</v2/a/tags/list?n=2&last=b>; rel="next"`: "/v2/a/tags/list?n=2&last=b",
		``:                    "",
		`</v2/x>; rel="prev"`: "",
		`garbage; rel="next"`: "",
	}
	for in, want := range tests {
		if got := nextPage(in); got != want {
			t.Errorf("nextPage(%q) = %q, want %q", in, got, want)
		}
	}
}
