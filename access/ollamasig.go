package access

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/sshkey"
)

// Ollama's signed requests. With OLLAMA_AUTH=1 the ollama CLI, and every
// program using github.com/ollama/ollama/api (v0.17.4, api/client.go and
// auth/auth.go), signs each request with ~/.ollama/id_ed25519:
//
//	GET /api/tags?ts=1764584000
//	Authorization: <base64 SSH wire-format public key>:<base64 signature>
//
// The signature is ed25519 over the bytes "<METHOD>,<path>?ts=<ts>", path
// as the client named it (without the host's base path; as sent, since the
// client's url.JoinPath takes it as escaped). It covers nothing else: not the body, not other query
// parameters, not the host. A captured header can therefore be replayed,
// with any body, for the same method and path while ts is within
// SignedWindow of the gateway's clock; the ed25519 signature is
// deterministic, so a client's own requests to one path in one second are
// indistinguishable from a replay, and none is refused as one. Serve the
// gateway over TLS where the network is not trusted.

// SignedWindow is how far the ts of a signed request may be from the
// gateway's clock, either way.
const SignedWindow = 5 * time.Minute

// Errors of [PublicKeySet.Authenticate] and [VerifySigned]; their text is
// fit for the client.
var (
	// ErrNotSigned: the Authorization header is not "<key>:<signature>".
	ErrNotSigned = errors.New("access: not a signed request")
	// ErrSignedTimestamp: the query has no ts, more than one, or one
	// that is not a number of seconds.
	ErrSignedTimestamp = errors.New("signed request needs exactly one ts=<unix seconds> query parameter")
	// ErrSignedStale: ts is more than the window from the gateway's clock.
	ErrSignedStale = errors.New("signed request's ts is too far from the gateway's clock")
	// ErrSignatureInvalid: the signature does not verify.
	ErrSignatureInvalid = errors.New("invalid signature")
	// ErrPublicKeyNotListed: the signature verifies, but the key is in
	// neither apiKeys nor adminKeys.
	ErrPublicKeyNotListed = errors.New("public key not listed in apiKeys or adminKeys")
)

// Lengths of the two base64 halves of a signed Authorization header.
var (
	wireB64Len = base64.StdEncoding.EncodedLen(sshkey.WireLen)
	sigB64Len  = base64.StdEncoding.EncodedLen(ed25519.SignatureSize)
)

// ParseSignedAuthorization reads an Authorization header of Ollama's
// signed form, "<base64 SSH wire-format ed25519 public key>:<base64
// 64-byte signature>" (standard, padded base64), surrounding spaces
// trimmed. ok is false for anything else. It never verifies anything.
func ParseSignedAuthorization(v []byte) (pub ed25519.PublicKey, sig []byte, ok bool) {
	v = bytes.TrimSpace(v)
	if len(v) != wireB64Len+1+sigB64Len || v[wireB64Len] != ':' {
		return nil, nil, false
	}
	buf := make([]byte, base64.StdEncoding.DecodedLen(wireB64Len)+base64.StdEncoding.DecodedLen(sigB64Len))
	enc := base64.StdEncoding.Strict()
	n, err := enc.Decode(buf, v[:wireB64Len])
	if err != nil {
		return nil, nil, false
	}
	if pub, ok = sshkey.ParseWire(buf[:n]); !ok {
		return nil, nil, false
	}
	m, err := enc.Decode(buf[n:], v[wireB64Len+1:])
	if err != nil || m != ed25519.SignatureSize {
		return nil, nil, false
	}
	return pub, buf[n : n+m : n+m], true
}

// SignedQuery splits a raw query string (without "?") into the value of its
// one "ts" parameter and the rest, which is what the backend is sent. ok
// is false when there is no ts or more than one.
func SignedQuery(q []byte) (ts, rest []byte, ok bool) {
	n := 0
	for p := range bytes.SplitSeq(q, []byte("&")) {
		if v, found := bytes.CutPrefix(p, []byte("ts=")); found {
			ts = v
			n++
		} else if len(p) > 0 {
			if rest != nil {
				rest = append(rest, '&')
			} else {
				rest = make([]byte, 0, len(q))
			}
			rest = append(rest, p...)
		}
	}
	return ts, rest, n == 1
}

// VerifySigned checks a signed request: ts is whole unix seconds within
// window of now, and sig is pub's signature of "<method>,<path>?ts=<ts>".
// path is the request's path as the client signed it.
func VerifySigned(pub ed25519.PublicKey, sig, method, path, ts []byte, now time.Time, window time.Duration) error {
	sec, ok := parseSeconds(ts)
	if !ok {
		return ErrSignedTimestamp
	}
	if skew, w := now.Unix()-sec, int64(window/time.Second); skew > w || skew < -w {
		return fmt.Errorf("%w: %ds off, the window is ±%v", ErrSignedStale, skew, window)
	}
	var buf [256]byte
	msg := append(buf[:0], method...)
	msg = append(msg, ',')
	msg = append(msg, path...)
	msg = append(msg, "?ts="...)
	msg = append(msg, ts...)
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, msg, sig) {
		return ErrSignatureInvalid
	}
	return nil
}

// parseSeconds reads 1 to 18 decimal digits.
func parseSeconds(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// PublicKeySet is an immutable set of Ollama public keys (the [config.PublicKey]
// entries of apiKeys and adminKeys), looked up by fingerprint: the SHA-256
// of the key's SSH wire format. It is safe for concurrent use.
type PublicKeySet struct {
	keys  map[[32]byte]*Key
	admin bool
}

// NewPublicKeySet builds the set of the public keys of apiKeys and
// adminKeys, as config validates them; invalid entries are skipped. A key
// listed in both has admin scope, and the policy of the one entry that
// gives it one (as in [NewKeySet]). A key's [Key.ID] is the first 16 bytes
// of its fingerprint and its Name the first 16 hex digits, as for other
// keys.
func NewPublicKeySet(apiKeys, adminKeys []config.PublicKey) *PublicKeySet {
	s := &PublicKeySet{keys: make(map[[32]byte]*Key, len(apiKeys)+len(adminKeys))}
	add := func(e config.PublicKey, admin bool) {
		fp := e.Fingerprint()
		if fp == ([32]byte{}) {
			return
		}
		addKey(s.keys, fp, admin, e.KeyPolicy)
	}
	for _, e := range apiKeys {
		add(e, false)
	}
	for _, e := range adminKeys {
		add(e, true)
		s.admin = true
	}
	return s
}

// All returns every key of the set, ordered by id.
func (s *PublicKeySet) All() []*Key { return sortedKeys(s.keys) }

// Len returns the number of distinct public keys.
func (s *PublicKeySet) Len() int { return len(s.keys) }

// HasAdminKeys reports whether adminKeys lists a public key.
func (s *PublicKeySet) HasAdminKeys() bool { return s.admin }

// Authenticate checks a signed request: its Authorization header, method,
// path as sent (percent-encoded) and raw query. It returns the key, and
// the query without its ts parameter for the backend; or an error among
// ErrNotSigned, ErrSignedTimestamp, ErrSignedStale (wrapped),
// ErrSignatureInvalid and ErrPublicKeyNotListed. The signature is checked
// before the key is looked up, so a refusal says whether a key is listed
// only to its holder.
func (s *PublicKeySet) Authenticate(authorization, method, rawPath, query []byte, now time.Time) (*Key, []byte, error) {
	pub, sig, ok := ParseSignedAuthorization(authorization)
	if !ok {
		return nil, nil, ErrNotSigned
	}
	ts, rest, ok := SignedQuery(query)
	if !ok {
		return nil, nil, ErrSignedTimestamp
	}
	// The client signs the path it passed to url.JoinPath, which takes it
	// as already escaped: the path as sent. Should a client sign the
	// decoded path instead, that is tried second.
	err := VerifySigned(pub, sig, method, rawPath, ts, now, SignedWindow)
	if errors.Is(err, ErrSignatureInvalid) && bytes.IndexByte(rawPath, '%') >= 0 {
		err = VerifySigned(pub, sig, method, unescapePath(rawPath), ts, now, SignedWindow)
	}
	if err != nil {
		return nil, nil, err
	}
	k := s.keys[sshkey.Fingerprint(pub)]
	if k == nil {
		return nil, nil, ErrPublicKeyNotListed
	}
	return k, rest, nil
}

// unescapePath percent-decodes p as a URL path ("+" stays "+"), or returns
// it unchanged if it holds no valid escape.
func unescapePath(p []byte) []byte {
	i := bytes.IndexByte(p, '%')
	if i < 0 {
		return p
	}
	out := append(make([]byte, 0, len(p)), p[:i]...)
	for ; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) && isHexDigit(p[i+1]) && isHexDigit(p[i+2]) {
			out = append(out, unhex(p[i+1])<<4|unhex(p[i+2]))
			i += 2
			continue
		}
		out = append(out, p[i])
	}
	return out
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
