package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/singleflight"

	"github.com/berth-registry/berth/blob"
	"github.com/berth-registry/berth/events"
)

// How a pull-through read works, and why (issue 12, proxy mode):
//
//   - Any node answers it, as any node answers a push: a miss in a
//     repository a proxy policy covers is fetched from the upstream,
//     verified by digest (manifests here, blobs by blob.Store.Put), stored
//     and committed through the log (BlobLinked, ManifestPut with its tag)
//     with the actor replication:<policy>, and only then served from the
//     local state like any pushed content. Cached content is ordinary
//     content: GC and retention treat it as they treat a push.
//   - Concurrent reads of the same thing on a node share one fetch
//     (singleflight), which runs detached from the first reader's request:
//     the others wait for it, and it is worth finishing for the cache even
//     if that reader gave up. Fetches per node are bounded.
//   - A cached tag is trusted for the policy's TTL on each node, then
//     revalidated with a HEAD at the upstream. An upstream that is down,
//     rate-limits or errs leaves the cached tag served (and trusted for
//     another TTL, so an outage does not cost every pull a timeout); a
//     tag that moved is fetched and moved here.
//   - A mirror's fallback: origin uses the same path without storing: the
//     mirror's content comes from its origin's stream alone, so that it
//     stays an exact copy, and a pull of something not replicated yet is
//     fetched, verified and served as is.

const (
	// fetchTimeout bounds one upstream fetch (a manifest and every blob it
	// references, or one blob).
	fetchTimeout = 30 * time.Minute
	// slotWait bounds how long a fetch waits for one of the node's
	// fetch slots before the read is answered UNAVAILABLE.
	slotWait = 30 * time.Second
	// revalidateTimeout bounds asking the upstream where a cached tag
	// points: a pull that has a cached answer does not wait long for a
	// slow upstream.
	revalidateTimeout = 10 * time.Second
	// maxClients bounds the upstream clients kept (one per policy and
	// upstream repository: a bearer token is scoped to a repository).
	maxClients = 1024
	// maxChecked bounds the tag revalidation times kept.
	maxChecked = 1 << 16
	// DefaultProxyFetches is ProxyConfig.MaxFetches when unset.
	DefaultProxyFetches = 16
)

// ProxyPolicy is one pull-through policy resolved by the node.
type ProxyPolicy struct {
	Name     string
	Registry string
	// Key changes whenever the upstream's address or credentials do, so
	// clients built for the old ones are dropped.
	Key string
	// Source names the upstream repository of a local one; ok false when
	// the policy does not cover it.
	Source   func(repo string) (string, bool)
	WantsTag func(tag string) bool
	// Store commits what is fetched (mode proxy). Without it, what is
	// fetched is served as is (a mirror's fallback: origin).
	Store bool
	// TTL is how long a cached tag is served before it is revalidated.
	TTL       time.Duration
	Bandwidth int64
	Upstream  Origin
}

// ProxyConfig bounds a node's pull-through work.
type ProxyConfig struct {
	// MaxManifest is the OCI API's manifest size limit: a proxy caches
	// nothing a push could not store.
	MaxManifest int64
	// MaxFetches bounds the upstream fetches running at once on this
	// node; default DefaultProxyFetches.
	MaxFetches int
}

// Pulled says how the OCI API answers a read once the proxy ran.
type Pulled struct {
	// Covered is set when a policy covers the repository.
	Covered bool
	// Committed is set when content was committed here: the local state
	// must be read again to answer.
	Committed bool
	// Manifest is a manifest fetched and verified but not stored (a
	// mirror's fallback), to serve as is, with its media type and digest.
	Manifest  []byte
	MediaType string
	Digest    digest.Digest
	// BlobStored is set when the blob's verified bytes are in the blob
	// store but linked to no repository (a mirror's fallback): serve them
	// from there.
	BlobStored bool
}

// Proxy serves reads of the repositories that pull-through policies cover,
// on one node.
type Proxy struct {
	target  Target
	logger  *slog.Logger
	cfg     ProxyConfig
	fetches chan struct{}
	flight  singleflight.Group

	// counters for the logs and metrics
	bytes     atomic.Int64
	artifacts atomic.Uint64

	mu       sync.Mutex
	policies []ProxyPolicy
	clients  map[string]*originClient // by policy key and upstream repository
	limits   map[string]*limiter      // by policy name: the bandwidth is per policy
	checked  map[string]time.Time     // when a cached tag was last revalidated
}

// NewProxy returns a proxy with no policies. target.Fence is ignored: a
// proxy writes from any node, as a push does.
func NewProxy(target Target, cfg ProxyConfig, logger *slog.Logger) *Proxy {
	if cfg.MaxFetches <= 0 {
		cfg.MaxFetches = DefaultProxyFetches
	}
	target.Fence = nil
	return &Proxy{
		target: target, logger: logger, cfg: cfg,
		fetches: make(chan struct{}, cfg.MaxFetches),
		clients: map[string]*originClient{}, limits: map[string]*limiter{}, checked: map[string]time.Time{},
	}
}

// SetPolicies replaces the policies. Clients of policies whose Key changed
// are dropped; tags cached before stay cached.
func (p *Proxy) SetPolicies(policies []ProxyPolicy) {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := map[string]bool{}
	limits := map[string]*limiter{}
	for _, pol := range policies {
		keys[pol.Key] = true
		if l, ok := p.limits[pol.Name]; ok && l != nil && l.rate == pol.Bandwidth {
			limits[pol.Name] = l
		} else {
			limits[pol.Name] = newLimiter(pol.Bandwidth)
		}
	}
	for k := range p.clients {
		if polKey, _, _ := strings.Cut(k, "\x00"); !keys[polKey] {
			delete(p.clients, k)
		}
	}
	p.policies, p.limits = policies, limits
}

// match finds the policy covering local repository repo and the upstream
// repository it stands for.
func (p *Proxy) match(repo string) (ProxyPolicy, string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pol := range p.policies {
		if src, ok := pol.Source(repo); ok {
			return pol, src, true
		}
	}
	return ProxyPolicy{}, "", false
}

// Manifest runs before the local state answers a manifest read of repo by
// tag or by digest d; found says whether the local state has it.
func (p *Proxy) Manifest(ctx context.Context, repo, tag string, d digest.Digest, found bool) (Pulled, error) {
	pol, src, ok := p.match(repo)
	if !ok {
		return Pulled{}, nil
	}
	out := Pulled{Covered: true}
	if tag != "" && !pol.WantsTag(tag) {
		return out, nil // the policy leaves this tag out: the local state answers
	}
	if found {
		if tag == "" || !pol.Store || p.fresh(pol, repo, tag) {
			return out, nil
		}
		moved, err := p.revalidate(ctx, pol, src, repo, tag)
		if err != nil {
			p.logger.Warn("serving a cached tag: the upstream could not revalidate it",
				"policy", pol.Name, "repo", repo, "tag", tag, "err", err)
		}
		out.Committed = moved
		return out, nil
	}
	ref := tag
	if ref == "" {
		ref = d.String()
	}
	res, err := p.do(ctx, "manifest\x00"+pol.Name+"\x00"+repo+"\x00"+ref, func(ctx context.Context) (Pulled, error) {
		return p.fetchManifest(ctx, pol, src, repo, tag, d)
	})
	if errors.Is(err, errGone) {
		return out, nil // not upstream either: the local state answers unknown
	}
	if err != nil {
		return out, fmt.Errorf("%s through ReplicationPolicy %q: %w", repo, pol.Name, err)
	}
	res.Covered = true
	return res, nil
}

// Blob runs when the local state lacks blob d in repo.
func (p *Proxy) Blob(ctx context.Context, repo string, d digest.Digest) (Pulled, error) {
	pol, src, ok := p.match(repo)
	if !ok {
		return Pulled{}, nil
	}
	res, err := p.do(ctx, "blob\x00"+pol.Name+"\x00"+repo+"\x00"+d.String(), func(ctx context.Context) (Pulled, error) {
		return p.fetchBlob(ctx, pol, src, repo, d)
	})
	if errors.Is(err, errGone) {
		return Pulled{Covered: true}, nil
	}
	if err != nil {
		return Pulled{Covered: true}, fmt.Errorf("%s through ReplicationPolicy %q: %w", repo, pol.Name, err)
	}
	res.Covered = true
	return res, nil
}

// do runs f once for every concurrent caller with the same key, in a
// fetch slot, detached from the caller's request.
func (p *Proxy) do(ctx context.Context, key string, f func(context.Context) (Pulled, error)) (Pulled, error) {
	ch := p.flight.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		defer cancel()
		wait := time.NewTimer(slotWait)
		defer wait.Stop()
		select {
		case p.fetches <- struct{}{}:
		case <-wait.C:
			return Pulled{}, fmt.Errorf("all %d upstream fetch slots of this node stayed busy for %s: retry", cap(p.fetches), slotWait)
		}
		defer func() { <-p.fetches }()
		return f(fctx)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return Pulled{}, r.Err
		}
		return r.Val.(Pulled), nil
	case <-ctx.Done():
		return Pulled{}, ctx.Err()
	}
}

// writeContext carries who commits: the policy, as for a mirror.
func writeContext(ctx context.Context, pol ProxyPolicy) context.Context {
	return events.WithOrigin(ctx, events.Origin{Actor: "replication:" + pol.Name, RequestID: "proxy"})
}

func (p *Proxy) copier(c *originClient) *copier {
	return &copier{origin: c, target: p.target, bytes: &p.bytes, artifacts: &p.artifacts}
}

// fetchManifest fetches a manifest by tag or digest, verifies it and
// stores it with everything it references, or returns it to serve.
func (p *Proxy) fetchManifest(ctx context.Context, pol ProxyPolicy, src, dst, tag string, d digest.Digest) (Pulled, error) {
	if pol.Store && p.cached(dst, tag, d) {
		// A fetch that ended between this reader's miss and its turn
		// brought it: read the local state again, do not fetch twice.
		return Pulled{Committed: true}, nil
	}
	c, err := p.client(ctx, pol, src)
	if err != nil {
		return Pulled{}, err
	}
	var (
		body []byte
		mt   string
	)
	if tag != "" {
		body, mt, err = c.manifestRef(ctx, src, tag)
		d = digest.FromBytes(body) // computed from the bytes, never taken from a header
	} else {
		body, mt, err = c.manifest(ctx, src, d)
	}
	if err != nil {
		return Pulled{}, err
	}
	put, err := p.target.Parse(mt, body)
	if err != nil {
		return Pulled{}, fmt.Errorf("manifest %s@%s from the upstream: %w", src, d, err)
	}
	if !pol.Store {
		return Pulled{Manifest: body, MediaType: put.MediaType, Digest: d}, nil
	}
	var tags []string
	if tag != "" {
		tags = []string{tag}
	}
	ctx = writeContext(ctx, pol)
	cp := p.copier(c)
	if p.target.View().Manifest(dst, d) {
		err = cp.tags(ctx, dst, d, tags) // cached by digest or under another tag
	} else {
		err = cp.store(ctx, src, dst, d, body, put, tags, 0)
	}
	if err != nil {
		return Pulled{}, err
	}
	if tag != "" {
		p.markChecked(pol, dst, tag)
	}
	p.logger.Info("cached from the upstream", "policy", pol.Name, "repo", dst, "ref", refString(tag, d), "digest", d)
	return Pulled{Committed: true}, nil
}

// cached reports whether the local state has the manifest a read names.
func (p *Proxy) cached(repo, tag string, d digest.Digest) bool {
	v := p.target.View()
	if tag != "" {
		_, ok := v.Tag(repo, tag)
		return ok
	}
	return v.Manifest(repo, d)
}

// fetchBlob brings one blob from the upstream.
func (p *Proxy) fetchBlob(ctx context.Context, pol ProxyPolicy, src, dst string, d digest.Digest) (Pulled, error) {
	c, err := p.client(ctx, pol, src)
	if err != nil {
		return Pulled{}, err
	}
	cp := p.copier(c)
	if pol.Store {
		if err := cp.blob(writeContext(ctx, pol), src, dst, d); err != nil {
			return Pulled{}, err
		}
		return Pulled{Committed: true}, nil
	}
	_, err = p.target.Blobs.Stat(ctx, d)
	if errors.Is(err, blob.ErrNotFound) {
		_, err = cp.fetchBlob(ctx, src, d, nil)
	}
	if err != nil {
		return Pulled{}, fmt.Errorf("blob %s of %s: %w", d, src, err)
	}
	return Pulled{BlobStored: true}, nil
}

// revalidate asks the upstream where tag points now and moves the cached
// tag if it moved; moved reports a commit.
func (p *Proxy) revalidate(ctx context.Context, pol ProxyPolicy, src, dst, tag string) (moved bool, err error) {
	res, err := p.do(ctx, "tag\x00"+pol.Name+"\x00"+dst+"\x00"+tag, func(ctx context.Context) (Pulled, error) {
		// Trusted for another TTL whatever the outcome: an upstream that
		// is down is not asked again on every pull.
		defer p.markChecked(pol, dst, tag)
		hctx, cancel := context.WithTimeout(ctx, revalidateTimeout)
		defer cancel()
		c, err := p.client(hctx, pol, src)
		if err != nil {
			return Pulled{}, err
		}
		d, err := c.head(hctx, src, tag)
		if err != nil {
			return Pulled{}, err
		}
		if cur, ok := p.target.View().Tag(dst, tag); ok && cur == d {
			return Pulled{}, nil
		}
		// Fetched by the digest the upstream named, and verified against it.
		if err := p.copier(c).manifest(writeContext(ctx, pol), src, dst, d, []string{tag}, 0); err != nil {
			return Pulled{}, err
		}
		p.logger.Info("cached tag moved upstream", "policy", pol.Name, "repo", dst, "tag", tag, "digest", d)
		return Pulled{Committed: true}, nil
	})
	return res.Committed, err
}

// fresh reports whether the cached tag was revalidated less than a TTL
// ago on this node.
func (p *Proxy) fresh(pol ProxyPolicy, repo, tag string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.checked[pol.Name+"\x00"+repo+"\x00"+tag]
	return ok && time.Since(at) < pol.TTL
}

func (p *Proxy) markChecked(pol ProxyPolicy, repo, tag string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.checked) >= maxChecked {
		// Forgetting a time only costs one early revalidation.
		for k := range p.checked {
			delete(p.checked, k)
			if len(p.checked) < maxChecked/2 {
				break
			}
		}
	}
	p.checked[pol.Name+"\x00"+repo+"\x00"+tag] = time.Now()
}

func refString(tag string, d digest.Digest) string {
	if tag != "" {
		return tag
	}
	return d.String()
}
