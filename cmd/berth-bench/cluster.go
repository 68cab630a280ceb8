package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/spf13/cobra"
)

const (
	benchS3User   = "berth-bench"
	benchS3Secret = "berth-bench-secret-key"
)

const distributionS3Config = `version: 0.1
log:
  level: error
storage:
  s3:
    accesskey: ` + benchS3User + `
    secretkey: ` + benchS3Secret + `
    region: us-east-1
    regionendpoint: http://%s
    bucket: distribution
    forcepathstyle: true
    secure: false
    v4auth: true
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  redirect:
    disable: true
http:
  addr: %s
`

// compareClusterCmd compares a three-node Berth cluster on MinIO, behind
// HAProxy, with CNCF Distribution on the same MinIO.
func compareClusterCmd() *cobra.Command {
	var berthBin, distBin, minioBin, haproxyBin, names, jsonOut, mdOut string
	var rounds int
	var dur, grace time.Duration
	cmd := &cobra.Command{
		Use:   "compare-cluster",
		Short: "Compare a 3-node Berth cluster on MinIO (behind HAProxy) with Distribution on the same MinIO",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			wls, err := selectWorkloads(names)
			if err != nil {
				return err
			}
			dir, err := os.MkdirTemp("", "berth-bench-cluster-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			var procs []*exec.Cmd
			defer func() {
				for i := len(procs) - 1; i >= 0; i-- {
					stopProc(procs[i])
				}
			}()
			spawn := func(name, bin string, args, env []string) error {
				c := exec.Command(bin, args...)
				c.Env = append(os.Environ(), env...)
				logf, _ := os.Create(filepath.Join(dir, name+".log"))
				c.Stdout, c.Stderr = logf, logf
				c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				if err := c.Start(); err != nil {
					return fmt.Errorf("start %s: %w", name, err)
				}
				procs = append(procs, c)
				return nil
			}
			addr := func() string { a, _ := freeAddr(); return a }

			s3addr := addr()
			if err := spawn("minio", minioBin, []string{"server", filepath.Join(dir, "minio"), "--address", s3addr, "--console-address", addr(), "--quiet"},
				[]string{"MINIO_ROOT_USER=" + benchS3User, "MINIO_ROOT_PASSWORD=" + benchS3Secret, "MINIO_BROWSER=off",
					// The background scanner walks every object and would
					// take CPU from whichever registry is being measured.
					"MINIO_SCANNER_SPEED=slowest"}); err != nil {
				return err
			}
			if err := makeBuckets(ctx, s3addr, "berth", "distribution"); err != nil {
				return err
			}

			var nodes, gossips []string
			type nodeAddrs struct{ api, raft, gossip string }
			var na []nodeAddrs
			for range 3 {
				n := nodeAddrs{addr(), addr(), addr()}
				na = append(na, n)
				gossips = append(gossips, n.gossip)
			}
			for i, n := range na {
				id := fmt.Sprintf("node%d", i+1)
				err := spawn(id, berthBin, []string{"serve", "--node-id", id, "--addr", n.api, "--data-dir", filepath.Join(dir, id),
					"--raft-addr", n.raft, "--gossip-addr", n.gossip, "--join", strings.Join(gossips, ","), "--bootstrap-expect", "3", "--log-level", "warn"},
					[]string{"BERTH_STORAGE_DRIVER=s3", "BERTH_STORAGE_S3_ENDPOINT=" + s3addr, "BERTH_STORAGE_S3_BUCKET=berth",
						"BERTH_STORAGE_S3_ACCESSKEY=" + benchS3User, "BERTH_STORAGE_S3_SECRETKEY=" + benchS3Secret,
						"BERTH_STORAGE_S3_PATHSTYLE=true", "BERTH_CLUSTER_SECRET=bench-cluster-secret", "BERTH_ADMIN_TOKEN=bench",
						"BERTH_AUTH_MODE=" + benchAuthMode})
				if err != nil {
					return err
				}
				nodes = append(nodes, n.api)
			}
			for _, n := range nodes {
				if err := waitOK(ctx, "http://"+n+"/readyz", 90*time.Second); err != nil {
					return fmt.Errorf("berth node %s: %w", n, err)
				}
			}
			lb := addr()
			cfg := fmt.Sprintf("global\n    maxconn 4096\n    tune.pipesize 1048576\ndefaults\n    mode http\n    option splice-response\n    option splice-request\n    timeout connect 2s\n    timeout client 5m\n    timeout server 5m\nfrontend registry\n    bind %s\n    default_backend berth\nbackend berth\n    balance roundrobin\n    option httpchk GET /readyz\n    default-server inter 1s\n", lb)
			for i, n := range nodes {
				cfg += fmt.Sprintf("    server node%d %s check\n", i+1, n)
			}
			cfgPath := filepath.Join(dir, "haproxy.cfg")
			os.WriteFile(cfgPath, []byte(cfg), 0o644)
			if err := spawn("haproxy", haproxyBin, []string{"-db", "-f", cfgPath}, nil); err != nil {
				return err
			}
			if err := waitOK(ctx, "http://"+lb+"/v2/", 30*time.Second); err != nil {
				return fmt.Errorf("haproxy: %w", err)
			}

			distAddr := addr()
			distCfg := filepath.Join(dir, "distribution.yml")
			os.WriteFile(distCfg, fmt.Appendf(nil, distributionS3Config, s3addr, distAddr), 0o644)
			if err := spawn("distribution", distBin, []string{"serve", distCfg}, nil); err != nil {
				return err
			}
			if err := waitOK(ctx, "http://"+distAddr+"/v2/", 30*time.Second); err != nil {
				return fmt.Errorf("distribution: %w", err)
			}
			berth := &server{name: "berth", url: "http://" + lb}
			dist := &server{name: "distribution", url: "http://" + distAddr}
			fmt.Fprintf(cmd.OutOrStdout(), "Berth: 3 nodes on MinIO behind HAProxy at %s; Distribution on the same MinIO at %s\n", lb, distAddr)
			return runComparison(ctx, cmd.OutOrStdout(), wls, berth, dist, rounds, dur, grace, mdOut, jsonOut)
		},
	}
	cmd.Flags().StringVar(&berthBin, "berth", "bin/registryd", "registryd binary")
	cmd.Flags().StringVar(&distBin, "distribution", "bin/registry", "CNCF Distribution registry binary")
	cmd.Flags().StringVar(&minioBin, "minio", "bin/minio", "MinIO server binary")
	cmd.Flags().StringVar(&haproxyBin, "haproxy", "haproxy", "HAProxy binary")
	cmd.Flags().StringVar(&names, "workload", "all", "comma-separated workloads")
	cmd.Flags().IntVar(&rounds, "rounds", 3, "rounds per workload")
	cmd.Flags().DurationVar(&grace, "grace", time.Minute, "how long an op may run past its round before it is cut off")
	cmd.Flags().DurationVar(&dur, "duration", 5*time.Second, "time per workload per registry per round")
	cmd.Flags().StringVar(&jsonOut, "json", "", "write all results as JSON")
	cmd.Flags().StringVar(&mdOut, "markdown", "", "write the summary table as Markdown")
	return cmd
}

// makeBuckets waits until MinIO serves S3 calls and creates the buckets.
func makeBuckets(ctx context.Context, endpoint string, buckets ...string) error {
	c, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(benchS3User, benchS3Secret, ""), BucketLookup: minio.BucketLookupPath})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, b := range buckets {
		for {
			err = c.MakeBucket(ctx, b, minio.MakeBucketOptions{})
			if err == nil || minio.ToErrorResponse(err).Code == "BucketAlreadyOwnedByYou" {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("create bucket %s on MinIO %s: %w", b, endpoint, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nil
}

func waitOK(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not ready: %v", url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// benchAuthMode is the cluster's auth.mode in the benchmark: off, as
// CNCF Distribution runs without auth in the comparison.
const benchAuthMode = "off"
