package access

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ollama/ollama/auth"
	"golang.org/x/crypto/ssh"

	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/internal/sshkey"
)

// testSigner is an ed25519 key pair made from a fixed seed byte.
type testSigner struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

func newTestSigner(seed byte) testSigner {
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	priv := ed25519.NewKeyFromSeed(s)
	return testSigner{priv: priv, pub: priv.Public().(ed25519.PublicKey)}
}

// entry is the key's apiKeys/adminKeys entry.
func (s testSigner) entry() config.PublicKey {
	return config.PublicKey{PublicKey: "ssh-ed25519 " + base64.StdEncoding.EncodeToString(sshkey.AppendWire(nil, s.pub)) + " t@test"}
}

// header signs challenge as auth.Sign does.
func (s testSigner) header(challenge string) string {
	return base64.StdEncoding.EncodeToString(sshkey.AppendWire(nil, s.pub)) + ":" +
		base64.StdEncoding.EncodeToString(ed25519.Sign(s.priv, []byte(challenge)))
}

func TestParseSignedAuthorization(t *testing.T) {
	s := newTestSigner(1)
	good := s.header("GET,/api/tags?ts=1")
	wire, sig, _ := bytes.Cut([]byte(good), []byte(":"))
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"good", good, true},
		{"spaces", "  " + good + " ", true},
		{"plain key", "sk-abc", false},
		{"bearer", "Bearer " + good, false},
		{"no colon", string(wire) + string(sig), false},
		{"short signature", string(wire) + ":" + base64.StdEncoding.EncodeToString(make([]byte, 63)), false},
		{"unpadded", string(wire) + ":" + base64.RawStdEncoding.EncodeToString(make([]byte, 64)) + "=", false},
		{"rsa key", base64.StdEncoding.EncodeToString(append([]byte("\x00\x00\x00\x07ssh-rsa"), make([]byte, 40)...)) + ":" + string(sig), false},
		{"url alphabet", string(wire) + ":" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 64)), false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		pub, gotSig, ok := ParseSignedAuthorization([]byte(tt.in))
		if ok != tt.ok {
			t.Errorf("%s: ok = %v; want %v", tt.name, ok, tt.ok)
			continue
		}
		if ok && (!pub.Equal(s.pub) || len(gotSig) != ed25519.SignatureSize) {
			t.Errorf("%s: got key %x, %d-byte signature; want %x, 64", tt.name, pub, len(gotSig), s.pub)
		}
	}
}

func TestSignedQuery(t *testing.T) {
	tests := []struct {
		q, ts, rest string
		ok          bool
	}{
		{"ts=1764584000", "1764584000", "", true},
		{"a=1&ts=5&b=2", "5", "a=1&b=2", true},
		{"ts=5&", "5", "", true},
		{"", "", "", false},
		{"ts=1&ts=2", "", "", false},
		{"tss=1&xts=2", "", "tss=1&xts=2", false},
	}
	for _, tt := range tests {
		ts, rest, ok := SignedQuery([]byte(tt.q))
		if ok != tt.ok || (ok && (string(ts) != tt.ts || string(rest) != tt.rest)) {
			t.Errorf("SignedQuery(%q) = %q, %q, %v; want %q, %q, %v", tt.q, ts, rest, ok, tt.ts, tt.rest, tt.ok)
		}
	}
}

func TestPublicKeySetAuthenticate(t *testing.T) {
	alice, bob, eve := newTestSigner(1), newTestSigner(2), newTestSigner(3)
	set := NewPublicKeySet([]config.PublicKey{alice.entry(), bob.entry()}, []config.PublicKey{bob.entry()})
	now := time.Unix(1764584000, 0)
	ts := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	tests := []struct {
		name                    string
		header, method, path, q string
		want                    *testSigner
		admin                   bool
		err                     error
		rest                    string
	}{
		{name: "listed", header: alice.header("GET,/api/tags?ts=" + ts(0)), method: "GET", path: "/api/tags", q: "ts=" + ts(0), want: &alice},
		{name: "admin", header: bob.header("POST,/api/pull?ts=" + ts(0)), method: "POST", path: "/api/pull", q: "ts=" + ts(0), want: &bob, admin: true},
		{name: "edge of the window", header: alice.header("HEAD,/?ts=" + ts(-SignedWindow)), method: "HEAD", path: "/", q: "ts=" + ts(-SignedWindow), want: &alice},
		{name: "path as sent", header: alice.header("DELETE,/api/user/keys/a%2Bb?ts=" + ts(0)), method: "DELETE", path: "/api/user/keys/a%2Bb", q: "ts=" + ts(0), want: &alice},
		{name: "decoded path", header: alice.header("HEAD,/api/blobs/sha256:ab cd?ts=" + ts(0)), method: "HEAD", path: "/api/blobs/sha256:ab%20cd", q: "ts=" + ts(0), want: &alice},
		{name: "other params kept", header: alice.header("GET,/api/tags?ts=" + ts(0)), method: "GET", path: "/api/tags", q: "x=1&ts=" + ts(0), want: &alice, rest: "x=1"},
		{name: "stale", header: alice.header("GET,/api/tags?ts=" + ts(-SignedWindow-time.Second)), method: "GET", path: "/api/tags", q: "ts=" + ts(-SignedWindow-time.Second), err: ErrSignedStale},
		{name: "future", header: alice.header("GET,/api/tags?ts=" + ts(SignedWindow+time.Second)), method: "GET", path: "/api/tags", q: "ts=" + ts(SignedWindow+time.Second), err: ErrSignedStale},
		{name: "no ts", header: alice.header("GET,/api/tags?ts=" + ts(0)), method: "GET", path: "/api/tags", err: ErrSignedTimestamp},
		{name: "ts not a number", header: alice.header("GET,/api/tags?ts=-1"), method: "GET", path: "/api/tags", q: "ts=-1", err: ErrSignedTimestamp},
		{name: "other method", header: alice.header("GET,/api/tags?ts=" + ts(0)), method: "POST", path: "/api/tags", q: "ts=" + ts(0), err: ErrSignatureInvalid},
		{name: "other path", header: alice.header("GET,/api/tags?ts=" + ts(0)), method: "GET", path: "/api/ps", q: "ts=" + ts(0), err: ErrSignatureInvalid},
		{name: "other ts", header: alice.header("GET,/api/tags?ts=" + ts(0)), method: "GET", path: "/api/tags", q: "ts=" + ts(time.Second), err: ErrSignatureInvalid},
		{name: "unlisted", header: eve.header("GET,/api/tags?ts=" + ts(0)), method: "GET", path: "/api/tags", q: "ts=" + ts(0), err: ErrPublicKeyNotListed},
		{name: "plain key", header: "sk-abc", method: "GET", path: "/api/tags", q: "ts=" + ts(0), err: ErrNotSigned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, rest, err := set.Authenticate([]byte(tt.header), []byte(tt.method), []byte(tt.path), []byte(tt.q), now)
			if !errors.Is(err, tt.err) {
				t.Fatalf("error = %v; want %v", err, tt.err)
			}
			if tt.want == nil {
				if k != nil {
					t.Fatalf("key = %+v; want none", k)
				}
				return
			}
			fp := sshkey.Fingerprint(tt.want.pub)
			if k == nil || k.Name != config.KeyID(fp) || !bytes.Equal(k.ID[:], fp[:16]) || k.Admin != tt.admin {
				t.Fatalf("key = %+v; want id %s, admin %v", k, config.KeyID(fp), tt.admin)
			}
			if string(rest) != tt.rest {
				t.Errorf("rest of the query = %q; want %q", rest, tt.rest)
			}
		})
	}
	if set.Len() != 2 || !set.HasAdminKeys() {
		t.Errorf("Len() = %d, HasAdminKeys() = %v; want 2, true", set.Len(), set.HasAdminKeys())
	}
}

// TestVerifiesOllamaAuthSign: a signature made by Ollama's own auth.Sign,
// from an OpenSSH private key in $HOME/.ollama/id_ed25519, verifies.
func TestVerifiesOllamaAuthSign(t *testing.T) {
	s := newTestSigner(7)
	home := t.TempDir()
	t.Setenv("HOME", home)
	blk, err := ssh.MarshalPrivateKey(s.priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, ".ollama"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ollama", "id_ed25519"), pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	line, err := auth.GetPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	set := NewPublicKeySet([]config.PublicKey{{PublicKey: line}}, nil)
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	h, err := auth.Sign(context.Background(), []byte("POST,/api/chat?ts="+ts))
	if err != nil {
		t.Fatal(err)
	}
	if k, _, err := set.Authenticate([]byte(h), []byte("POST"), []byte("/api/chat"), []byte("ts="+ts), now); k == nil || err != nil {
		t.Fatalf("Authenticate(auth.Sign header) = %v, %v; want the key", k, err)
	}
}

func FuzzParseSignedAuthorization(f *testing.F) {
	s := newTestSigner(1)
	f.Add(s.header("GET,/?ts=1"), "GET", "/", "ts=1")
	f.Add("sk-abc", "GET", "/api/tags", "")
	f.Add(":", "POST", "/a%zz%4", "ts=&ts=")
	set := NewPublicKeySet([]config.PublicKey{s.entry()}, nil)
	now := time.Unix(1, 0)
	f.Fuzz(func(t *testing.T, header, method, path, query string) {
		pub, sig, ok := ParseSignedAuthorization([]byte(header))
		if ok && (len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize) {
			t.Fatalf("ParseSignedAuthorization(%q) = %d-byte key, %d-byte signature", header, len(pub), len(sig))
		}
		ts, rest, ok := SignedQuery([]byte(query))
		if len(ts)+len(rest) > len(query) {
			t.Fatalf("SignedQuery(%q) = %q, %q: longer than the query", query, ts, rest)
		}
		if ok && bytes.Contains([]byte("&"+string(rest)+"&"), []byte("&ts=")) {
			t.Fatalf("SignedQuery(%q) left a ts in %q", query, rest)
		}
		if len(unescapePath([]byte(path))) > len(path) {
			t.Fatalf("unescapePath(%q) grew", path)
		}
		k, _, err := set.Authenticate([]byte(header), []byte(method), []byte(path), []byte(query), now)
		if (k == nil) == (err == nil) {
			t.Fatalf("Authenticate = %v, %v: want exactly one", k, err)
		}
	})
}

func BenchmarkPublicKeySetAuthenticate(b *testing.B) {
	s := newTestSigner(1)
	set := NewPublicKeySet([]config.PublicKey{s.entry()}, nil)
	now := time.Unix(1764584000, 0)
	header := []byte(s.header("POST,/api/chat?ts=1764584000"))
	method, path, query := []byte("POST"), []byte("/api/chat"), []byte("ts=1764584000")
	b.ReportAllocs()
	for b.Loop() {
		if k, _, err := set.Authenticate(header, method, path, query, now); k == nil {
			b.Fatal(err)
		}
	}
}

// TestPublicKeySetPolicy: a publicKey entry's policy becomes its Key's, as
// NewKeySet builds it for a secret key; the entry listed again in
// adminKeys without a policy keeps it.
func TestPublicKeySetPolicy(t *testing.T) {
	alice, bob := newTestSigner(1), newTestSigner(2)
	team := alice.entry()
	team.KeyPolicy = config.KeyPolicy{Name: "team-a", Models: []string{"llama3.2"},
		RateLimit: &config.RateOverride{MaxRequests: 5, TimeWindowSeconds: 60},
		Tokens:    &config.TokenBudget{Max: 100, WindowSeconds: 3600}, ExpiresAt: "2027-01-31T00:00:00Z"}
	set := NewPublicKeySet([]config.PublicKey{team, bob.entry()}, []config.PublicKey{alice.entry()})
	byName := map[string]*Key{}
	for _, k := range set.All() {
		byName[k.DisplayName()] = k
	}
	k := byName["team-a"]
	if k == nil || !k.Admin || k.RateLimit != 5 || k.RateWindow != time.Minute || k.TokenMax != 100 || k.TokenWindow != time.Hour {
		t.Fatalf("team key = %+v; want admin team-a with its rate and budget", k)
	}
	if exp := time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC); !k.Expires.Equal(exp) {
		t.Errorf("Expires = %v; want %v", k.Expires, exp)
	}
	if f := k.ModelFilter(); f == nil || !f("llama3.2:latest") || f("mistral") {
		t.Error("team's model filter does not keep exactly llama3.2")
	}
	if k.Policy.Name != "team-a" || k.Policy.Credential() != "" {
		t.Errorf("Policy = %+v; want team-a's, without a credential", k.Policy)
	}
	for _, k := range set.All() {
		if k.Label == "" && (k.ModelFilter() != nil || !k.Expires.IsZero() || k.Admin) {
			t.Errorf("bob's key = %+v; want no policy", k)
		}
	}
}
