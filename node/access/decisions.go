package access

import (
	"sync"
	"time"

	"github.com/berth-registry/berth/auth"
	"github.com/berth-registry/berth/node/api"
)

// decisionCache remembers which bearer tokens were allowed which need, at
// which authorization epoch (fsm.View.AuthEpoch: the index of the last
// change to a Namespace, User or Robot). A hit requires the same token,
// the same need and the same epoch, and a token not yet expired, so it
// answers exactly as deciding again would; any change to membership,
// accounts or robots moves the epoch and every entry misses. Only allowed
// decisions are kept: refusals are rare and must say why. Bounded: when
// full it is emptied.
type decisionCache struct {
	mu  sync.Mutex
	m   map[decisionKey]decision
	max int
}

type decisionKey struct {
	token  string
	repo   string
	action string
	cat    bool
}

type decision struct {
	epoch   uint64
	expires time.Time
	actor   string
}

const maxCachedDecisions = 16384

func (c *decisionCache) init() {
	c.m = map[decisionKey]decision{}
	c.max = maxCachedDecisions
}

func key(token string, n api.Need) decisionKey {
	return decisionKey{token: token, repo: n.Repository, action: n.Action, cat: n.Catalog}
}

func (c *decisionCache) allowed(token string, n api.Need, epoch uint64, now time.Time) (actor string, ok bool) {
	c.mu.Lock()
	d, hit := c.m[key(token, n)]
	c.mu.Unlock()
	if !hit || d.epoch != epoch || !now.Before(d.expires.Add(auth.Leeway)) {
		return "", false
	}
	return d.actor, true
}

func (c *decisionCache) remember(token string, n api.Need, epoch uint64, expires time.Time, actor string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[key(token, n)] = decision{epoch: epoch, expires: expires, actor: actor}
}
