package replication

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/opencontainers/go-digest"
	"github.com/robfig/cron/v3"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/events"
)

// pushSource is a cluster reduced to what a push policy reads, with a
// real blob store, keeping the job's reports as the FSM does.
type pushSource struct {
	mu        sync.Mutex
	store     blob.Store
	tags      map[string]map[string]digest.Digest
	manifests map[string]LocalManifest // repo@digest
	job       PushJob
	copied    map[string]bool // repo@digest of job
	reports   []events.ReplicationReported
}

func newPushSource(t *testing.T) *pushSource {
	store, err := blob.NewFS(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)), blob.FSLimits{})
	if err != nil {
		t.Fatal(err)
	}
	return &pushSource{store: store, tags: map[string]map[string]digest.Digest{}, manifests: map[string]LocalManifest{}, copied: map[string]bool{}}
}

func (s *pushSource) put(t *testing.T, b []byte) digest.Digest {
	d := digest.FromBytes(b)
	if _, err := s.store.Put(context.Background(), d, int64(len(b)), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	return d
}

// image stores a one-layer image in repo under tag.
func (s *pushSource) image(t *testing.T, repo, tag, content string) digest.Digest {
	config := s.put(t, []byte(`{"architecture":"amd64","os":"linux","c":"`+content+`"}`))
	layer := s.put(t, []byte("layer of "+content))
	m, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": len(`{"architecture":"amd64","os":"linux","c":"` + content + `"}`)},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": len("layer of " + content)}},
	})
	d := s.put(t, m)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.manifests[repo+"@"+d.String()] = LocalManifest{MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(len(m)), Blobs: []digest.Digest{config, layer}}
	if s.tags[repo] == nil {
		s.tags[repo] = map[string]digest.Digest{}
	}
	s.tags[repo][tag] = d
	return d
}

func (s *pushSource) target() PushTarget {
	return PushTarget{View: func() PushLocal { return s }, Propose: s.propose, Blobs: s.store, Fence: func() error { return nil }}
}

func (s *pushSource) propose(_ context.Context, p events.Payload) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := p.(events.ReplicationReported)
	if !ok {
		return fmt.Errorf("unexpected %T", p)
	}
	s.reports = append(s.reports, r)
	switch r.Kind {
	case events.ReplicationStarted:
		s.job, s.copied = PushJob{Name: r.Job}, map[string]bool{}
	case events.ReplicationCopied:
		s.copied[r.Repo+"@"+r.Digest] = true
		s.job.Artifacts++
	case events.ReplicationCaughtUp:
		s.job.Done, s.job.LastError = true, r.Error
	}
	return nil
}

func (s *pushSource) kinds() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.reports {
		out = append(out, r.Kind)
	}
	return out
}

func (s *pushSource) Index() uint64 { return 1 }
func (s *pushSource) Repositories() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for r := range s.tags {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}
func (s *pushSource) Tags(repo string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for t := range s.tags[repo] {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}
func (s *pushSource) Tag(repo, tag string) (digest.Digest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.tags[repo][tag]
	return d, ok
}
func (s *pushSource) Manifest(repo string, d digest.Digest) (LocalManifest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.manifests[repo+"@"+d.String()]
	return m, ok
}
func (s *pushSource) Referrers(string, digest.Digest) []digest.Digest { return nil }
func (s *pushSource) Job(string) (PushJob, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.job, s.job.Name != ""
}
func (s *pushSource) Copied(_, job, repo string, d digest.Digest) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return job == s.job.Name && s.copied[repo+"@"+d.String()]
}
func (s *pushSource) Cursor(string) (Cursor, bool) { return Cursor{}, false }

// destination is go-containerregistry's registry behind a recorder that
// can refuse a manifest's first puts with 500, a fault the real one does
// not produce on demand.
type destination struct {
	mu       sync.Mutex
	requests []string // METHOD path
	failPut  map[string]int
}

func (d *destination) ServeHTTP(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.requests = append(d.requests, r.Method+" "+r.URL.Path)
		for ref, n := range d.failPut {
			if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/manifests/"+ref) && n > 0 {
				d.failPut[ref] = n - 1
				d.mu.Unlock()
				http.Error(w, "disk full", http.StatusInternalServerError)
				return
			}
		}
		d.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// touched lists the requests naming ref.
func (d *destination) touched(ref string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, r := range d.requests {
		if strings.Contains(r, ref) {
			out = append(out, r)
		}
	}
	return out
}

func TestPushJob(t *testing.T) {
	defer func(m time.Duration) { pushRetryMin = m }(pushRetryMin)
	pushRetryMin = time.Millisecond
	tests := []struct {
		name string
		// reported is the image (by tag) an earlier leader reported
		// copied in the open job; failPut fails an image's first puts.
		reported   string
		failPut    map[string]int
		wantKinds  []string
		untouched  string // an image the destination never hears of
		wantPutsOf map[string]int
		wantError  string
	}{
		{name: "fresh job", wantKinds: []string{"started", "artifact.copied", "artifact.copied", "artifact.copied", "caught-up"},
			wantPutsOf: map[string]int{"a": 1, "b": 1, "c": 1}},
		{name: "resumed job skips what was reported", reported: "a", untouched: "a",
			wantKinds: []string{"artifact.copied", "artifact.copied", "caught-up"}, wantPutsOf: map[string]int{"b": 1, "c": 1}},
		{name: "a failing artifact is retried alone and reported once", failPut: map[string]int{"b": 3},
			wantKinds:  []string{"started", "artifact.copied", "failed", "artifact.copied", "artifact.copied", "caught-up"},
			wantPutsOf: map[string]int{"a": 1, "b": 4, "c": 1}},
		{name: "an artifact failing every attempt ends the job with the error", failPut: map[string]int{"b": 100},
			wantKinds:  []string{"started", "artifact.copied", "failed", "artifact.copied", "caught-up"},
			wantPutsOf: map[string]int{"a": 1, "b": pushAttempts, "c": 1}, wantError: "1 artifacts failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newPushSource(t)
			digests := map[string]digest.Digest{}
			for _, tag := range []string{"a", "b", "c"} {
				digests[tag] = src.image(t, "team/app", tag, tag)
			}
			dest := &destination{failPut: map[string]int{}}
			for tag, n := range tt.failPut {
				dest.failPut[digests[tag].String()] = n
			}
			srv := httptest.NewServer(dest.ServeHTTP(registry.New(registry.Logger(log.New(io.Discard, "", 0)))))
			defer srv.Close()
			p := PushPolicy{Name: "to-dr", Registry: "dr", Trigger: "manual",
				Covers: func(string) bool { return true }, Destination: func(r string) string { return "dr/" + r },
				WantsTag: func(string) bool { return true }, Dest: Destination{URL: srv.URL}}
			r := newPushRun(p, src.target(), slog.New(slog.NewTextHandler(io.Discard, nil)))
			resume := tt.reported != ""
			if resume {
				src.job = PushJob{Name: "manual-1"}
				src.copied["team/app@"+digests[tt.reported].String()] = true
			}
			r.runJob(context.Background(), "manual-1", resume)

			// Artifacts go in digest order: compare the reports' kinds
			// as a multiset, with the first and the last in place.
			got, want := src.kinds(), slices.Clone(tt.wantKinds)
			if len(got) == 0 || got[0] != want[0] || got[len(got)-1] != want[len(want)-1] {
				t.Errorf("reports %v, want %v", got, want)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("reports %v, want %v (in any order)", got, want)
			}
			if !src.job.Done || !strings.Contains(src.job.LastError, tt.wantError) || (tt.wantError == "") != (src.job.LastError == "") {
				t.Errorf("job %+v, want done with error %q", src.job, tt.wantError)
			}
			if tt.untouched != "" {
				if got := dest.touched(digests[tt.untouched].String()); len(got) > 0 {
					t.Errorf("the resumed job asked the destination about a reported artifact: %v", got)
				}
			}
			for tag, n := range tt.wantPutsOf {
				var puts int
				for _, req := range dest.touched(digests[tag].String()) {
					if strings.HasPrefix(req, "PUT ") {
						puts++
					}
				}
				if puts != n {
					t.Errorf("%d manifest puts of %s, want %d", puts, tag, n)
				}
			}
		})
	}
}

// The triggers a job starts from: a cron schedule, and a manual run
// through the manager (refused while a job runs, and for a policy it does
// not run).
func TestPushTriggers(t *testing.T) {
	tests := []struct {
		name     string
		trigger  string
		schedule cron.Schedule
		manual   bool
		wantJob  string
	}{
		{name: "schedule", trigger: "schedule", schedule: cron.Every(time.Second), wantJob: "schedule-"},
		{name: "manual", trigger: "manual", manual: true, wantJob: "manual-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newPushSource(t)
			d := src.image(t, "team/app", "v1", "one")
			dest := &destination{}
			srv := httptest.NewServer(dest.ServeHTTP(registry.New(registry.Logger(log.New(io.Discard, "", 0)))))
			defer srv.Close()
			mg := NewPushManager(src.target(), slog.New(slog.NewTextHandler(io.Discard, nil)))
			ctx, cancel := context.WithCancel(context.Background())
			defer func() { cancel(); mg.Stop() }()
			mg.Reconcile(ctx, []PushPolicy{{Name: "to-dr", Registry: "dr", Trigger: tt.trigger, Schedule: tt.schedule,
				Covers: func(string) bool { return true }, Destination: func(r string) string { return r },
				WantsTag: func(string) bool { return true }, Dest: Destination{URL: srv.URL}}}, nil)
			if _, err := mg.Run("other"); !errors.Is(err, ErrNoPushPolicy) {
				t.Errorf("run of an unknown policy: %v, want ErrNoPushPolicy", err)
			}
			if tt.manual {
				job, err := mg.Run("to-dr")
				if err != nil || !strings.HasPrefix(job, tt.wantJob) {
					t.Fatalf("run: %q, %v", job, err)
				}
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				j, _ := src.Job("to-dr")
				if j.Done {
					if !strings.HasPrefix(j.Name, tt.wantJob) || j.Artifacts != 1 {
						t.Errorf("job %+v, want %s… with 1 artifact", j, tt.wantJob)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no job done; job %+v", j)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if len(dest.touched(d.String())) == 0 {
				t.Error("the destination never saw the image")
			}
			st := mg.Status()
			if len(st) != 1 || st[0].Mode != "push" || st[0].JobState != "done" || st[0].Artifacts != 1 {
				t.Errorf("status %+v", st)
			}
		})
	}
}
