package auth

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	secret := []byte("cluster-secret-of-32-bytes-long!")
	key := newKey(t, AlgEdDSA)
	der, err := key.MarshalPKCS8()
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := Seal(secret, der)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, der[len(der)-32:]) {
		t.Fatal("the private key is visible in the sealed bytes")
	}
	if string(sealed[:4]) != "BSL\x01" {
		t.Errorf("sealed bytes start %q, want the magic and version 1", sealed[:4])
	}
	again, _ := Seal(secret, der)
	if bytes.Equal(sealed, again) {
		t.Error("two seals of one key are equal: salt and nonce are not fresh")
	}
	plain, err := Open(secret, sealed)
	if err != nil || !bytes.Equal(plain, der) {
		t.Fatalf("Open = %v", err)
	}
	if k, err := ParseSigningKey(plain); err != nil || k.ID != key.ID {
		t.Errorf("the opened key is not the sealed one: %v", err)
	}

	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		return b
	}
	for name, tt := range map[string]struct {
		secret, sealed []byte
		want           string
	}{
		"other secret":     {[]byte("another-cluster-secret-32-bytes!"), sealed, "wrong cluster secret"},
		"salt changed":     {secret, flip(10), "wrong cluster secret"},
		"nonce changed":    {secret, flip(40), "wrong cluster secret"},
		"ciphertext":       {secret, flip(len(sealed) - 20), "wrong cluster secret"},
		"tag":              {secret, flip(len(sealed) - 1), "wrong cluster secret"},
		"truncated":        {secret, sealed[:40], "truncated"},
		"not sealed":       {secret, der, "not a sealed value"},
		"future version":   {secret, append([]byte("BSL\x02"), sealed[4:]...), "version 2"},
		"short secret":     {[]byte("short"), sealed, "at least 16"},
		"empty":            {secret, nil, "not a sealed value"},
		"oversized sealed": {secret, append(bytes.Clone(sealed), make([]byte, maxSealed)...), "at most"},
	} {
		_, err := Open(tt.secret, tt.sealed)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", name, err, tt.want)
		}
		if strings.Contains(tt.want, "wrong cluster secret") && !errors.Is(err, ErrSealedCorrupt) {
			t.Errorf("%s: %v is not ErrSealedCorrupt", name, err)
		}
	}
	if _, err := Seal([]byte("short"), der); err == nil {
		t.Error("sealed under a 5-byte secret")
	}
	if _, err := sealWith(bytes.NewReader(nil), secret, der); err == nil {
		t.Error("sealed without randomness")
	}
	_ = rand.Reader
}

func TestSealSigningKey(t *testing.T) {
	secret := []byte("cluster-secret-of-32-bytes-long!")
	for _, alg := range []string{AlgEdDSA, AlgES256} {
		k := newKey(t, alg)
		sealed, err := SealSigningKey(secret, k)
		if err != nil {
			t.Fatal(err)
		}
		back, err := OpenSigningKey(secret, sealed)
		if err != nil || back.ID != k.ID || back.Alg != alg {
			t.Fatalf("%s: opened %+v, %v", alg, back, err)
		}
		// Another node opening the sealed key signs tokens this one verifies.
		if _, err := verifier(t0, Trust{Issuer: "berth", Keys: keySet(t, k.PublicKey())}).Verify(issue(t, back, t0, pullA)); err != nil {
			t.Errorf("%s: token of the opened key: %v", alg, err)
		}
		if _, err := OpenSigningKey([]byte("another-cluster-secret-32-bytes!"), sealed); !errors.Is(err, ErrSealedCorrupt) {
			t.Errorf("%s: opened under another secret: %v", alg, err)
		}
	}
}
