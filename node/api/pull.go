package api

import (
	"net/http"
	"time"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
)

// PullHook hears of successful pulls (events/pulls publishes them). It is
// called on the request's goroutine after the response was written, so it
// must not block; it may keep the Pull, which holds no pointers into the
// request beyond immutable strings.
//
// What counts as a pull:
//   - a manifest GET answered 200 with its body (not HEAD, not 304);
//   - a blob GET answered 200 with the whole body, completely sent, or 206
//     for a range that starts at byte 0 (the first piece of a chunked
//     download). Later ranges, HEAD and 304 are not pulls, so a download
//     split into ranges counts once.
type PullHook interface {
	Pulled(events.Pull)
}

func (h *handler) manifestPulled(r *http.Request, name string, ref reference, m fsm.Manifest) {
	h.cfg.Pulls.Pulled(events.Pull{
		Kind: events.PullManifest, Time: time.Now(), Repository: name, Digest: m.Digest, Tag: ref.tag,
		MediaType: m.MediaType, Size: m.Size, UserAgent: r.UserAgent(), RemoteAddr: r.RemoteAddr,
		Actor: events.OriginFrom(r.Context()).Actor,
	})
}

func (h *handler) blobPulled(r *http.Request, name string, b events.Pull) {
	b.Kind, b.Time, b.Repository = events.PullBlob, time.Now(), name
	b.UserAgent, b.RemoteAddr = r.UserAgent(), r.RemoteAddr
	b.Actor = events.OriginFrom(r.Context()).Actor
	h.cfg.Pulls.Pulled(b)
}

// rangeFromStart reports a Range header whose first range starts at 0.
func rangeFromStart(r *http.Request) bool {
	v := r.Header.Get("Range")
	return len(v) >= len("bytes=0-") && v[:len("bytes=0-")] == "bytes=0-"
}
