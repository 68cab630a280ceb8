package main

import (
	"fmt"
	"io"
	"time"
)

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }

func printResult(w io.Writer, r Result) {
	flag := ""
	if r.Errors > 0 {
		flag = "  ERRORS: " + r.FirstErr
	}
	if r.Unfinished > 0 {
		flag += fmt.Sprintf("  UNFINISHED: %d ops cut off", r.Unfinished)
	}
	if r.ServerCPUPerOp > 0 {
		flag += "  server CPU/op " + us(r.ServerCPUPerOp)
	}
	fmt.Fprintf(w, "%-22s %-28s %9.1f ops/s %8.1f MB/s  p50 %-9s p99 %-9s ops %-6d errors %d%s\n",
		r.Workload, r.Target, r.OpsPerS, r.MBPerS, ms(r.P50), ms(r.P99), r.Ops, r.Errors, flag)
}
