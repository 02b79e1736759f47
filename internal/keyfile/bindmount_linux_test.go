package keyfile

import (
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
)

// TestAddKeyBindMountedFile runs AddKey on a real single-file bind mount,
// as docker run -v /host/config.json:/config.json makes: the rename fails
// with EBUSY and the file is rewritten in place. It needs the right to
// mount (root in a namespace that allows it) and is skipped otherwise.
func TestAddKeyBindMountedFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to bind-mount a file")
	}
	host := writeConfig(t, oldDoc)
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(host, path, "", syscall.MS_BIND, ""); err != nil {
		t.Skip("cannot bind-mount here:", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(path, 0); err != nil {
			t.Errorf("unmount %s: %v", path, err)
		}
	})
	if err := os.Rename(host, path); err == nil {
		t.Fatal("rename over a bind mount succeeded; the test does not test the fallback")
	}

	c, err := AddKey(path, "new-key-0123456789")
	if err != nil {
		t.Fatalf("AddKey on a bind-mounted file: %v", err)
	}
	if want := mustParse(t, newDoc); !reflect.DeepEqual(c, want) {
		t.Errorf("AddKey = %+v; want %+v", c, want)
	}
	// The host's file has the new content: it was written through the
	// mount, not replaced beside it.
	if data, _ := os.ReadFile(host); string(data) != newDoc {
		t.Errorf("host file = %q; want %q", data, newDoc)
	}
	if fi, _ := os.Stat(host); fi.Mode().Perm() != 0o640 {
		t.Errorf("host file mode = %v; want 0640", fi.Mode().Perm())
	}
	if e := entries(t, path); !reflect.DeepEqual(e, []string{"config.json"}) {
		t.Errorf("directory holds %q; want only config.json", e)
	}
}
