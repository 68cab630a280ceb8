package single

import (
	"context"
	"encoding/base64"
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

// measureRender loads url n times in one headless Chromium (so the
// browser's own start is not counted), signed in with Basic credentials,
// and returns each load's measure. Between loads it goes to about:blank,
// so every load is a fresh navigation.
func (b *browser) measureRender(url, user, pass string, n int) []renderMeasure {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(b.bin), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.UserDataDir(b.t.TempDir()), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	if _, err := chromedp.Call(bctx, network.Enable, network.EnableParams{}); err != nil {
		b.t.Fatalf("start chromium through the DevTools protocol: %v", err)
	}
	if _, err := chromedp.Call(bctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": auth}}); err != nil {
		b.t.Fatalf("chromium: set the Authorization header: %v", err)
	}
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
