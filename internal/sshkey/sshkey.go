// Package sshkey reads ed25519 public keys in the two SSH forms Ollama
// uses: the wire format (RFC 4253 section 6.6, RFC 8709: string
// "ssh-ed25519", string key), which signed requests carry in base64, and
// the authorized_keys line of ~/.ollama/id_ed25519.pub
// ("ssh-ed25519 <base64 wire> [comment]"). Only the standard library is
// used; nothing here allocates but ParseLine's result.
package sshkey

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
)

// Type is the SSH name of the only key type Ollama signs with.
const Type = "ssh-ed25519"

// WireLen is the length of an ed25519 public key in wire format: a
// 4-byte length, "ssh-ed25519", a 4-byte length and the 32-byte key.
const WireLen = 4 + len(Type) + 4 + ed25519.PublicKeySize

// ParseWire returns the key held in b, which must be exactly an ed25519
// public key in SSH wire format. The key aliases b.
func ParseWire(b []byte) (ed25519.PublicKey, bool) {
	if len(b) != WireLen ||
		binary.BigEndian.Uint32(b) != uint32(len(Type)) ||
		string(b[4:4+len(Type)]) != Type ||
		binary.BigEndian.Uint32(b[4+len(Type):]) != ed25519.PublicKeySize {
		return nil, false
	}
	return ed25519.PublicKey(b[WireLen-ed25519.PublicKeySize:]), true
}

// AppendWire appends the SSH wire format of pub, a 32-byte ed25519 key, to
// dst.
func AppendWire(dst []byte, pub ed25519.PublicKey) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(Type)))
	dst = append(dst, Type...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(pub)))
	return append(dst, pub...)
}

// Fingerprint returns the SHA-256 digest of pub's wire format: the digest
// `ssh-keygen -l` shows, in base64, as "SHA256:...".
func Fingerprint(pub ed25519.PublicKey) [32]byte {
	var buf [WireLen]byte
	return sha256.Sum256(AppendWire(buf[:0], pub))
}

// ErrNotEd25519 is returned by ParseLine for a line that is not an
// ed25519 public key.
var ErrNotEd25519 = errors.New(`not an ed25519 public key line ("ssh-ed25519 AAAA... comment", as in ~/.ollama/id_ed25519.pub)`)

// ParseLine reads an authorized_keys line without options:
// "ssh-ed25519 <base64 wire format> [comment]", fields separated by spaces
// or tabs, surrounding white space ignored. The type named first must be
// the one in the wire format.
func ParseLine(line string) (pub ed25519.PublicKey, comment string, err error) {
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != Type {
		return nil, "", ErrNotEd25519
	}
	if len(f[1]) != base64.StdEncoding.EncodedLen(WireLen) {
		return nil, "", ErrNotEd25519
	}
	var buf [WireLen + 2]byte
	n, err := base64.StdEncoding.Strict().Decode(buf[:], []byte(f[1]))
	if err != nil {
		return nil, "", ErrNotEd25519
	}
	k, ok := ParseWire(buf[:n])
	if !ok {
		return nil, "", ErrNotEd25519
	}
	return ed25519.PublicKey(append([]byte(nil), k...)), strings.Join(f[2:], " "), nil
}
