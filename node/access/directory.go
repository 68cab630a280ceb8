package access

import (
	"bytes"
	"sync"

	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/fsm/resource"
)

// directory reads namespaces, users and robots from one view, as
// auth.ViewDirectory does, but decodes each stored document only once.
//
// The gate decides every /v2/ request from the live state: the caller's
// User (or Robot) and the repository's Namespace. Decoding and
// re-validating those JSON documents on each request cost a manifest HEAD
// a third of its CPU (BENCHMARKS.md, 2026-11-30 auth on against off). The
// cache keeps the decoded spec beside a copy of the exact document it
// came from and uses it only while the view still holds byte-for-byte
// that document, so a changed, deleted or re-created resource is decoded
// afresh on the very next request: decisions stay those of the view.
type directory struct {
	view  *fsm.View
	cache *specCache
}

// specCache maps kind and name to the last decoded document. Bounded:
// when full it is emptied, which costs only decoding again.
type specCache struct {
	mu  sync.Mutex
	m   map[specKey]decodedSpec
	max int
}

type specKey struct{ kind, name string }

type decodedSpec struct {
	doc  []byte
	spec any // resource.NamespaceSpec, UserSpec or RobotSpec; shared, never modified
}

// maxCachedSpecs bounds the cache: far more namespaces and accounts than
// a cluster is expected to hold, and a few MiB at most.
const maxCachedSpecs = 16384

func (c *specCache) init() {
	c.m = map[specKey]decodedSpec{}
	c.max = maxCachedSpecs
}

func (c *specCache) get(k specKey, doc []byte) (any, bool) {
	c.mu.Lock()
	d, ok := c.m[k]
	c.mu.Unlock()
	if !ok || !bytes.Equal(d.doc, doc) {
		return nil, false
	}
	return d.spec, true
}

func (c *specCache) put(k specKey, doc []byte, spec any) {
	d := decodedSpec{doc: bytes.Clone(doc), spec: spec}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[k] = d
}

// lookup returns the decoded spec of kind/name in d's view: ok is false
// when there is none, or (with err) when the stored document no longer
// decodes, as auth.ViewDirectory answers.
func lookup[T any](d directory, kind, name string, decode func([]byte) (T, error)) (T, bool, error) {
	var zero T
	r, ok := d.view.Resource(kind, name)
	if !ok {
		return zero, false, nil
	}
	k := specKey{kind, name}
	if s, ok := d.cache.get(k, r.Document); ok {
		return s.(T), true, nil
	}
	spec, err := decode(r.Document)
	if err != nil {
		return zero, false, err
	}
	d.cache.put(k, r.Document, spec)
	return spec, true, nil
}

// Namespace implements auth.Namespaces.
func (d directory) Namespace(name string) (resource.NamespaceSpec, bool, error) {
	return lookup(d, "Namespace", name, func(doc []byte) (resource.NamespaceSpec, error) {
		ns, err := resource.DecodeNamespace(doc)
		return ns.Spec, err
	})
}

// User implements auth.Accounts.
func (d directory) User(name string) (resource.UserSpec, bool, error) {
	return lookup(d, "User", name, func(doc []byte) (resource.UserSpec, error) {
		u, err := resource.DecodeUser(doc)
		return u.Spec, err
	})
}

// Robot implements auth.Accounts.
func (d directory) Robot(name string) (resource.RobotSpec, bool, error) {
	return lookup(d, "Robot", name, func(doc []byte) (resource.RobotSpec, error) {
		rb, err := resource.DecodeRobot(doc)
		return rb.Spec, err
	})
}

// dir is the directory of view v, sharing this node's cache.
func (s *Server) dir(v *fsm.View) directory { return directory{view: v, cache: &s.specs} }
