package events

import "context"

// Origin is who caused an event and through which request: what webhook
// receivers and auditors need to tell one push from another. The HTTP
// layer puts it in the request's context and the proposer stamps it on
// the event, so no handler has to pass it along by hand.
type Origin struct {
	Actor     string `json:"actor,omitempty"`
	UserAgent string `json:"userAgent,omitempty"`
	RequestID string `json:"requestId,omitempty"`
}

// Bounds keep a client from growing every log entry with its headers.
const (
	maxUserAgent = 256
	maxActor     = 256
	maxRequestID = 64
)

type originKey struct{}

// WithOrigin returns ctx carrying o, each field cut to its bound.
func WithOrigin(ctx context.Context, o Origin) context.Context {
	o.Actor = truncate(o.Actor, maxActor)
	o.UserAgent = truncate(o.UserAgent, maxUserAgent)
	o.RequestID = truncate(o.RequestID, maxRequestID)
	return context.WithValue(ctx, originKey{}, o)
}

// OriginFrom returns the Origin that WithOrigin put in ctx, or none.
func OriginFrom(ctx context.Context) Origin {
	o, _ := ctx.Value(originKey{}).(Origin)
	return o
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary so the log holds valid UTF-8.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
