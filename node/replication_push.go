package node

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/fsm/resource"
	"github.com/berth-registry/berth/node/secrets"
	"github.com/berth-registry/berth/replication"
)

// startPushReplication runs the push policies for a leader term; the
// returned function waits for them to stop. Their reports and cursors are
// fenced by the term (rule 9).
func (n *Node) startPushReplication(ctx context.Context, term uint64) func() {
	fence := n.termFence(ctx, term)
	target := replication.PushTarget{
		View: func() replication.PushLocal { return pushView{localView{n.fsm.View()}} },
		Propose: func(ctx context.Context, p events.Payload) error {
			_, err := n.Propose(ctx, p)
			return err
		},
		Blobs: n.blobs,
		Fence: fence,
	}
	if n.events != nil {
		target.Stream = func(ctx context.Context) (jetstream.Stream, error) {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return n.events.broker.JetStream().Stream(sctx, n.cfg.Events.Stream)
		}
	}
	mg := replication.NewPushManager(target, n.logger.With("component", "replication", "mode", "push"))
	n.repl.mu.Lock()
	n.repl.push = mg
	n.repl.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.reconcileLoop(ctx, func() {
			policies, problems := pushPolicies(ctx, n.fsm.View(), n.repl.secrets)
			mg.Reconcile(ctx, policies, problems)
		})
		mg.Stop()
	}()
	return func() {
		<-done
		n.repl.mu.Lock()
		if n.repl.push == mg {
			n.repl.push = nil
		}
		n.repl.mu.Unlock()
	}
}

// pushPolicies resolves every enabled push ReplicationPolicy at v: those
// that can run, and those that cannot with the reason.
func pushPolicies(ctx context.Context, v *fsm.View, res *secrets.Resolver) ([]replication.PushPolicy, map[string]replication.Status) {
	var out []replication.PushPolicy
	problems := map[string]replication.Status{}
	for _, r := range v.Resources("ReplicationPolicy") {
		p, err := resource.DecodeReplicationPolicy(r.Document)
		if err != nil || p.Spec.Mode != "push" || !p.Spec.Enabled {
			continue
		}
		pol, err := resolvePush(ctx, v, res, p)
		if err != nil {
			problems[p.Name] = replication.Status{Policy: p.Name, Registry: p.Spec.Registry, Mode: "push", LastError: err.Error()}
			continue
		}
		out = append(out, pol)
	}
	return out, problems
}

func resolvePush(ctx context.Context, v *fsm.View, res *secrets.Resolver, p resource.ReplicationPolicy) (replication.PushPolicy, error) {
	ref, err := resolveRegistry(v, p.Spec.Registry, "kind: Registry, with spec.url of the destination")
	if err != nil {
		return replication.PushPolicy{}, err
	}
	reg := ref.spec
	key := []string{strconv.FormatInt(p.Generation, 10), strconv.FormatInt(ref.gen, 10)}
	dest := replication.Destination{URL: reg.URL, HTTP: ref.http}
	if c := reg.Credentials; c != nil && c.Type != "none" {
		switch c.Type {
		case "basic":
			user, pass, sum, err := basicCredentials(ctx, res, p.Spec.Registry, c)
			if err != nil {
				return replication.PushPolicy{}, err
			}
			dest.Username, dest.Password = string(user), string(pass)
			key = append(key, sum)
		case "token":
			secret := resource.SecretRef{Name: c.SecretRef.Name, Key: "token"}
			if c.SecretRef.Key != "" {
				secret.Key = c.SecretRef.Key
			}
			tok, err := res.Resolve(ctx, secret)
			if err != nil {
				return replication.PushPolicy{}, fmt.Errorf("registry resource %q credentials: %w", p.Spec.Registry, err)
			}
			dest.Token = strings.TrimSpace(string(tok))
			key = append(key, digest.FromBytes(tok).String())
		default:
			return replication.PushPolicy{}, fmt.Errorf("registry resource %q: credentials of type %s are not supported by push policies yet; use basic or token", p.Spec.Registry, c.Type)
		}
	}
	spec := p.Spec
	pol := replication.PushPolicy{
		Name: p.Name, Registry: spec.Registry, Key: strings.Join(key, "/"), Trigger: spec.Trigger,
		Covers: spec.Covers, Destination: spec.Destination, WantsTag: spec.WantsTag,
		Deletion: spec.Deletion, Bandwidth: spec.Bandwidth, Dest: dest,
	}
	if spec.Trigger == "schedule" {
		if pol.Schedule, err = resource.ParseSchedule(spec.Schedule); err != nil {
			return replication.PushPolicy{}, fmt.Errorf("spec.schedule: %w", err)
		}
	}
	return pol, nil
}

// pushView is this node's state as a push policy reads it.
type pushView struct{ localView }

func (p pushView) Index() uint64 { return p.v.Index() }

func (p pushView) Repositories() []string {
	var out []string
	last := ""
	for {
		page, more := p.v.Repositories(last, 1000)
		out = append(out, page...)
		if !more || len(page) == 0 {
			return out
		}
		last = page[len(page)-1]
	}
}

func (p pushView) Manifest(repo string, d digest.Digest) (replication.LocalManifest, bool) {
	m, ok := p.v.Manifest(repo, d)
	if !ok {
		return replication.LocalManifest{}, false
	}
	return replication.LocalManifest{MediaType: m.MediaType, Size: m.Size, Subject: m.Subject, Blobs: m.Blobs, Manifests: m.Manifests}, true
}

func (p pushView) Referrers(repo string, d digest.Digest) []digest.Digest {
	var out []digest.Digest
	q := fsm.ReferrersQuery{}
	for {
		page, next := p.v.Referrers(repo, d, q)
		for _, m := range page {
			out = append(out, m.Digest)
		}
		if next == "" {
			return out
		}
		q.After = next
	}
}

func (p pushView) Job(policy string) (replication.PushJob, bool) {
	j, ok := p.v.PushJob(policy)
	if !ok {
		return replication.PushJob{}, false
	}
	return replication.PushJob{Name: j.Job, Done: j.Done, Artifacts: j.Artifacts, Bytes: j.Bytes, LastError: j.LastError, Finished: j.Finished}, true
}

func (p pushView) Copied(policy, job, repo string, d digest.Digest) bool {
	return p.v.PushCopied(policy, job, repo, d.String())
}

// pushStatus is the leader's view of every push policy; on a follower,
// the committed jobs and cursors.
func (n *Node) pushStatus(ctx context.Context) []replication.Status {
	n.repl.mu.Lock()
	mg := n.repl.push
	n.repl.mu.Unlock()
	var out []replication.Status
	seen := map[string]bool{}
	if mg != nil {
		out = mg.Status()
		for _, st := range out {
			seen[st.Policy] = true
		}
	}
	v := n.fsm.View()
	policies, problems := pushPolicies(ctx, v, n.repl.secrets)
	pv := pushView{localView{v}}
	for _, p := range policies {
		if seen[p.Name] {
			continue
		}
		st := replication.Status{Policy: p.Name, Registry: p.Registry, Mode: "push"}
		if c, ok := pv.Cursor(p.Name); ok {
			st.Cursor, st.Seq = c.Index, c.Seq
		}
		if j, ok := pv.Job(p.Name); ok {
			st.Job, st.JobArtifacts, st.JobBytes, st.JobFinished = j.Name, j.Artifacts, j.Bytes, j.Finished
			st.JobState = map[bool]string{true: "done", false: "interrupted"}[j.Done]
		}
		out = append(out, st)
	}
	for name, st := range problems {
		if !seen[name] {
			out = append(out, st)
		}
	}
	return out
}
