package api

import (
	"container/list"
	"sync"

	"github.com/opencontainers/go-digest"
)

// manifestCache keeps hot manifest bytes on this node. It is keyed by
// digest, and content-addressed bytes never change, so it needs no
// invalidation: a deleted manifest is simply not resolved any more.
type manifestCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	ll    *list.List
	items map[digest.Digest]*list.Element
}

type cacheEntry struct {
	d digest.Digest
	b []byte
}

func newManifestCache(max int64) *manifestCache {
	return &manifestCache{max: max, ll: list.New(), items: map[digest.Digest]*list.Element{}}
}

func (c *manifestCache) get(d digest.Digest) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[d]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*cacheEntry).b, true
	}
	return nil, false
}

func (c *manifestCache) put(d digest.Digest, b []byte) {
	if int64(len(b)) > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[d]; ok {
		c.ll.MoveToFront(e)
		return
	}
	c.items[d] = c.ll.PushFront(&cacheEntry{d: d, b: b})
	c.size += int64(len(b))
	for c.size > c.max {
		e := c.ll.Back()
		ent := e.Value.(*cacheEntry)
		c.ll.Remove(e)
		delete(c.items, ent.d)
		c.size -= int64(len(ent.b))
	}
}
