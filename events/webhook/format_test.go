package webhook

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/berth-registry/berth/events"
)

// distributionEnvelope mirrors CNCF Distribution's notifications.Envelope
// (notifications/event.go) independently of this package's types, as a
// receiver written for distribution/registry decodes it.
type distributionEnvelope struct {
	Events []struct {
		ID        string    `json:"id"`
		Timestamp time.Time `json:"timestamp"`
		Action    string    `json:"action"`
		Target    struct {
			MediaType      string `json:"mediaType"`
			Size           int64  `json:"size"`
			Digest         string `json:"digest"`
			Length         int64  `json:"length"`
			Repository     string `json:"repository"`
			FromRepository string `json:"fromRepository"`
			URL            string `json:"url"`
			Tag            string `json:"tag"`
		} `json:"target"`
		Request struct {
			ID        string `json:"id"`
			Addr      string `json:"addr"`
			Host      string `json:"host"`
			Method    string `json:"method"`
			UserAgent string `json:"useragent"`
		} `json:"request"`
		Actor struct {
			Name string `json:"name"`
		} `json:"actor"`
		Source struct {
			Addr       string `json:"addr"`
			InstanceID string `json:"instanceID"`
		} `json:"source"`
	} `json:"events"`
}

func TestDistributionFormatParsesAsDistributionEnvelope(t *testing.T) {
	js := startJetStream(t)
	rc := newReceiver(t, nil)
	m := newTestManager(t, js, func(o *Options) {
		o.Source = Source{BaseURL: "https://registry.example.com/", Addr: "node-1:5000", InstanceID: "c1"}
	})
	hook := testHook("legacy", rc.URL)
	hook.Format = FormatDistribution
	mustSync(t, m, hook)
	runManager(t, m)
	pub := &publisher{t: t, js: js}
	pushed := pub.publish(events.CETypeManifestPushed, "team-a/app")
	deleted := pub.publish(events.CETypeManifestDeleted, "team-a/app")
	pub.publish(events.CETypeResourceApplied, "") // not expressible: skipped
	last := pub.publish(events.CETypeTagDeleted, "team-a/app")
	waitFor(t, 10*time.Second, "three envelopes", func() bool { return len(rc.delivered()) >= 3 })
	time.Sleep(100 * time.Millisecond)
	reqs := rc.requests()
	if len(reqs) != 3 {
		t.Fatalf("got %d requests, want 3 (the resource event is skipped)", len(reqs))
	}

	for i, c := range []struct {
		ce             events.CloudEvent
		action, method string
		url            string
	}{
		{pushed, "push", "PUT", "https://registry.example.com/v2/team-a/app/manifests/" + pushed.Data.Digest.String()},
		{deleted, "delete", "DELETE", "https://registry.example.com/v2/team-a/app/manifests/" + deleted.Data.Digest.String()},
		{last, "delete", "DELETE", "https://registry.example.com/v2/team-a/app/manifests/" + last.Data.Digest.String()},
	} {
		r := reqs[i]
		if ct := r.Header.Get("Content-Type"); ct != "application/vnd.docker.distribution.events.v2+json" {
			t.Errorf("request %d Content-Type %q", i, ct)
		}
		var env distributionEnvelope
		dec := json.NewDecoder(bytes.NewReader(r.Body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&env); err != nil {
			t.Fatalf("request %d does not parse as a Distribution envelope: %v\n%s", i, err, r.Body)
		}
		if len(env.Events) != 1 {
			t.Fatalf("request %d: %d events, want 1", i, len(env.Events))
		}
		e := env.Events[0]
		d := c.ce.Data
		if e.ID != c.ce.ID || !e.Timestamp.Equal(c.ce.Time) || e.Action != c.action {
			t.Errorf("request %d: id %q timestamp %v action %q; want %q %v %q", i, e.ID, e.Timestamp, e.Action, c.ce.ID, c.ce.Time, c.action)
		}
		if e.Target.Repository != d.Repository || e.Target.Digest != d.Digest.String() || e.Target.Tag != d.Tag ||
			e.Target.MediaType != d.MediaType || e.Target.Size != d.Size || e.Target.Length != d.Size || e.Target.URL != c.url {
			t.Errorf("request %d target %+v does not match event %+v (url want %s)", i, e.Target, d, c.url)
		}
		if e.Request.ID != d.RequestID || e.Request.Method != c.method || e.Request.UserAgent != d.UserAgent {
			t.Errorf("request %d request record %+v", i, e.Request)
		}
		if e.Actor.Name != d.Actor || e.Source.Addr != "node-1:5000" || e.Source.InstanceID != "c1" {
			t.Errorf("request %d actor %+v source %+v", i, e.Actor, e.Source)
		}
		if r.Header.Get(EventIDHeader) != c.ce.ID {
			t.Errorf("request %d %s = %q", i, EventIDHeader, r.Header.Get(EventIDHeader))
		}
	}
}
