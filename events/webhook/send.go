package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/berth-registry/berth/events"
)

// maxResponseRead bounds what is read (and discarded) of a receiver's
// response, so a hostile receiver cannot make the leader read forever.
const maxResponseRead = 64 << 10

// newHTTPClient never follows redirects: a 3xx is a failed delivery, so a
// receiver cannot bounce signed events to another host.
func newHTTPClient(rt http.RoundTripper) *http.Client {
	return &http.Client{
		Transport: rt,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// attempt sends ce once and returns the record of the attempt. skip is
// true when the webhook's format cannot express the event.
func (m *Manager) attempt(ctx context.Context, wh Webhook, ce events.CloudEvent, n int) (rec DeliveryRecord, skip bool) {
	rec = DeliveryRecord{Webhook: wh.Name, EventID: ce.ID, Index: ce.Data.Index, Attempt: n, Time: m.opts.Now().UTC()}
	body, ctype, ok, err := render(wh.Format, ce, m.opts.Source)
	if err != nil {
		rec.Error = err.Error()
		return rec, false
	}
	if !ok {
		return rec, true
	}
	actx, cancel := context.WithTimeout(ctx, wh.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, wh.URL, bytes.NewReader(body))
	if err != nil {
		rec.Error = fmt.Sprintf("build request: %v", err)
		return rec, false
	}
	for k, vs := range wh.Headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", "berth-webhook/1")
	req.Header.Set(EventIDHeader, ce.ID)
	if wh.Secret != nil {
		req.Header.Set(SignatureHeader, Sign(wh.Secret, m.opts.Now().Unix(), body))
	}
	start := time.Now()
	resp, err := m.client.Do(req)
	if err != nil {
		rec.Latency = time.Since(start)
		switch {
		case ctx.Err() != nil:
			rec.Error = "stopped: " + ctx.Err().Error()
			return rec, false // not an outcome of the receiver: not counted
		case errors.Is(err, context.DeadlineExceeded):
			rec.Error = fmt.Sprintf("no response within the webhook timeout %s", wh.Timeout)
		default:
			rec.Error = redactURL(err).Error()
		}
		m.metrics.Delivered(wh.Name, "error")
		return rec, false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseRead))
	_ = resp.Body.Close()
	rec.Latency = time.Since(start)
	rec.Status = resp.StatusCode
	if !rec.OK() {
		rec.Error = "receiver answered " + resp.Status
	}
	m.metrics.Delivered(wh.Name, strconv.Itoa(resp.StatusCode))
	return rec, false
}

// redactURL drops the query and user info from the URL in a client
// error: receivers often carry a token there, and records are shown to
// operators.
func redactURL(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	u, perr := url.Parse(ue.URL)
	if perr != nil {
		return ue.Err
	}
	return fmt.Errorf("%s %s://%s%s: %w", ue.Op, u.Scheme, u.Host, u.EscapedPath(), ue.Err)
}

// backoff is the wait after failed attempt n (1-based): exponential from
// InitialBackoff, with jitter in its upper half so that many failing
// events do not retry in lockstep, never outside [InitialBackoff, MaxBackoff].
func backoff(wh Webhook, n int) time.Duration {
	d := wh.InitialBackoff
	for i := 1; i < n && d < wh.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, wh.MaxBackoff)
	d = d/2 + rand.N(d/2+1)
	return max(d, wh.InitialBackoff)
}

// deliver attempts ce until it is delivered or MaxDeliveries attempts
// failed, recording every attempt. It returns the last record; a
// non-OK record with ctx still alive means "dead-letter it". A record
// with skip set means the format cannot express the event.
func (m *Manager) deliver(ctx context.Context, wh Webhook, ce events.CloudEvent, sem chan struct{}) (last DeliveryRecord, skip bool) {
	for n := 1; ; n++ {
		if sem != nil {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return DeliveryRecord{Webhook: wh.Name, EventID: ce.ID, Attempt: n - 1, Error: ctx.Err().Error()}, false
			}
		}
		rec, skip := m.attempt(ctx, wh, ce, n)
		if sem != nil {
			<-sem
		}
		if skip {
			return rec, true
		}
		if ctx.Err() != nil {
			return rec, false
		}
		m.record(ctx, rec)
		if rec.OK() || n >= wh.MaxDeliveries {
			return rec, false
		}
		t := time.NewTimer(backoff(wh, n))
		select {
		case <-ctx.Done():
			t.Stop()
			return rec, false
		case <-t.C:
		}
	}
}
