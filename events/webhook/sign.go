package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>". The
// timestamp is inside the signed text, so a receiver that rejects old
// timestamps also rejects replays of captured deliveries.
const SignatureHeader = "Berth-Signature"

// EventIDHeader carries the CloudEvent ID, the receiver's deduplication key.
const EventIDHeader = "Berth-Event-Id"

// Sign returns the Berth-Signature value for body sent at unix time t:
// HMAC-SHA256(secret, "<t>.<body>") in hex.
func Sign(secret []byte, t int64, body []byte) string {
	return fmt.Sprintf("t=%d,v1=%s", t, hex.EncodeToString(mac(secret, t, body)))
}

func mac(secret []byte, t int64, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(strconv.FormatInt(t, 10)))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Errors Verify returns, so a receiver can tell a forgery from a clock problem.
var (
	ErrSignatureMalformed = errors.New("webhook signature: malformed header")
	ErrSignatureMismatch  = errors.New("webhook signature: no v1 signature matches the body")
	ErrSignatureExpired   = errors.New("webhook signature: timestamp outside the tolerance")
)

// Verify checks a Berth-Signature header against body: some v1 value must
// equal the HMAC (compared in constant time) and the timestamp must be
// within tolerance of now, either way. Several v1 values are accepted so a
// sender can sign with an old and a new secret while a secret is rotated.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var (
		t    int64
		hasT bool
		sigs [][]byte
	)
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrSignatureMalformed
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || hasT {
				return ErrSignatureMalformed
			}
			t, hasT = n, true
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil {
				return ErrSignatureMalformed
			}
			sigs = append(sigs, b)
		}
	}
	if !hasT || len(sigs) == 0 {
		return ErrSignatureMalformed
	}
	want := mac(secret, t, body)
	matched := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			matched = true
		}
	}
	if !matched {
		return ErrSignatureMismatch
	}
	if d := now.Sub(time.Unix(t, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed at %d, %s from now (tolerance %s)", ErrSignatureExpired, t, d.Round(time.Second), tolerance)
	}
	return nil
}
