package main

import (
	"testing"
	"time"
)

func TestParseProcStatCPU(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want time.Duration
		ok   bool
	}{
		{"registryd", "4242 (registryd) S 1 4242 4242 0 -1 4194560 9000 0 0 0 150 25 0 0 20 0 12 0 100 0 0", 1750 * time.Millisecond, true},
		{"name with spaces and parens", "7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0", 70 * time.Millisecond, true},
		{"cut short", "7 (x) R 1 7", 0, false},
		{"no name", "garbage", 0, false},
		{"not a number", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 a 4 0 0", 0, false},
	}
	for _, tt := range tests {
		got, err := parseProcStatCPU(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("%s: %v, %v; want %v, ok %v", tt.name, got, err, tt.want, tt.ok)
		}
	}
}
