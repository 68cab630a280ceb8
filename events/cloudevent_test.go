package events

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

func TestToCloudEvent(t *testing.T) {
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	d := digest.FromString("m")
	origin := Origin{Actor: "alice", UserAgent: "crane/0.22", RequestID: "r1"}
	for _, tc := range []struct {
		name        string
		p           Payload
		wantType    string
		wantSubject string
		wantNATS    string
		published   bool
	}{
		{"push by tag", ManifestPut{Repo: "team-a/app", Digest: d, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 5, Tags: []string{"v1", "latest"}},
			CETypeManifestPushed, "team-a/app:v1", "berth.manifest_pushed.team-a.app", true},
		{"push by digest", ManifestPut{Repo: "app", Digest: d}, CETypeManifestPushed, "app@" + d.String(), "berth.manifest_pushed.app", true},
		{"manifest deleted", ManifestDeleted{Repo: "a/b", Digest: d}, CETypeManifestDeleted, "a/b@" + d.String(), "berth.manifest_deleted.a.b", true},
		{"tag set", TagSet{Repo: "a", Tag: "t", Digest: d}, CETypeTagUpdated, "a:t", "berth.tag_updated.a", true},
		{"tag deleted", TagDeleted{Repo: "a", Tag: "t"}, CETypeTagDeleted, "a:t", "berth.tag_deleted.a", true},
		{"repository deleted", RepositoryDeleted{Repo: "x.y/z"}, CETypeRepositoryDeleted, "x.y/z", "berth.repository_deleted.x%2Ey.z", true},
		{"resource applied", ResourceApplied{Kind: "Registry", Name: "hub"}, CETypeResourceApplied, "Registry/hub", "berth.resource_applied._", true},
		{"resources applied", ResourcesApplied{Resources: []ResourceApplied{{Kind: "Registry", Name: "a"}, {Kind: "Registry", Name: "b"}}}, CETypeResourceApplied, "", "berth.resource_applied._", true},
		{"resource deleted", ResourceDeleted{Kind: "Registry", Name: "hub"}, CETypeResourceDeleted, "Registry/hub", "berth.resource_deleted._", true},
		{"blob linked is bookkeeping", BlobLinked{Repo: "a", Digest: d}, "", "", "", false},
		{"blob unlinked is bookkeeping", BlobUnlinked{Repo: "a", Digest: d}, "", "", "", false},
		{"outbox cursor is bookkeeping", OutboxCursor{Index: 7}, "", "", "", false},
		{"cluster id is bookkeeping", ClusterIdentified{ID: "abc"}, "", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ce, ok := ToCloudEvent("eu1", 42, Event{Time: at, Origin: origin, Payload: tc.p})
			if ok != tc.published {
				t.Fatalf("published = %v, want %v", ok, tc.published)
			}
			if !ok {
				return
			}
			if ce.SpecVersion != "1.0" || ce.ID != "eu1:42" || ce.Source != "berth://eu1" || !ce.Time.Equal(at) || ce.Data.Index != 42 {
				t.Errorf("envelope = %+v", ce)
			}
			if ce.Type != tc.wantType || ce.Subject != tc.wantSubject {
				t.Errorf("type, subject = %q, %q; want %q, %q", ce.Type, ce.Subject, tc.wantType, tc.wantSubject)
			}
			if got := NATSSubject(ce); got != tc.wantNATS {
				t.Errorf("NATS subject = %q, want %q", got, tc.wantNATS)
			}
			if ce.Data.Actor != "alice" || ce.Data.UserAgent != "crane/0.22" || ce.Data.RequestID != "r1" {
				t.Errorf("origin lost: %+v", ce.Data)
			}
			b, err := json.Marshal(ce)
			if err != nil || !strings.Contains(string(b), `"specversion":"1.0"`) {
				t.Errorf("json %s %v", b, err)
			}
		})
	}
}

func TestNATSSubjectEscapesReservedCharacters(t *testing.T) {
	ce := CloudEvent{Type: CETypeManifestPushed, Data: CloudEventData{Repository: "a.b/c*d/e>f/%g h"}}
	got := NATSSubject(ce)
	if want := "berth.manifest_pushed.a%2Eb.c%2Ad.e%3Ef.%25g%20h"; got != want {
		t.Errorf("NATSSubject = %q, want %q", got, want)
	}
}

func TestOriginTravelsThroughContextAndLog(t *testing.T) {
	long := strings.Repeat("é", 300) // 600 bytes
	ctx := WithOrigin(context.Background(), Origin{Actor: "bob", UserAgent: long, RequestID: "req-7"})
	o := OriginFrom(ctx)
	if len(o.UserAgent) > maxUserAgent || !strings.HasPrefix(long, o.UserAgent) || !utf8Valid(o.UserAgent) {
		t.Errorf("user agent not cut to a valid bound: %d bytes", len(o.UserAgent))
	}
	b, err := Encode(Event{Time: time.Unix(0, 0), Origin: o, Payload: TagDeleted{Repo: "a", Tag: "t"}})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := Decode(b)
	if err != nil || ev.Origin != o {
		t.Errorf("origin after the codec = %+v, %v; want %+v", ev.Origin, err, o)
	}
	// No origin: the entry's bytes are what older binaries wrote.
	b, _ = Encode(Event{Time: time.Unix(0, 0), Payload: TagDeleted{Repo: "a", Tag: "t"}})
	if strings.Contains(string(b), "origin") {
		t.Errorf("empty origin encoded: %s", b)
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestQuotaWarningEvent(t *testing.T) {
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	ev := Event{Time: at, Origin: Origin{Actor: "ci"}, Payload: ManifestPut{Repo: "team-a/app"}}
	for _, tc := range []struct {
		name     string
		w        QuotaWarning
		wantNATS string
	}{
		{"from a push", QuotaWarning{Namespace: "team-a", Repo: "team-a/app", Usage: 900, Quota: 1000}, "berth.quota_warning.team-a.app"},
		{"from a lowered quota", QuotaWarning{Namespace: "team-a", Usage: 900, Quota: 1000}, "berth.quota_warning.team-a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ce := QuotaWarningEvent("eu1", 42, ev, tc.w)
			if ce.ID != "eu1:42/quota.warning/team-a" || ce.Type != "dev.berth.quota.warning" || ce.Subject != "team-a" || !ce.Time.Equal(at) {
				t.Errorf("envelope = %+v", ce)
			}
			if d := ce.Data; d.Namespace != "team-a" || d.Repository != tc.w.Repo || d.Usage != 900 || d.Quota != 1000 || d.Index != 42 || d.Actor != "ci" {
				t.Errorf("data = %+v", d)
			}
			if got := NATSSubject(ce); got != tc.wantNATS {
				t.Errorf("NATS subject = %q, want %q", got, tc.wantNATS)
			}
		})
	}
}
