package sshkey

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestParseLine(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
	b64 := strings.Fields(line)[1]
	rsa := "AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7"
	tests := []struct {
		line, comment string
		ok            bool
	}{
		{line, "", true},
		{line + " alice@laptop", "alice@laptop", true},
		{"  " + line + "\talice  laptop \n", "alice laptop", true},
		{"ssh-rsa " + b64, "", false},
		{"ssh-ed25519", "", false},
		{"ssh-ed25519 " + b64[:len(b64)-4], "", false},
		{"ssh-ed25519 " + b64 + "AAAA", "", false},
		{"ssh-ed25519 " + rsa, "", false},
		{"ssh-ed25519 " + strings.Repeat("!", len(b64)), "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, comment, err := ParseLine(tt.line)
		if (err == nil) != tt.ok {
			t.Errorf("ParseLine(%q) error = %v; want ok %v", tt.line, err, tt.ok)
			continue
		}
		if tt.ok && (!got.Equal(pub) || comment != tt.comment) {
			t.Errorf("ParseLine(%q) = %x, %q; want %x, %q", tt.line, got, comment, pub, tt.comment)
		}
	}
}

func TestWireMatchesXCryptoSSH(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	sp, _ := ssh.NewPublicKey(pub)
	if got, want := AppendWire(nil, pub), sp.Marshal(); !bytes.Equal(got, want) {
		t.Fatalf("AppendWire = %x; want %x", got, want)
	}
	// ssh.FingerprintSHA256 is "SHA256:" + unpadded base64 of the digest.
	fp := Fingerprint(pub)
	if got, want := "SHA256:"+base64.RawStdEncoding.EncodeToString(fp[:]), ssh.FingerprintSHA256(sp); got != want {
		t.Fatalf("Fingerprint = %s; want %s", got, want)
	}
}

func FuzzParseWire(f *testing.F) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	f.Add(AppendWire(nil, pub))
	f.Add([]byte{})
	f.Add(make([]byte, WireLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, ok := ParseWire(b)
		sp, err := ssh.ParsePublicKey(b)
		want := err == nil && sp.Type() == Type
		if ok != want {
			t.Fatalf("ParseWire(%x) ok = %v; x/crypto/ssh says %v (%v)", b, ok, want, err)
		}
		if ok && !bytes.Equal(AppendWire(nil, k), b) {
			t.Fatalf("AppendWire(ParseWire(%x)) = %x", b, AppendWire(nil, k))
		}
	})
}
