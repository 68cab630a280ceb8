package main

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"
)

// limitsCmd measures what no registry can beat on this machine: hashing on
// one core, an fsync, and copying over loopback.
func limitsCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "limits",
		Short: "Measure sha256 throughput of one core, fsync latency and loopback copy rate",
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			buf := make([]byte, 1<<20)
			rand.Read(buf)
			h := sha256.New()
			start := time.Now()
			const hashMB = 512
			for range hashMB {
				h.Write(buf)
			}
			fmt.Fprintf(out, "sha256, one core:     %.0f MB/s\n", hashMB*1.048576/time.Since(start).Seconds())

			f, err := os.CreateTemp(dir, "fsync-*")
			if err != nil {
				return err
			}
			defer os.Remove(f.Name())
			var lat []time.Duration
			for range 200 {
				start := time.Now()
				f.Write(buf[:4096])
				if err := f.Sync(); err != nil {
					return err
				}
				lat = append(lat, time.Since(start))
			}
			f.Close()
			fmt.Fprintf(out, "fsync (4 KiB write):  p50 %s, p99 %s\n", ms(percentile(lat, 50)), ms(percentile(lat, 99)))

			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			defer l.Close()
			go func() {
				c, err := l.Accept()
				if err == nil {
					io.Copy(io.Discard, c)
					c.Close()
				}
			}()
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				return err
			}
			const copyMB = 2048
			start = time.Now()
			for range copyMB {
				c.Write(buf)
			}
			c.Close()
			fmt.Fprintf(out, "loopback TCP copy:    %.0f MB/s\n", copyMB*1.048576/time.Since(start).Seconds())
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", os.TempDir(), "directory whose filesystem fsync is measured")
	return cmd
}
