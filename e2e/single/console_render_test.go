package single

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// renderMeasure is what the page itself reports of one load: its
// Navigation Timing load end, how long the layout forced right after it
// took (zero when Chromium had already laid the page out), the first
// contentful paint, and how many tag rows the DOM holds.
type renderMeasure struct {
	Load   float64 `json:"load"`
	Layout float64 `json:"layout"`
	FCP    float64 `json:"fcp"`
	Rows   int     `json:"rows"`
}

// Took is the time from the start of the navigation until the page was
// loaded and laid out: what a user waits for before the table is there.
func (m renderMeasure) Took() time.Duration {
	return time.Duration((m.Load + m.Layout) * float64(time.Millisecond))
}

// measureJS reads the page's own clocks; reading the body's height makes
// Chromium finish style and layout for every row if it has not yet.
const measureJS = `(() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const t0 = performance.now();
  document.body.getBoundingClientRect();
  const layout = performance.now() - t0;
  const fcp = performance.getEntriesByName("first-contentful-paint")[0];
  return {load: nav.loadEventEnd, layout: layout, fcp: fcp ? fcp.startTime : 0,
          rows: document.querySelectorAll("#tags tbody tr").length};
})()`

// scrollJS scrolls to the end of the page and reports the tag rows drawn
// and the last one.
const scrollJS = `(() => {
  window.scrollTo(0, document.body.scrollHeight);
  window.dispatchEvent(new Event("scroll"));
  const rows = document.querySelectorAll("#tags tbody tr");
  return {rows: rows.length, last: rows.length ? rows[rows.length - 1].querySelector(".tag").textContent : ""};
})()`

// filterJS types into the filter box and reports the rows drawn.
const filterJS = `(() => {
  const input = document.querySelector("input.filter");
  input.value = %q;
  input.dispatchEvent(new Event("input"));
  return document.querySelectorAll("#tags tbody tr").length;
})()`

type scrolled struct {
	Rows int    `json:"rows"`
	Last string `json:"last"`
}

// scrollToEnd loads url and scrolls until want rows are drawn (or a
// minute passed), then filters the page by filter; it returns the last
// scroll's rows and the rows the filter left.
func (b *browser) scrollToEnd(url, user, pass string, want int, filter string) (scrolled, int) {
	b.t.Helper()
	bctx, cancel := b.devtools(user, pass)
	defer cancel()
	if err := chromedp.Do(bctx, chromedp.Navigate(url)); err != nil {
		b.t.Fatalf("load %s in chromium: %v", url, err)
	}
	var s scrolled
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var err error
		if s, err = chromedp.Run(bctx, chromedp.Evaluate[scrolled](scrollJS)); err != nil {
			b.t.Fatalf("scroll %s: %v", url, err)
		}
		if s.Rows >= want {
			break
		}
	}
	n, err := chromedp.Run(bctx, chromedp.Evaluate[int](fmt.Sprintf(filterJS, filter)))
	if err != nil {
		b.t.Fatalf("filter %s: %v", url, err)
	}
	return s, n
}

// devtools starts a headless Chromium driven through the DevTools
// protocol that sends Basic credentials with every request.
func (b *browser) devtools(user, pass string) (context.Context, context.CancelFunc) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(b.bin), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.UserDataDir(b.t.TempDir()), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	stop := func() { cancelBrowser(); cancelAlloc(); cancel() }
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	if _, err := chromedp.Call(bctx, network.Enable, network.EnableParams{}); err != nil {
		stop()
		b.t.Fatalf("start chromium through the DevTools protocol: %v", err)
	}
	if _, err := chromedp.Call(bctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}}); err != nil {
		stop()
		b.t.Fatalf("chromium: set the Authorization header: %v", err)
	}
	return bctx, stop
}

// measureRender loads url n times in one headless Chromium (so the
// browser's own start is not counted), signed in with Basic credentials,
// and returns each load's measure. Between loads it goes to about:blank,
// so every load is a fresh navigation.
func (b *browser) measureRender(url, user, pass string, n int) []renderMeasure {
	b.t.Helper()
	bctx, cancel := b.devtools(user, pass)
	defer cancel()
	var out []renderMeasure
	for range n {
		if err := chromedp.Do(bctx, chromedp.Navigate("about:blank"), chromedp.Navigate(url)); err != nil {
			b.t.Fatalf("load %s in chromium: %v", url, err)
		}
		m, err := chromedp.Run(bctx, chromedp.Evaluate[renderMeasure](measureJS))
		if err != nil {
			b.t.Fatalf("measure %s in chromium: %v", url, err)
		}
		out = append(out, m)
	}
	return out
}
