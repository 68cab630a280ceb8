package auth

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/hkdf"
)

// The sealed format, version 1:
//
//	"BSL" 0x01 | salt (32 bytes) | nonce (12 bytes) | AES-256-GCM ciphertext and tag
//
// The AES key is HKDF-SHA256 of the cluster secret with the salt and
// sealInfo; the magic, version and salt are the GCM additional data, so
// none of them can be changed without Open noticing. A fresh salt per
// seal gives a fresh key, so nonces never repeat under one key.
const (
	sealVersion1 = 1
	sealSaltSize = 32
	sealInfo     = "berth auth seal v1"
	// MinSecretSize is the shortest cluster secret Seal accepts.
	MinSecretSize = 16
	// maxSealed bounds what Open reads (a sealed signing key is ~150 bytes).
	maxSealed = 64 << 10
)

var sealMagic = [3]byte{'B', 'S', 'L'}

// ErrSealedCorrupt is returned by Open for data that is not a sealed
// value, was sealed under another secret, or was changed.
var ErrSealedCorrupt = errors.New("sealed data cannot be opened: wrong cluster secret, or damaged")

// Seal encrypts plaintext (a PKCS #8 signing key, say) under a key
// derived from the cluster secret, so it can travel through the log and
// sit in snapshots and backups while only nodes that hold the secret can
// read it.
func Seal(secret, plaintext []byte) ([]byte, error) {
	return sealWith(rand.Reader, secret, plaintext)
}

func sealWith(rnd io.Reader, secret, plaintext []byte) ([]byte, error) {
	if len(secret) < MinSecretSize {
		return nil, fmt.Errorf("seal: the cluster secret is %d bytes, at least %d needed", len(secret), MinSecretSize)
	}
	if len(plaintext) > maxSealed/2 {
		return nil, fmt.Errorf("seal: %d bytes is more than a key", len(plaintext))
	}
	header := make([]byte, 4+sealSaltSize)
	copy(header, sealMagic[:])
	header[3] = sealVersion1
	if _, err := io.ReadFull(rnd, header[4:]); err != nil {
		return nil, fmt.Errorf("seal: salt: %w", err)
	}
	aead, err := sealAEAD(secret, header[4:])
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(rnd, nonce); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	out := append(bytes.Clone(header), nonce...)
	return aead.Seal(out, nonce, plaintext, header), nil
}

// Open decrypts what Seal produced under the same cluster secret.
func Open(secret, sealed []byte) ([]byte, error) {
	if len(sealed) > maxSealed {
		return nil, fmt.Errorf("open: %d bytes, at most %d", len(sealed), maxSealed)
	}
	if len(sealed) < 4 || !bytes.Equal(sealed[:3], sealMagic[:]) {
		return nil, fmt.Errorf("open: not a sealed value: %w", ErrSealedCorrupt)
	}
	if sealed[3] != sealVersion1 {
		return nil, fmt.Errorf("open: sealed format version %d, this Berth reads version %d; upgrade it", sealed[3], sealVersion1)
	}
	const headerSize = 4 + sealSaltSize
	if len(sealed) < headerSize+12+16 {
		return nil, fmt.Errorf("open: truncated: %w", ErrSealedCorrupt)
	}
	if len(secret) < MinSecretSize {
		return nil, fmt.Errorf("open: the cluster secret is %d bytes, at least %d needed", len(secret), MinSecretSize)
	}
	header := sealed[:headerSize]
	aead, err := sealAEAD(secret, header[4:])
	if err != nil {
		return nil, err
	}
	nonce := sealed[headerSize : headerSize+aead.NonceSize()]
	plain, err := aead.Open(nil, nonce, sealed[headerSize+aead.NonceSize():], header)
	if err != nil {
		return nil, fmt.Errorf("open: %w", ErrSealedCorrupt)
	}
	return plain, nil
}

func sealAEAD(secret, salt []byte) (cipher.AEAD, error) {
	key := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(sha256.New, secret, salt, []byte(sealInfo)), key); err != nil {
		return nil, fmt.Errorf("seal: derive key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return cipher.NewGCM(block)
}

// SealSigningKey seals a signing key (PKCS #8) under the cluster secret:
// the form in which a key may go into an event, a snapshot or a file.
func SealSigningKey(secret []byte, k *SigningKey) ([]byte, error) {
	der, err := k.MarshalPKCS8()
	if err != nil {
		return nil, fmt.Errorf("seal signing key: %w", err)
	}
	return Seal(secret, der)
}

// OpenSigningKey opens what SealSigningKey produced.
func OpenSigningKey(secret, sealed []byte) (*SigningKey, error) {
	der, err := Open(secret, sealed)
	if err != nil {
		return nil, err
	}
	return ParseSigningKey(der)
}
