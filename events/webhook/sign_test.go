package webhook

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-registry/berth/events"
)

func TestVerify(t *testing.T) {
	secret := []byte("s3cret")
	body := []byte(`{"id":"c1:7"}`)
	now := time.Unix(1_790_000_000, 0)
	good := Sign(secret, now.Unix(), body)
	rotated := good + ",v1=" + strings.Repeat("ab", 32)
	for _, c := range []struct {
		name      string
		secret    []byte
		header    string
		body      []byte
		now       time.Time
		wantError error
	}{
		{"valid", secret, good, body, now, nil},
		{"valid within tolerance", secret, good, body, now.Add(4 * time.Minute), nil},
		{"one of several v1 values", secret, rotated, body, now, nil},
		{"changed body", secret, good, []byte(`{"id":"c1:8"}`), now, ErrSignatureMismatch},
		{"wrong secret", []byte("other"), good, body, now, ErrSignatureMismatch},
		{"old timestamp", secret, good, body, now.Add(6 * time.Minute), ErrSignatureExpired},
		{"future timestamp", secret, good, body, now.Add(-6 * time.Minute), ErrSignatureExpired},
		{"timestamp changed", secret, strings.Replace(good, "t="+strconv.FormatInt(now.Unix(), 10), "t="+strconv.FormatInt(now.Unix()+60, 10), 1), body, now, ErrSignatureMismatch},
		{"empty", secret, "", body, now, ErrSignatureMalformed},
		{"no v1", secret, "t=1790000000", body, now, ErrSignatureMalformed},
		{"bad hex", secret, "t=1790000000,v1=zz", body, now, ErrSignatureMalformed},
		{"bad t", secret, "t=x,v1=00", body, now, ErrSignatureMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := Verify(c.secret, c.header, c.body, c.now, 5*time.Minute)
			if !errors.Is(err, c.wantError) || (c.wantError == nil && err != nil) {
				t.Errorf("Verify = %v, want %v", err, c.wantError)
			}
		})
	}
}

// TestDeliveriesAreSigned verifies real deliveries as a receiver would:
// with Verify over the raw body, the secret it shares and its own clock.
func TestDeliveriesAreSigned(t *testing.T) {
	js := startJetStream(t)
	secret := []byte("hook-secret")
	rc := newReceiver(t, nil)
	m := newTestManager(t, js, nil)
	signed := testHook("signed", rc.URL)
	signed.Secret = secret
	signed.Headers = http.Header{"X-Team": {"a"}}
	mustSync(t, m, signed)
	runManager(t, m)
	ce := (&publisher{t: t, js: js}).publish(events.CETypeManifestPushed, "team-a/app")
	waitFor(t, 10*time.Second, "the signed delivery", func() bool { return len(rc.delivered()) == 1 })

	r := rc.requests()[0]
	if err := Verify(secret, r.Header.Get(SignatureHeader), r.Body, time.Now(), time.Minute); err != nil {
		t.Errorf("a delivered body does not verify: %v", err)
	}
	tampered := append([]byte(nil), r.Body...)
	tampered[len(tampered)-2] ^= 1
	if err := Verify(secret, r.Header.Get(SignatureHeader), tampered, time.Now(), time.Minute); !errors.Is(err, ErrSignatureMismatch) {
		t.Errorf("a changed body verified: %v", err)
	}
	if err := Verify(secret, r.Header.Get(SignatureHeader), r.Body, time.Now().Add(time.Hour), time.Minute); !errors.Is(err, ErrSignatureExpired) {
		t.Errorf("a replay an hour later verified: %v", err)
	}
	for k, want := range map[string]string{
		"Content-Type": events.CEContentType, EventIDHeader: ce.ID, "X-Team": "a",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}

	// Unsigned webhooks send no signature header.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	signed.Secret = nil
	mustSync(t, m, signed)
	if _, err := m.Test(ctx, "signed"); err != nil {
		t.Fatalf("Test: %v", err)
	}
	last := rc.requests()[len(rc.requests())-1]
	if h := last.Header.Get(SignatureHeader); h != "" {
		t.Errorf("unsigned webhook sent %s: %q", SignatureHeader, h)
	}
	if last.Event.Type != events.CETypePing {
		t.Errorf("Test sent type %q, want %q", last.Event.Type, events.CETypePing)
	}
}
