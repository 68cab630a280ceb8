package fsm

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/berth-registry/berth/events"
)

// tSigningKey holds the token signing keys (events.SigningKeyAdded), the
// newest last.
const tSigningKey = "signingkey"

// signingKeysKept bounds the keys kept. Rotation is days apart and tokens
// live minutes, so the newest few cover every token still valid; the
// oldest is dropped when a new one comes.
const signingKeysKept = 4

// SigningKey is one token signing key as the log holds it: the public key
// in the clear and the private key sealed under the cluster secret.
type SigningKey struct {
	// Key orders the rows: the entry's index, zero-padded.
	Key     string
	Index   uint64
	ID      string
	Alg     string
	Public  []byte
	Sealed  []byte
	Created time.Time
}

func init() {
	schema.Tables[tSigningKey] = &memdb.TableSchema{Name: tSigningKey, Indexes: map[string]*memdb.IndexSchema{
		idx: {Name: idx, Unique: true, Indexer: str("Key")},
	}}
}

func signingKeyKey(index uint64) string { return fmt.Sprintf("%020d", index) }

func (w writer) signingKeyAdded(p events.SigningKeyAdded) error {
	if err := checkSigningKey(p.ID, p.Alg, p.Public, p.Sealed); err != nil {
		return refuse(CodeInvalid, "%v", err)
	}
	keys := w.all(tSigningKey)
	for _, o := range keys {
		if o.(*SigningKey).ID == p.ID {
			return refuse(CodeInvalid, "signing key %q was added already", p.ID)
		}
	}
	w.insert(tSigningKey, &SigningKey{
		Key: signingKeyKey(w.index), Index: w.index, ID: p.ID, Alg: p.Alg,
		Public: p.Public, Sealed: p.Sealed, Created: p.Created.UTC(),
	})
	for i := 0; i+signingKeysKept <= len(keys); i++ {
		w.delete(tSigningKey, keys[i])
	}
	return nil
}

func checkSigningKey(id, alg string, public, sealed []byte) error {
	switch {
	case id == "" || len(id) > 128:
		return fmt.Errorf("signing key ID %q: 1 to 128 bytes", id)
	case alg != "EdDSA" && alg != "ES256":
		return fmt.Errorf("signing key %s: algorithm %q, want EdDSA or ES256", id, alg)
	case len(public) == 0 || len(public) > 1024:
		return fmt.Errorf("signing key %s: public key of %d bytes", id, len(public))
	case len(sealed) == 0 || len(sealed) > 4096:
		return fmt.Errorf("signing key %s: sealed key of %d bytes", id, len(sealed))
	}
	return nil
}

func (l *loader) signingKey(k *SigningKey) ([]any, error) {
	if k.Key != signingKeyKey(k.Index) {
		return nil, fmt.Errorf("signing key row %q does not match its index %d", k.Key, k.Index)
	}
	if k.Index > l.index {
		return nil, fmt.Errorf("signing key at index %d is after the snapshot's index %d", k.Index, l.index)
	}
	return []any{k.Key}, checkSigningKey(k.ID, k.Alg, k.Public, k.Sealed)
}

// SigningKeys lists the kept signing keys, oldest first; the last signs
// new tokens.
func (v *View) SigningKeys() []SigningKey {
	var out []SigningKey
	v.each(tSigningKey, func(o any) bool { out = append(out, *o.(*SigningKey)); return true })
	return out
}
