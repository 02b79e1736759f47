package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The recovery copy of an in-place rewrite goes to the temporary directory
// when the file's directory may not be written: the spec's
// docker run -v /host/config.json:/config.json with the image's non-root
// user, who may not write "/". These tests deny the directory through
// faultFS, since they run as root, whom a mode 0555 does not stop.

// TestWriteFileNonWritableDir is the regression test for new-key
// answering 500 in the Docker image with the single-file mount: the
// rewrite could not start because neither the replacement nor the
// recovery copy could be created next to the file.
func TestWriteFileNonWritableDir(t *testing.T) {
	const copyOps = "rename .ollama-gateway-<h>.json.new.tmp* ollama-gateway-<h>.json.new\n" +
		"syncDir\ntruncate config.json\nwrite config.json\nfsync config.json\nclose config.json\n" +
		"remove ollama-gateway-<h>.json.new\n"
	for _, tc := range []struct {
		name      string
		renameErr error
		deny      func(path, tmp string) []string
		// plant, if set, puts something at the copy's name first.
		plant   func(t *testing.T, name string)
		wantErr error // nil: the rewrite succeeds, through a copy in tmp
	}{
		{
			name: "directory not writable",
			deny: func(path, tmp string) []string { return []string{filepath.Dir(path)} },
		},
		{
			name:      "bind mount, directory not writable",
			renameErr: syscall.EBUSY,
			deny:      func(path, tmp string) []string { return []string{filepath.Dir(path)} },
		},
		{
			name:      "stale copy in the temporary directory",
			renameErr: syscall.EBUSY,
			deny:      func(path, tmp string) []string { return []string{filepath.Dir(path)} },
			plant: func(t *testing.T, name string) {
				if err := os.WriteFile(name, []byte(oldDoc), 0o600); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			// Another user planted a symbolic link at the copy's name to
			// have the keys written where they can read them: the link is
			// replaced, not followed (see plantLink's victim check).
			name:      "symbolic link planted at the copy's name",
			renameErr: syscall.EBUSY,
			deny:      func(path, tmp string) []string { return []string{filepath.Dir(path)} },
			plant:     plantLink,
		},
		{
			name:      "neither directory writable",
			renameErr: syscall.EBUSY,
			deny:      func(path, tmp string) []string { return []string{filepath.Dir(path), tmp} },
			wantErr:   syscall.EACCES,
		},
		{
			// Nothing is written, not even the copy with the keys.
			name:      "file not writable either",
			renameErr: syscall.EBUSY,
			deny:      func(path, tmp string) []string { return []string{filepath.Dir(path), path} },
			wantErr:   syscall.EACCES,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			path := writeConfig(t, oldDoc)
			ino := inode(t, path)
			f := &faultFS{renameErr: tc.renameErr, target: "config.json", tmpDir: tmp, deny: tc.deny(path, tmp)}
			if tc.plant != nil {
				tc.plant(t, tempCopy(f, path))
			}
			err := writeFile(f, path, []byte(newDoc))
			want := newDoc
			if tc.wantErr != nil {
				want = oldDoc
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("writeFileAtomic error = %v; want %v", err, tc.wantErr)
				}
			} else {
				if err != nil {
					t.Errorf("writeFileAtomic error: %v", err)
				}
				if ops := strings.Join(f.ops, "\n") + "\n"; !strings.Contains(ops, copyOps) {
					t.Errorf("operations %q; want the copy in the temporary directory, then the rewrite:\n%s", f.ops, copyOps)
				}
			}
			if data, _ := os.ReadFile(path); string(data) != want {
				t.Errorf("content = %q; want %q", data, want)
			}
			if got := inode(t, path); got != ino {
				t.Errorf("inode changed from %d to %d", ino, got)
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
				t.Errorf("mode = %v; want 0640", fi.Mode().Perm())
			}
			if e := entries(t, path); !reflect.DeepEqual(e, []string{"config.json"}) {
				t.Errorf("directory holds %q; want only config.json", e)
			}
			// The copy holds every key: it is gone once the file is
			// rewritten (or was never made).
			if e := dirEntries(t, tmp); len(e) != 0 {
				t.Errorf("temporary directory holds %q; want nothing", e)
			}
		})
	}
}

// plantLink puts at name a symbolic link to a victim file, and checks at
// the end of the test that the victim was not written through it.
func plantLink(t *testing.T, name string) {
	t.Helper()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("victim"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, name); err != nil {
		t.Skip("no symbolic links:", err)
	}
	t.Cleanup(func() {
		if data, _ := os.ReadFile(victim); string(data) != "victim" {
			t.Errorf("written through the planted link: victim holds %q", data)
		}
	})
}

// TestWriteFileCrashWithTempCopy crashes the in-place rewrite of a
// file whose directory may not be written, once its recovery copy is in
// the temporary directory: Load restores the new content from there.
func TestWriteFileCrashWithTempCopy(t *testing.T) {
	for _, tc := range []struct {
		name     string
		op       string
		ft       fault
		want     string // what Load gives
		restored bool   // from the copy, which is then removed
	}{
		{"before the rewrite", "truncate config.json", crashBefore, oldDoc, false},
		{"truncated", "truncate config.json", crashAfter, newDoc, true},
		{"half written", "write config.json", halfCrash, newDoc, true},
		// The process died, not the machine: what it wrote is there.
		{"written, not synced", "fsync config.json", crashBefore, newDoc, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := useTempDir(t) // for Load too
			newFS := func(path string) *faultFS {
				return &faultFS{renameErr: syscall.EBUSY, target: "config.json", tmpDir: tmp,
					deny: []string{filepath.Dir(path)}}
			}
			// Find the operation in a clean run, then crash there.
			clean := writeConfig(t, oldDoc)
			rec := newFS(clean)
			if err := writeFile(rec, clean, []byte(newDoc)); err != nil {
				t.Fatal(err)
			}
			path := writeConfig(t, oldDoc)
			f := newFS(path)
			f.failAt, f.fault = slices.Index(rec.ops, tc.op)+1, tc.ft
			if f.failAt == 0 {
				t.Fatalf("no %q among %q", tc.op, rec.ops)
			}
			if err := writeFile(f, path, []byte(newDoc)); err == nil || !f.crashed {
				t.Fatalf("writeFileAtomic error = %v, crashed %v; want a crash", err, f.crashed)
			}

			// The copy: in the temporary directory, whole, private.
			name := tempCopy(f, path)
			fi, err := os.Lstat(name)
			if err != nil {
				t.Fatalf("no recovery copy in the temporary directory: %v", err)
			}
			if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
				t.Errorf("recovery copy mode = %v; want a regular file, 0600", fi.Mode())
			}
			if data, _ := os.ReadFile(name); string(data) != newDoc {
				t.Errorf("recovery copy = %q; want the new content", data)
			}
			if e := entries(t, path); !reflect.DeepEqual(e, []string{"config.json"}) {
				t.Errorf("directory holds %q; want only config.json", e)
			}

			got, err := readDoc(path)
			if err != nil {
				t.Fatalf("Load error: %v", err)
			}
			if want := mustParse(t, tc.want); !reflect.DeepEqual(got, want) {
				t.Errorf("Load = %+v; want %+v", got, want)
			}
			if data, _ := os.ReadFile(path); string(data) != tc.want {
				t.Errorf("file after Load = %q; want %q", data, tc.want)
			}
			// Restored: the copy is removed. Not needed (the file loads):
			// it is left alone, and ignored.
			if _, err = os.Stat(name); tc.restored != errors.Is(err, os.ErrNotExist) {
				t.Errorf("recovery copy after Load: %v; want it removed only if it was restored", err)
			}
		})
	}
}

// TestReadFileIgnoresForeignTempCopy: anyone may create files in the
// temporary directory, so Load restores only a copy that WriteFile
// could have left there: a regular file of this user, private to it.
// Anything else could be another user's attempt to have their own keys
// (or config) restored.
func TestReadFileIgnoresForeignTempCopy(t *testing.T) {
	newCfg := mustParse(t, newDoc)
	writeCopy := func(mode os.FileMode) func(t *testing.T, name string) {
		return func(t *testing.T, name string) {
			if err := os.WriteFile(name, []byte(newDoc), mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(name, mode); err != nil { // whatever the umask
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name    string
		plant   func(t *testing.T, name string)
		restore bool
	}{
		{"own private file", writeCopy(0o600), true},
		{"readable by others", writeCopy(0o604), false},
		{"writable by the group", writeCopy(0o620), false},
		{"another user's", func(t *testing.T, name string) {
			writeCopy(0o600)(t, name)
			if err := os.Chown(name, os.Geteuid()+1, -1); err != nil {
				t.Skip("cannot give a file to another user:", err)
			}
		}, false},
		{"symbolic link to a private file", func(t *testing.T, name string) {
			target := filepath.Join(t.TempDir(), "copy")
			writeCopy(0o600)(t, target)
			if err := os.Symlink(target, name); err != nil {
				t.Skip("no symbolic links:", err)
			}
		}, false},
		{"FIFO", func(t *testing.T, name string) {
			if err := syscall.Mkfifo(name, 0o600); err != nil {
				t.Skip("no FIFOs:", err)
			}
		}, false},
		{"directory", func(t *testing.T, name string) {
			if err := os.Mkdir(name, 0o700); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			useTempDir(t)
			path := writeConfig(t, "") // truncated by a crash: any copy fits
			name := tempCopy(osFS{}, path)
			tc.plant(t, name)
			before, _ := os.Lstat(name)

			// Bounded: opening a FIFO could block for ever.
			type result struct {
				c   string
				err error
			}
			done := make(chan result, 1)
			go func() { c, err := readDoc(path); done <- result{c, err} }()
			var r result
			select {
			case r = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Load blocked on the planted file")
			}

			if tc.restore {
				if r.err != nil || !reflect.DeepEqual(r.c, newCfg) {
					t.Errorf("Load = %+v, %v; want the copy's config", r.c, r.err)
				}
				return
			}
			if r.err == nil {
				t.Errorf("Load = %+v; want the file's error, not the planted config", r.c)
			}
			if data, _ := os.ReadFile(path); len(data) != 0 {
				t.Errorf("file changed to %q", data)
			}
			if after, err := os.Lstat(name); err != nil || after.Mode() != before.Mode() {
				t.Errorf("planted file changed or removed (%v)", err)
			}
		})
	}
}

// TestReadFilePrefersNewerCopy: when both places hold a copy that fits the
// broken file, the one modified last is the rewrite that broke it; the
// other is a leftover of an earlier one.
func TestReadFilePrefersNewerCopy(t *testing.T) {
	older := time.Now().Add(-time.Hour)
	for _, tc := range []struct {
		name            string
		nextTo, inTemp  string // the copies' contents
		olderIs, wantIs string // "next to" or "in temp"
	}{
		{"copy in the temporary directory is newer", oldDoc, newDoc, "next to", "in temp"},
		{"copy next to the file is newer", newDoc, oldDoc, "in temp", "next to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			useTempDir(t)
			path := writeConfig(t, "")
			names := map[string]string{"next to": path + ".new", "in temp": tempCopy(osFS{}, path)}
			for where, content := range map[string]string{"next to": tc.nextTo, "in temp": tc.inTemp} {
				if err := os.WriteFile(names[where], []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chtimes(names[tc.olderIs], older, older); err != nil {
				t.Fatal(err)
			}
			want := tc.nextTo
			if tc.wantIs == "in temp" {
				want = tc.inTemp
			}
			got, err := readDoc(path)
			if err != nil || !reflect.DeepEqual(got, mustParse(t, want)) {
				t.Errorf("Load = %+v, %v; want the newer copy's config", got, err)
			}
			if _, err := os.Stat(names[tc.wantIs]); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the restored copy is still there (%v)", err)
			}
		})
	}
}

func TestTempCopyName(t *testing.T) {
	fsys := &faultFS{tmpDir: "/tmpdir"}
	// Documented in README.md: sha256("/config.json") starts b2ebf86a95e6e198.
	if got, want := tempCopy(fsys, "/config.json"), "/tmpdir/ollama-gateway-b2ebf86a95e6e198.json.new"; got != want {
		t.Errorf("tempCopy(/config.json) = %q; want %q", got, want)
	}
	dir := t.TempDir()
	abs := tempCopy(fsys, filepath.Join(dir, "config.json"))
	t.Chdir(dir)
	if rel := tempCopy(fsys, "config.json"); rel != abs {
		t.Errorf("relative path gives %q, absolute %q; want the same name", rel, abs)
	}
	if other := tempCopy(fsys, filepath.Join(dir, "other.json")); other == abs {
		t.Errorf("two files share the copy %q", abs)
	}
}
