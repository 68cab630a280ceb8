package webhook

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/berth-registry/berth/events"
)

// DistributionMediaType is the Content-Type of CNCF Distribution's
// notification envelope.
const DistributionMediaType = "application/vnd.docker.distribution.events.v2+json"

// Envelope is CNCF Distribution's notification body
// (distribution/notifications/event.go), field names and JSON tags
// unchanged so existing receivers parse it.
type Envelope struct {
	Events []DistributionEvent `json:"events"`
}

// DistributionEvent is one event of the Distribution envelope.
type DistributionEvent struct {
	ID        string              `json:"id,omitempty"`
	Timestamp time.Time           `json:"timestamp,omitempty"`
	Action    string              `json:"action,omitempty"`
	Target    DistributionTarget  `json:"target,omitempty"`
	Request   DistributionRequest `json:"request,omitempty"`
	Actor     DistributionActor   `json:"actor,omitempty"`
	Source    DistributionSource  `json:"source,omitempty"`
}

// DistributionTarget is what the event is about.
type DistributionTarget struct {
	MediaType  string `json:"mediaType,omitempty"`
	Size       int64  `json:"size,omitempty"`
	Digest     string `json:"digest,omitempty"`
	Length     int64  `json:"length,omitempty"`
	Repository string `json:"repository,omitempty"`
	URL        string `json:"url,omitempty"`
	Tag        string `json:"tag,omitempty"`
}

// DistributionRequest describes the request that caused the event.
type DistributionRequest struct {
	ID        string `json:"id"`
	Addr      string `json:"addr,omitempty"`
	Host      string `json:"host,omitempty"`
	Method    string `json:"method"`
	UserAgent string `json:"useragent"`
}

// DistributionActor is who caused the event.
type DistributionActor struct {
	Name string `json:"name,omitempty"`
}

// DistributionSource is the registry that generated the event.
type DistributionSource struct {
	Addr       string `json:"addr,omitempty"`
	InstanceID string `json:"instanceID,omitempty"`
}

// Source fills the Distribution envelope's source and target URLs.
type Source struct {
	// BaseURL is the registry's external URL ("https://registry.example.com");
	// empty leaves target.url out.
	BaseURL string
	// Addr and InstanceID go to source.addr and source.instanceID.
	Addr       string
	InstanceID string
}

// render returns the body and Content-Type of ce in the webhook's format.
// ok is false when the format cannot express the event (a resource event
// in the Distribution format): such events are skipped, not retried.
func render(format string, ce events.CloudEvent, src Source) (body []byte, contentType string, ok bool, err error) {
	if format != FormatDistribution {
		body, err = json.Marshal(ce)
		if err != nil {
			return nil, "", false, fmt.Errorf("encode cloudevent %s: %w", ce.ID, err)
		}
		return body, events.CEContentType, true, nil
	}
	env := Envelope{Events: []DistributionEvent{}}
	if ce.Type != events.CETypePing {
		ev, ok := toDistribution(ce, src)
		if !ok {
			return nil, "", false, nil
		}
		env.Events = append(env.Events, ev)
	}
	body, err = json.Marshal(env)
	if err != nil {
		return nil, "", false, fmt.Errorf("encode distribution envelope %s: %w", ce.ID, err)
	}
	return body, DistributionMediaType, true, nil
}

// toDistribution maps the repository events onto Distribution's push and
// delete actions; a tag update is a push of the tagged manifest, as
// Distribution reports a push by tag.
func toDistribution(ce events.CloudEvent, src Source) (DistributionEvent, bool) {
	d := ce.Data
	ev := DistributionEvent{
		ID: ce.ID, Timestamp: ce.Time,
		Target: DistributionTarget{
			MediaType: d.MediaType, Size: d.Size, Length: d.Size, Digest: d.Digest.String(),
			Repository: d.Repository, Tag: d.Tag,
		},
		Request: DistributionRequest{ID: d.RequestID, UserAgent: d.UserAgent},
		Actor:   DistributionActor{Name: d.Actor},
		Source:  DistributionSource{Addr: src.Addr, InstanceID: src.InstanceID},
	}
	switch ce.Type {
	case events.CETypeManifestPushed, events.CETypeTagUpdated:
		ev.Action, ev.Request.Method = "push", "PUT"
	case events.CETypeManifestDeleted, events.CETypeTagDeleted, events.CETypeRepositoryDeleted:
		ev.Action, ev.Request.Method = "delete", "DELETE"
	case events.CETypeManifestPulled, events.CETypeBlobPulled:
		// Distribution reports manifest and blob fetches as "pull".
		ev.Action, ev.Request.Method, ev.Request.Addr = "pull", "GET", d.RemoteAddr
	default:
		return DistributionEvent{}, false
	}
	if src.BaseURL != "" && d.Repository != "" && d.Digest != "" {
		kind := "/manifests/"
		if ce.Type == events.CETypeBlobPulled {
			kind = "/blobs/"
		}
		ev.Target.URL = strings.TrimSuffix(src.BaseURL, "/") + "/v2/" + d.Repository + kind + url.PathEscape(d.Digest.String())
	}
	return ev, true
}
