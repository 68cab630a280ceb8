package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/fsm/resource"
	"github.com/berth-registry/berth/node/api"
	"github.com/berth-registry/berth/node/secrets"
	"github.com/berth-registry/berth/replication"
)

// reconcileReplicationEvery is how often the leader re-reads the mirror
// policies (and the secrets they name) when nothing else woke it.
const reconcileReplicationEvery = 5 * time.Second

// nodeReplication holds the leader's replication manager of the current
// term, nil on a follower.
type nodeReplication struct {
	// secrets resolves the policies' secretRefs; set once in New.
	secrets *secrets.Resolver

	mu  sync.Mutex
	cur *replication.Manager
	// push runs the push policies of the term (replication_push.go).
	push *replication.PushManager

	// owners is what mirroredRepo decoded, read without a lock on every
	// write request.
	owners atomic.Pointer[repoOwners]
}

// repoOwners is the enabled, read-only mirror and proxy policies, decoded
// once per change to the ReplicationPolicies rather than per write.
type repoOwners struct {
	key      string // resourcesKey of the ReplicationPolicies
	policies []resource.ReplicationPolicy
}

// startReplication runs the mirror policies for a leader term; the
// returned function waits for them to stop. The mirrors' writes are
// fenced by the term (rule 9).
func (n *Node) startReplication(ctx context.Context, term uint64) func() {
	fence := n.termFence(ctx, term)
	mg := replication.NewManager(replication.Target{
		View: func() replication.Local { return localView{n.fsm.View()} },
		Propose: func(ctx context.Context, p events.Payload) error {
			_, err := n.Propose(ctx, p)
			return err
		},
		Blobs:     n.blobs,
		Parse:     api.ParseManifest,
		LinkSince: n.LinkSince,
		Fence:     fence,
	}, n.logger.With("component", "replication"))
	n.repl.mu.Lock()
	n.repl.cur = mg
	n.repl.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.reconcileLoop(ctx, func() {
			policies, problems := mirrorPolicies(ctx, n.fsm.View(), n.repl.secrets)
			mg.Reconcile(ctx, policies, problems)
		})
		mg.Stop()
	}()
	return func() {
		<-done
		n.repl.mu.Lock()
		if n.repl.cur == mg {
			n.repl.cur = nil
		}
		n.repl.mu.Unlock()
	}
}

// termFence fails once ctx ends or this node no longer leads term: a
// leader job checks it before each write (rule 9).
func (n *Node) termFence(ctx context.Context, term uint64) func() error {
	return func() error {
		if ctx.Err() != nil || !n.engine.IsLeader() || n.engine.Term() != term {
			return errors.New("no longer the leader of this term")
		}
		return nil
	}
}

// reconcileLoop calls reconcile at once, then after applied changes and
// every reconcileReplicationEvery (policies name secrets, which change
// outside the log), until ctx ends. Every applied entry wakes it, so after
// a change it waits a second: a busy log does not re-read the policies per
// entry.
func (n *Node) reconcileLoop(ctx context.Context, reconcile func()) {
	t := time.NewTicker(reconcileReplicationEvery)
	defer t.Stop()
	for {
		changed := n.fsm.Changed()
		reconcile()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changed:
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// mirrorPolicies resolves every enabled mirror ReplicationPolicy at v:
// those that can run, and those that cannot with the reason, for
// `clusterctl replication status`.
func mirrorPolicies(ctx context.Context, v *fsm.View, res *secrets.Resolver) ([]replication.Policy, map[string]replication.Status) {
	var out []replication.Policy
	problems := map[string]replication.Status{}
	for _, r := range v.Resources("ReplicationPolicy") {
		p, err := resource.DecodeReplicationPolicy(r.Document)
		if err != nil || p.Spec.Mode != "mirror" || !p.Spec.Enabled {
			continue
		}
		pol, err := resolveMirror(ctx, v, res, p)
		if err != nil {
			problems[p.Name] = replication.Status{Policy: p.Name, Registry: p.Spec.Registry, LastError: err.Error()}
			if c, ok := v.MirrorCursor(p.Name); ok {
				st := problems[p.Name]
				st.Cursor, st.Seq = c.Index, c.Seq
				problems[p.Name] = st
			}
			continue
		}
		out = append(out, pol)
	}
	return out, problems
}

func resolveMirror(ctx context.Context, v *fsm.View, res *secrets.Resolver, p resource.ReplicationPolicy) (replication.Policy, error) {
	ref, err := resolveRegistry(v, p.Spec.Registry, "kind: Registry, type: berth, with spec.events")
	if err != nil {
		return replication.Policy{}, err
	}
	reg := ref.spec
	switch {
	case reg.Type != "berth":
		return replication.Policy{}, fmt.Errorf("registry resource %q is of type %s: a mirror follows a Berth origin (type: berth)", p.Spec.Registry, reg.Type)
	case reg.Events == nil:
		return replication.Policy{}, fmt.Errorf("registry resource %q has no spec.events: name the origin's NATS (urls, stream, credentials) for the mirror to follow", p.Spec.Registry)
	}
	key := []string{strconv.FormatInt(p.Generation, 10), strconv.FormatInt(ref.gen, 10)}
	origin := replication.Origin{URL: reg.URL, NATSURLs: reg.Events.URLs, Stream: reg.Events.Stream, HTTP: ref.http}
	if c := reg.Credentials; c != nil && c.Type != "none" {
		if c.Type != "basic" {
			return replication.Policy{}, fmt.Errorf("registry resource %q: credentials of type %s are not supported by mirrors yet; use basic", p.Spec.Registry, c.Type)
		}
		user, pass, sum, err := basicCredentials(ctx, res, p.Spec.Registry, c)
		if err != nil {
			return replication.Policy{}, err
		}
		origin.Username, origin.Password = string(user), string(pass)
		key = append(key, sum)
	}
	if c := reg.Events.Credentials; c != nil {
		ref := *c.SecretRef
		if ref.Key == "" {
			ref.Key = c.Type
		}
		val, err := res.Resolve(ctx, ref)
		if err != nil {
			return replication.Policy{}, fmt.Errorf("registry resource %q spec.events.credentials: %w", p.Spec.Registry, err)
		}
		key = append(key, digest.FromBytes(val).String())
		switch c.Type {
		case "token":
			origin.NATSOption = append(origin.NATSOption, nats.Token(string(val)))
		default:
			jwt, err := nkeys.ParseDecoratedJWT(val)
			if err != nil {
				return replication.Policy{}, fmt.Errorf("registry resource %q spec.events.credentials: not a NATS creds file: %w", p.Spec.Registry, err)
			}
			kp, err := nkeys.ParseDecoratedNKey(val)
			if err != nil {
				return replication.Policy{}, fmt.Errorf("registry resource %q spec.events.credentials: not a NATS creds file: %w", p.Spec.Registry, err)
			}
			seed, err := kp.Seed()
			if err != nil {
				return replication.Policy{}, fmt.Errorf("registry resource %q spec.events.credentials: %w", p.Spec.Registry, err)
			}
			origin.NATSOption = append(origin.NATSOption, nats.UserJWTAndSeed(jwt, string(seed)))
		}
	}
	spec := p.Spec
	return replication.Policy{
		Name: p.Name, Registry: spec.Registry, Key: strings.Join(key, "/"),
		Covers: spec.Covers, Destination: spec.Destination, WantsTag: spec.WantsTag,
		Deletion: spec.Deletion, Bandwidth: spec.Bandwidth, Origin: origin,
	}, nil
}

// registryHTTPClient is an HTTP client for a Registry's TLS settings.
func registryHTTPClient(reg resource.RegistrySpec) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if t := reg.TLS; t != nil {
		cfg := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // the operator's explicit choice, for testing
		pem := []byte(t.CABundle)
		if t.CAFile != "" {
			b, err := os.ReadFile(t.CAFile)
			if err != nil {
				return nil, fmt.Errorf("spec.tls.caFile: %w", err)
			}
			pem = b
		}
		if len(pem) > 0 {
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, errors.New("spec.tls: no certificate in the CA bundle")
			}
			cfg.RootCAs = pool
		}
		tr.TLSClientConfig = cfg
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Minute}, nil
}

// localView is the mirror's read of this node's state.
type localView struct{ v *fsm.View }

func (l localView) Cursor(policy string) (replication.Cursor, bool) {
	c, ok := l.v.MirrorCursor(policy)
	return replication.Cursor{Index: c.Index, Seq: c.Seq}, ok
}
func (l localView) RepositoryExists(repo string) bool { return l.v.RepositoryExists(repo) }
func (l localView) Manifest(repo string, d digest.Digest) bool {
	_, ok := l.v.Manifest(repo, d)
	return ok
}
func (l localView) BlobLinked(repo string, d digest.Digest) bool {
	_, ok := l.v.BlobLink(repo, d)
	return ok
}
func (l localView) Tag(repo, tag string) (digest.Digest, bool) { return l.v.Tag(repo, tag) }
func (l localView) Tags(repo string) []string {
	var out []string
	last := ""
	for {
		page, more := l.v.Tags(repo, last, 1000)
		out = append(out, page...)
		if !more || len(page) == 0 {
			return out
		}
		last = page[len(page)-1]
	}
}
func (l localView) ReadOnly() bool { return l.v.ReadOnly().On }

// mirroredRepo names the enabled mirror or proxy policy that owns repo in
// this node's state, for the OCI API's refusal of writes to it: a proxy's
// cache holds what its upstream holds, as a mirror holds its origin's.
func (n *Node) mirroredRepo(repo string) (policy, mode string, ok bool) {
	for _, p := range n.repoOwners().policies {
		if _, ok := p.Spec.Source(repo); ok {
			return p.Name, p.Spec.Mode, true
		}
	}
	return "", "", false
}

// resourcesKey names the current version of every resource of the kinds,
// for caches of what was decoded from them: name, generation and update
// time, since a resource deleted and re-created starts again at
// generation 1.
func resourcesKey(v *fsm.View, kinds ...string) string {
	var b strings.Builder
	for _, kind := range kinds {
		for _, r := range v.Resources(kind) {
			fmt.Fprintf(&b, "%s/%s/%d/%d,", kind, r.Name, r.Generation, r.Updated.UnixNano())
		}
	}
	return b.String()
}

// repoOwners decodes the policies again only when one changed.
func (n *Node) repoOwners() *repoOwners {
	v := n.fsm.View()
	key := resourcesKey(v, "ReplicationPolicy")
	if o := n.repl.owners.Load(); o != nil && o.key == key {
		return o
	}
	o := &repoOwners{key: key}
	for _, r := range v.Resources("ReplicationPolicy") {
		p, err := resource.DecodeReplicationPolicy(r.Document)
		if err != nil || (p.Spec.Mode != "mirror" && p.Spec.Mode != "proxy") || !p.Spec.Enabled || p.Spec.Writable {
			continue
		}
		o.policies = append(o.policies, p)
	}
	n.repl.owners.Store(o)
	return o
}

// replicationStatus is the leader's view of every mirror policy; on a
// follower, only the committed cursors. Policies the manager has not
// picked up yet (applied a moment ago) are shown from the local state, so
// a policy's problem shows right after `clusterctl apply`.
func (n *Node) replicationStatus(ctx context.Context) []replication.Status {
	n.repl.mu.Lock()
	mg := n.repl.cur
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
	policies, problems := mirrorPolicies(ctx, v, n.repl.secrets)
	for _, p := range policies {
		if seen[p.Name] {
			continue
		}
		st := replication.Status{Policy: p.Name, Registry: p.Registry}
		if c, ok := v.MirrorCursor(p.Name); ok {
			st.Cursor, st.Seq = c.Index, c.Seq
		}
		out = append(out, st)
	}
	for name, st := range problems {
		if !seen[name] {
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Policy < out[j].Policy })
	return out
}
