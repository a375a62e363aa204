package oidcissuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"hash"

	jose "github.com/go-jose/go-jose/v4"
)

// keyPair is one published signing key: an RSA key (RS*/PS*) and an EC P-256
// key (ES256) are generated together, each with its own kid.
type keyPair struct {
	rsa    *rsa.PrivateKey
	rsaKID string
	ec     *ecdsa.PrivateKey
	ecKID  string
}

func newKeyPair(rsaBits int) (*keyPair, error) {
	r, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return nil, fmt.Errorf("generate RSA key: %w", err)
	}
	e, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate EC key: %w", err)
	}
	return &keyPair{rsa: r, rsaKID: "rsa-" + randomHex(8), ec: e, ecKID: "ec-" + randomHex(8)}, nil
}

// jwks returns the public halves of the pairs as a JSON Web Key Set.
func jwks(pairs []*keyPair) jose.JSONWebKeySet {
	var set jose.JSONWebKeySet
	for _, p := range pairs {
		set.Keys = append(set.Keys,
			jose.JSONWebKey{Key: p.rsa.Public(), KeyID: p.rsaKID, Algorithm: "RS256", Use: "sig"},
			jose.JSONWebKey{Key: p.ec.Public(), KeyID: p.ecKID, Algorithm: "ES256", Use: "sig"},
		)
	}
	return set
}

// rsaPublicPEM is the PEM (PKIX) encoding of the RSA public key: the bytes a
// naive HS256 verifier would use as the HMAC secret in the classic
// algorithm-confusion attack.
func rsaPublicPEM(k *rsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// sign produces the JWS signature of signingInput with alg.
func (p *keyPair) sign(alg, signingInput string) ([]byte, error) {
	switch alg {
	case "none":
		return nil, nil
	case "RS256", "RS384", "RS512":
		h, hf := hashFor(alg)
		h.Write([]byte(signingInput))
		return rsa.SignPKCS1v15(rand.Reader, p.rsa, hf, h.Sum(nil))
	case "PS256", "PS384", "PS512":
		h, hf := hashFor(alg)
		h.Write([]byte(signingInput))
		return rsa.SignPSS(rand.Reader, p.rsa, hf, h.Sum(nil), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "ES256":
		d := sha256.Sum256([]byte(signingInput))
		r, s, err := ecdsa.Sign(rand.Reader, p.ec, d[:])
		if err != nil {
			return nil, err
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out, nil
	case "HS256":
		secret, err := rsaPublicPEM(p.rsa)
		if err != nil {
			return nil, err
		}
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(signingInput))
		return m.Sum(nil), nil
	default:
		return nil, fmt.Errorf("oidcissuer: cannot sign with alg %q (have RS256/384/512, PS256/384/512, ES256, HS256, none)", alg)
	}
}

// kidFor is the kid of the key that signs with alg.
func (p *keyPair) kidFor(alg string) string {
	if alg == "ES256" {
		return p.ecKID
	}
	return p.rsaKID
}

func hashFor(alg string) (hash.Hash, crypto.Hash) {
	switch alg[2:] {
	case "384":
		return sha512.New384(), crypto.SHA384
	case "512":
		return sha512.New(), crypto.SHA512
	default:
		return sha256.New(), crypto.SHA256
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand.Read never fails on supported platforms (Go 1.24+).
		panic(err)
	}
	return hex.EncodeToString(b)
}
