package single

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berth-registry/berth/e2e/harness"
)

// The bounds the resource test holds registryd to. RSS: a fresh registryd
// is about 15-40 MiB and peaked at 70 MiB in this test on the commit that
// added it (100k empty sessions all kept); the budget leaves room for the Go runtime to keep
// freed pages and for the filesystem driver's in-memory record of empty
// upload sessions (a few hundred bytes each, bounded by its own limit),
// while an unbounded structure per request or per connection (16 MiB
// buffers, a goroutine stack and buffers per slow connection without a
// cap) would pass it quickly.
const (
	abandonedPosts   = 100_000
	slowConns        = 1_000
	maxRSS           = 192 << 20 // bytes, VmRSS of registryd at any sample
	probeP99         = 100 * time.Millisecond
	readHeaderWindow = 5 * time.Second // limits.readheadertimeout in the test
)

// startLimited runs registryd with extra environment (limits.* keys).
func startLimited(t *testing.T, env ...string) *registry {
	t.Helper()
	r := &registry{addr: fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)), dataDir: t.TempDir()}
	r.p = harness.StartProc(t, "registryd", harness.Tool(t, "registryd"),
		[]string{"serve", "--addr", r.addr, "--data-dir", r.dataDir}, env)
	harness.WaitFor(t, "registryd ready", 60*time.Second, func() error {
		if r.p.Exited() {
			t.Fatalf("registryd exited: %v\n%s", r.p.Err, harness.Tail(r.p.Out.String(), 4000))
		}
		return harness.GetOK("http://" + r.addr + "/readyz")
	})
	return r
}

// rss reads a process's resident set size from /proc.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read registryd's memory use: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS line %q: %w", line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// needFiles raises this process's open-file limit to n, or fails saying why.
func needFiles(t *testing.T, n uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Fatalf("this test opens %d connections but the hard open-file limit is %d: raise it (ulimit -Hn) and rerun", n, lim.Max)
	}
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("raise the open-file limit to %d: %v", n, err)
	}
}

// TestResourceBounds: 100k abandoned upload sessions and 1,000 connections
// that never finish their request line, all at once, leave registryd's RSS
// under maxRSS, while a client pulling a manifest sees a p99 under 100 ms;
// and the read-header timeout reaps the slow connections.
func TestResourceBounds(t *testing.T) {
	needFiles(t, 4096)
	r := startLimited(t,
		"BERTH_LIMITS_MAXCONNECTIONS=2048", "BERTH_LIMITS_MAXCONCURRENTREQUESTS=512",
		"BERTH_LIMITS_MAXREQUESTSPERCLIENT=256", "BERTH_LIMITS_READHEADERTIMEOUT="+readHeaderWindow.String())
	pid := r.p.Cmd.Process.Pid
	base := "http://" + r.addr
	im := harness.NewImage("res/probe", "v1")
	ctx, cancel := harness.Ctx(90 * time.Second)
	defer cancel()
	if err := im.Push(ctx, r.addr); err != nil {
		t.Fatal(err)
	}
	before, err := rss(pid)
	if err != nil {
		t.Fatal(err)
	}

	// Memory is sampled throughout.
	var peak atomic.Int64
	var rssErr atomic.Value
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(1)
	go func() {
		defer bg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			m, err := rss(pid)
			if err != nil {
				rssErr.CompareAndSwap(nil, err)
			}
			if m > peak.Load() {
				peak.Store(m)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	// 1,000 connections that send half a request line and then nothing.
	opened := time.Now()
	slow := make([]net.Conn, 0, slowConns)
	defer func() {
		for _, c := range slow {
			c.Close()
		}
	}()
	for i := range slowConns {
		c, err := net.DialTimeout("tcp", r.addr, 5*time.Second)
		if err != nil {
			t.Fatalf("slow connection %d: %v", i, err)
		}
		slow = append(slow, c)
		if _, err := io.WriteString(c, "GET /v2/res/probe/manifests/v1 HT"); err != nil {
			t.Fatalf("slow connection %d: %v", i, err)
		}
	}

	// A client pulling a manifest the whole time: HEAD and GET by tag.
	var lat []time.Duration
	var probeErr error
	probeCtx, probeStop := context.WithCancel(ctx)
	bg.Add(1)
	go func() {
		defer bg.Done()
		pc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		for probeCtx.Err() == nil {
			for _, method := range []string{"HEAD", "GET"} {
				req, _ := http.NewRequestWithContext(probeCtx, method, base+"/v2/res/probe/manifests/v1", nil)
				req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
				start := time.Now()
				resp, err := pc.Do(req)
				if err != nil {
					if probeCtx.Err() == nil {
						probeErr = err
					}
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(start))
				if resp.StatusCode != 200 {
					probeErr = fmt.Errorf("%s manifest: status %d", method, resp.StatusCode)
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	// 100k sessions opened and never used, from 16 clients at once.
	var accepted, refused atomic.Int64
	var postErr atomic.Value
	var next atomic.Int64
	var posters sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	defer tr.CloseIdleConnections()
	pc := &http.Client{Transport: tr}
	postStart := time.Now()
	for range 16 {
		posters.Add(1)
		go func() {
			defer posters.Done()
			for next.Add(1) <= abandonedPosts && ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v2/res/abandoned/blobs/uploads/", nil)
				resp, err := pc.Do(req)
				if err != nil {
					postErr.CompareAndSwap(nil, err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusAccepted:
					accepted.Add(1)
				case http.StatusTooManyRequests:
					refused.Add(1)
				default:
					postErr.CompareAndSwap(nil, fmt.Errorf("POST upload: status %d", resp.StatusCode))
					return
				}
			}
		}()
	}
	posters.Wait()
	postTook := time.Since(postStart)
	probeStop()

	// The slow connections are closed by the server once the read-header
	// timeout passes (a read on this side then ends).
	reaped := 0
	// A deadline already past fails a read before it looks at the socket,
	// so give at least a moment; a reaped connection reads EOF at once.
	deadline := opened.Add(readHeaderWindow + 5*time.Second)
	if soon := time.Now().Add(2 * time.Second); deadline.Before(soon) {
		deadline = soon
	}
	for _, c := range slow {
		c.SetReadDeadline(deadline)
		if _, err := bufio.NewReader(c).ReadByte(); !errors.Is(err, os.ErrDeadlineExceeded) {
			reaped++
		}
	}
	close(stop)
	bg.Wait()
	after, _ := rss(pid)
	if err, _ := rssErr.Load().(error); err != nil {
		t.Fatal(err)
	}

	if err, _ := postErr.Load().(error); err != nil {
		t.Errorf("abandoned uploads: %v", err)
	}
	if probeErr != nil {
		t.Errorf("manifest pulls: %v", probeErr)
	}
	t.Logf("%d POSTs in %v: %d accepted (202), %d refused (429); RSS %d MiB before, peak %d MiB, %d MiB after",
		abandonedPosts, postTook.Round(time.Millisecond), accepted.Load(), refused.Load(), before>>20, peak.Load()>>20, after>>20)
	if n := accepted.Load() + refused.Load(); n != abandonedPosts {
		t.Errorf("%d of %d POSTs answered with 202 or 429", n, abandonedPosts)
	}
	if p := peak.Load(); p > maxRSS {
		t.Errorf("registryd's RSS peaked at %d MiB, over the %d MiB bound", p>>20, maxRSS>>20)
	}
	if len(lat) < 100 {
		t.Errorf("only %d manifest pulls measured", len(lat))
	} else {
		slices.Sort(lat)
		p99 := lat[len(lat)*99/100]
		t.Logf("manifest pulls during the flood: %d, p50 %v, p99 %v, max %v", len(lat), lat[len(lat)/2], p99, lat[len(lat)-1])
		if p99 > probeP99 {
			t.Errorf("manifest pull p99 %v during the flood, over %v", p99, probeP99)
		}
	}
	if reaped < slowConns {
		t.Errorf("%d of %d slow-header connections still open %v after they were made; limits.readheadertimeout is %v",
			slowConns-reaped, slowConns, readHeaderWindow+5*time.Second, readHeaderWindow)
	}
}

// hold starts a request from the loopback address src that stays inside
// the handler (a PATCH whose body never ends) until release is called.
func hold(t *testing.T, r *registry, src string) (release func()) {
	t.Helper()
	c := fromAddr(src)
	resp, err := c.Post("http://"+r.addr+"/v2/res/held/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusAccepted || loc == "" {
		t.Fatalf("start upload from %s: %d", src, resp.StatusCode)
	}
	if !strings.HasPrefix(loc, "http") {
		loc = "http://" + r.addr + loc
	}
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("PATCH", loc, pr)
	req.Header.Set("Content-Type", "application/octet-stream")
	// With 100-continue the body is sent only once the handler reads it,
	// so when the first Write returns the request holds its slots.
	req.Header.Set("Expect", "100-continue")
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	if _, err := pw.Write(make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	return func() {
		pw.Close()
		<-done
	}
}

// fromAddr is a client whose connections come from the loopback address src.
func fromAddr(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, ExpectContinueTimeout: time.Minute}}
}

// TestTooManyRequests: over limits.maxrequestsperclient from one address,
// or over limits.maxconcurrentrequests in all, an OCI request is answered
// at once with 429, TOOMANYREQUESTS and Retry-After; health endpoints
// answer regardless; and everything works again once requests finish.
func TestTooManyRequests(t *testing.T) {
	r := startLimited(t, "BERTH_LIMITS_MAXCONCURRENTREQUESTS=3", "BERTH_LIMITS_MAXREQUESTSPERCLIENT=2")
	type probe struct {
		from, path string
		want       int
	}
	check := func(t *testing.T, probes []probe) {
		t.Helper()
		for _, p := range probes {
			start := time.Now()
			c := fromAddr(p.from)
			c.Timeout = 10 * time.Second
			resp, err := c.Get("http://" + r.addr + p.path)
			if err != nil {
				t.Fatalf("GET %s from %s: %v", p.path, p.from, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != p.want {
				t.Errorf("GET %s from %s: %d, want %d: %s", p.path, p.from, resp.StatusCode, p.want, body)
				continue
			}
			if p.want != http.StatusTooManyRequests {
				continue
			}
			var e struct{ Errors []struct{ Code string } }
			if json.Unmarshal(body, &e); len(e.Errors) == 0 || e.Errors[0].Code != "TOOMANYREQUESTS" {
				t.Errorf("429 body %q: want OCI error code TOOMANYREQUESTS", body)
			}
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
				t.Errorf("Retry-After %q: want a positive number of seconds", resp.Header.Get("Retry-After"))
			}
			if took := time.Since(start); took > time.Second {
				t.Errorf("refusal took %v: it must not wait for a slot", took)
			}
		}
	}
	// Two requests in flight from 127.0.0.1: its own bound is reached.
	r1, r2 := hold(t, r, "127.0.0.1"), hold(t, r, "127.0.0.1")
	check(t, []probe{
		{"127.0.0.1", "/v2/", http.StatusTooManyRequests},
		{"127.0.0.2", "/v2/", http.StatusOK},
		{"127.0.0.1", "/healthz", http.StatusOK},
		{"127.0.0.1", "/readyz", http.StatusOK},
	})
	// A third from 127.0.0.2: the node's bound of 3 is reached for everyone.
	r3 := hold(t, r, "127.0.0.2")
	check(t, []probe{
		{"127.0.0.3", "/v2/", http.StatusTooManyRequests},
		{"127.0.0.3", "/v2/res/probe/tags/list", http.StatusTooManyRequests},
		{"127.0.0.3", "/healthz", http.StatusOK},
	})
	r1()
	r2()
	r3()
	check(t, []probe{
		{"127.0.0.1", "/v2/", http.StatusOK},
		{"127.0.0.3", "/v2/", http.StatusOK},
	})
}
