package node

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/fsm/resource"
	"github.com/berth-registry/berth/node/api"
	"github.com/berth-registry/berth/node/secrets"
	"github.com/berth-registry/berth/replication"
)

// reresolveProxyEvery is how often the pull-through policies are resolved
// again when no policy or Registry changed: secrets are files, and a
// rotated password shows within this time.
const reresolveProxyEvery = 10 * time.Second

// pullThrough wires replication.Proxy into the OCI API on every node: the
// proxy policies, and the fallback of mirror policies with fallback:
// origin. Policies are resolved again only when a ReplicationPolicy or
// Registry changed (their generations), or every reresolveProxyEvery, so
// a read costs a look at the generations, not a decode.
type pullThrough struct {
	n       *Node
	proxy   *replication.Proxy
	secrets *secrets.Resolver

	// seen is read without a lock on every manifest and blob read; mu
	// serializes the re-resolving that replaces it.
	seen     atomic.Pointer[proxySeen]
	mu       sync.Mutex
	problems map[string]string // policy name: why it cannot run, logged once
}

// proxySeen is what the policies were resolved from.
type proxySeen struct {
	index uint64 // the applied index key was computed at
	key   string // resourcesKey of the ReplicationPolicies and Registries
	at    time.Time
	any   bool // there is a policy to serve
}

func (n *Node) newPullThrough(maxManifest int64) *pullThrough {
	target := replication.Target{
		View: func() replication.Local { return localView{n.fsm.View()} },
		Propose: func(ctx context.Context, p events.Payload) error {
			_, err := n.Propose(ctx, p)
			return err
		},
		Blobs:     n.blobs,
		Parse:     api.ParseManifest,
		LinkSince: n.LinkSince,
	}
	return &pullThrough{
		n:       n,
		proxy:   replication.NewProxy(target, replication.ProxyConfig{MaxManifest: cmp.Or(maxManifest, 4<<20)}, n.logger.With("component", "proxy")),
		secrets: n.repl.secrets,
	}
}

func (pt *pullThrough) Manifest(ctx context.Context, repo, tag string, d digest.Digest, found bool) (api.Pulled, error) {
	if !pt.refresh(ctx) {
		return api.Pulled{}, nil
	}
	p, err := pt.proxy.Manifest(ctx, repo, tag, d, found)
	return apiPulled(p), err
}

func (pt *pullThrough) Blob(ctx context.Context, repo string, d digest.Digest) (api.Pulled, error) {
	if !pt.refresh(ctx) {
		return api.Pulled{}, nil
	}
	p, err := pt.proxy.Blob(ctx, repo, d)
	return apiPulled(p), err
}

func apiPulled(p replication.Pulled) api.Pulled {
	return api.Pulled{Committed: p.Committed, Manifest: p.Manifest, MediaType: p.MediaType, Digest: p.Digest, BlobStored: p.BlobStored}
}

// refresh brings the proxy's policies up to date with this node's state;
// it reports whether there are any.
func (pt *pullThrough) refresh(ctx context.Context) bool {
	// Reads far outnumber writes: while nothing was applied, not even the
	// generations need a look.
	index := pt.n.fsm.AppliedIndex()
	if seen := pt.seen.Load(); seen != nil && seen.index == index && time.Since(seen.at) < reresolveProxyEvery {
		return seen.any
	}
	pt.mu.Lock()
	defer pt.mu.Unlock()
	v := pt.n.fsm.View()
	key := resourcesKey(v, "ReplicationPolicy", "Registry")
	if seen := pt.seen.Load(); seen != nil && key == seen.key && time.Since(seen.at) < reresolveProxyEvery {
		pt.seen.Store(&proxySeen{index: index, key: key, at: seen.at, any: seen.any})
		return seen.any
	}
	policies, problems := proxyPolicies(ctx, v, pt.secrets)
	for name, msg := range problems {
		if pt.problems[name] != msg {
			pt.n.logger.Warn("pull-through policy cannot run", "policy", name, "err", msg)
		}
	}
	pt.proxy.SetPolicies(policies)
	pt.problems = problems
	seen := &proxySeen{index: index, key: key, at: time.Now(), any: len(policies) > 0}
	pt.seen.Store(seen)
	return seen.any
}

// proxyPolicies resolves every enabled proxy policy, and every enabled
// mirror policy with fallback: origin (which serves without storing).
func proxyPolicies(ctx context.Context, v *fsm.View, res *secrets.Resolver) ([]replication.ProxyPolicy, map[string]string) {
	var out []replication.ProxyPolicy
	problems := map[string]string{}
	for _, r := range v.Resources("ReplicationPolicy") {
		p, err := resource.DecodeReplicationPolicy(r.Document)
		if err != nil || !p.Spec.Enabled {
			continue
		}
		store := p.Spec.Mode == "proxy"
		if !store && (p.Spec.Mode != "mirror" || p.Spec.Fallback != "origin") {
			continue
		}
		pol, err := resolveProxy(ctx, v, res, p)
		if err != nil {
			problems[p.Name] = err.Error()
			continue
		}
		pol.Store = store
		out = append(out, pol)
	}
	return out, problems
}

func resolveProxy(ctx context.Context, v *fsm.View, res *secrets.Resolver, p resource.ReplicationPolicy) (replication.ProxyPolicy, error) {
	ref, err := resolveRegistry(v, p.Spec.Registry, "kind: Registry, with the upstream's url and credentials")
	if err != nil {
		return replication.ProxyPolicy{}, err
	}
	reg := ref.spec
	up := replication.Origin{URL: reg.URL, HTTP: ref.http}
	key := []string{p.Name, strconv.FormatInt(p.Generation, 10), strconv.FormatInt(ref.gen, 10)}
	if c := reg.Credentials; c != nil && c.Type != "none" {
		if c.Type != "basic" {
			return replication.ProxyPolicy{}, fmt.Errorf("registry resource %q: credentials of type %s are not supported for pulls yet; use basic (a username and password, which also obtain bearer tokens)", p.Spec.Registry, c.Type)
		}
		user, pass, sum, err := basicCredentials(ctx, res, p.Spec.Registry, c)
		if err != nil {
			return replication.ProxyPolicy{}, err
		}
		up.Username, up.Password = string(user), string(pass)
		key = append(key, sum)
	}
	spec := p.Spec
	return replication.ProxyPolicy{
		Name: p.Name, Registry: spec.Registry, Key: strings.Join(key, "/"),
		Source: spec.Source, WantsTag: spec.WantsTag,
		TTL: time.Duration(spec.TTL), Bandwidth: spec.Bandwidth, Upstream: up,
	}, nil
}

// proxyStatus lists every enabled proxy policy for `clusterctl
// replication status`: serving when this node resolved its upstream, or
// the reason it cannot (a missing Registry, an unreadable secret), so a
// mistake shows right after `clusterctl apply` rather than only in logs.
// Every node serves proxy policies; this is the answering node's view.
func (n *Node) proxyStatus(ctx context.Context) []replication.Status {
	v := n.fsm.View()
	var out []replication.Status
	for _, r := range v.Resources("ReplicationPolicy") {
		p, err := resource.DecodeReplicationPolicy(r.Document)
		if err != nil || !p.Spec.Enabled || p.Spec.Mode != "proxy" {
			continue
		}
		st := replication.Status{Policy: p.Name, Registry: p.Spec.Registry, Mode: "proxy", TTL: time.Duration(p.Spec.TTL).String()}
		if _, err := resolveProxy(ctx, v, n.repl.secrets, p); err != nil {
			st.LastError = err.Error()
		} else {
			st.Running = true
		}
		out = append(out, st)
	}
	return out
}
