package access

import (
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"sync"
	"time"

	"github.com/berth-registry/berth/auth"
	"github.com/berth-registry/berth/events"
	"github.com/berth-registry/berth/fsm"
)

// keyring turns the signing keys in the state into the key new tokens are
// signed with and the set tokens are verified against. It rebuilds only
// when the newest key changes, and opens each sealed key once.
type keyring struct {
	secret []byte

	mu     sync.Mutex
	newest uint64 // index of the newest key the ring was built from
	signer *auth.SigningKey
	set    *auth.KeySet
	opened map[string]*auth.SigningKey
}

// ErrNoKey means no signing key was committed yet: the leader makes one
// as soon as it leads, so it is worth a retry.
var ErrNoKey = fmt.Errorf("no token signing key yet: the cluster leader creates one when it starts leading; retry in a few seconds")

// at returns the signing key and the verifying key set of the view's
// state. A key stops verifying MaxTokenTTL plus the leeway after the key
// that replaced it was created: by then every token it signed expired.
func (k *keyring) at(v *fsm.View) (*auth.SigningKey, *auth.KeySet, error) {
	rows := v.SigningKeys()
	if len(rows) == 0 {
		return nil, nil, ErrNoKey
	}
	last := rows[len(rows)-1]
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.set != nil && k.newest == last.Index {
		return k.signer, k.set, nil
	}
	if k.opened == nil {
		k.opened = map[string]*auth.SigningKey{}
	}
	pubs := make([]auth.PublicKey, 0, len(rows))
	for i, r := range rows {
		raw, err := x509.ParsePKIXPublicKey(r.Public)
		if err != nil {
			return nil, nil, fmt.Errorf("signing key %s: public key: %w", r.ID, err)
		}
		pk, err := auth.NewPublicKey(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("signing key %s: %w", r.ID, err)
		}
		if pk.ID != r.ID {
			return nil, nil, fmt.Errorf("signing key %s: its public key's ID is %s", r.ID, pk.ID)
		}
		if i+1 < len(rows) {
			pk.NotAfter = rows[i+1].Created.Add(auth.MaxTokenTTL + auth.Leeway)
		}
		pubs = append(pubs, pk)
	}
	set, err := auth.NewKeySet(pubs...)
	if err != nil {
		return nil, nil, err
	}
	signer, ok := k.opened[last.ID]
	if !ok {
		if signer, err = auth.OpenSigningKey(k.secret, last.Sealed); err != nil {
			return nil, nil, fmt.Errorf("open signing key %s: %w (do all nodes share cluster.secret?)", last.ID, err)
		}
		if signer.ID != last.ID {
			return nil, nil, fmt.Errorf("signing key %s: sealed key's ID is %s", last.ID, signer.ID)
		}
		k.opened = map[string]*auth.SigningKey{last.ID: signer}
	}
	k.newest, k.signer, k.set = last.Index, signer, set
	return signer, set, nil
}

// NewKey makes a signing key and the event that adds it, the private key
// sealed under secret. The leader calls it when there is no key yet or
// the newest is older than the rotation period.
func NewKey(alg string, secret []byte, now time.Time) (events.SigningKeyAdded, error) {
	key, err := auth.GenerateSigningKey(alg, rand.Reader)
	if err != nil {
		return events.SigningKeyAdded{}, err
	}
	public, err := x509.MarshalPKIXPublicKey(key.PublicKey().Key)
	if err != nil {
		return events.SigningKeyAdded{}, fmt.Errorf("marshal public key: %w", err)
	}
	sealed, err := auth.SealSigningKey(secret, key)
	if err != nil {
		return events.SigningKeyAdded{}, err
	}
	return events.SigningKeyAdded{ID: key.ID, Alg: key.Alg, Public: public, Sealed: sealed, Created: now.UTC()}, nil
}
