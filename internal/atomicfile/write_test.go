package atomicfile

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// fault says how faultFS fails its chosen operation.
type fault int

const (
	failOp      fault = iota // the operation does nothing and returns an error
	crashBefore              // the process dies before the operation
	crashAfter               // the process dies right after the operation
	halfWrite                // a write stores half its data and returns an error
	halfCrash                // a write stores half its data and the process dies
)

func (f fault) String() string {
	return [...]string{"fail", "crash before", "crash after", "half write", "half write, crash"}[f]
}

var (
	errInjected = errors.New("injected failure")
	errCrashed  = errors.New("process crashed")
)

// faultFS is the real file system, but for one operation, chosen by its
// position in the sequence of operations, which fails as fault says.
// After a crash every operation fails with errCrashed and changes nothing,
// as if the process were gone. It records the operations it is asked for.
type faultFS struct {
	failAt int   // 1-based index of the failing operation; 0 for none
	fault  fault // how it fails
	// renameErr, if set, is what every rename onto a file named target
	// returns, e.g. EBUSY for a bind mount. It is not the injected fault.
	renameErr error
	target    string
	// tmpDir is the temporary directory; os.TempDir() if empty.
	tmpDir string
	// deny lists what this process may not write, as for a non-root
	// user: a directory (nothing can be created, renamed or removed in
	// it) or a file (it cannot be opened for writing). Denied operations
	// return EACCES, and still count as operations.
	deny []string

	ops     []string // the operations, by name
	fired   bool     // the fault happened
	crashed bool
}

// label names a file for the operation log: temporary files lose their
// random suffix, and the recovery copy in the temporary directory its
// hash (ollama-gateway-<h>.json.new), so that runs on different paths log
// the same operations.
func label(name string) string {
	base := filepath.Base(name)
	const copyPrefix = "ollama-gateway-"
	if i := strings.Index(base, copyPrefix); i >= 0 && len(base) >= i+len(copyPrefix)+16 {
		base = base[:i+len(copyPrefix)] + "<h>" + base[i+len(copyPrefix)+16:]
	}
	if i := strings.Index(base, ".tmp"); i >= 0 {
		base = base[:i+len(".tmp")] + "*"
	}
	return base
}

// do runs op, the operation called name, unless it is the one to fail.
// half, for writes, stores half the data.
func (f *faultFS) do(name string, op func() error, half func()) error {
	if f.crashed {
		return errCrashed
	}
	f.ops = append(f.ops, name)
	if len(f.ops) != f.failAt {
		return op()
	}
	f.fired = true
	switch f.fault {
	case crashBefore:
		f.crashed = true
		return errCrashed
	case crashAfter:
		op()
		f.crashed = true
		return errCrashed
	case halfWrite, halfCrash:
		if half == nil {
			return errInjected // not a write: fails like failOp
		}
		half()
		f.crashed = f.fault == halfCrash
		return fmt.Errorf("short write: %w", errInjected)
	}
	return errInjected
}

// denied returns EACCES if an operation that writes name, creating or
// removing it (create) or changing its content, is denied.
func (f *faultFS) denied(op, name string, create bool) error {
	for _, d := range f.deny {
		if filepath.Clean(name) == filepath.Clean(d) || create && filepath.Dir(name) == filepath.Clean(d) {
			return &fs.PathError{Op: op, Path: name, Err: syscall.EACCES}
		}
	}
	return nil
}

func (f *faultFS) TempDir() string {
	if f.tmpDir == "" {
		return os.TempDir()
	}
	return f.tmpDir
}

func (f *faultFS) ReadFile(name string) (b []byte, err error) {
	err = f.do("read "+label(name), func() error { b, err = os.ReadFile(name); return err }, nil)
	return b, err
}

func (f *faultFS) Stat(name string) (fi fs.FileInfo, err error) {
	err = f.do("stat "+label(name), func() error { fi, err = os.Stat(name); return err }, nil)
	return fi, err
}

func (f *faultFS) EvalSymlinks(path string) (p string, err error) {
	err = f.do("evalSymlinks "+label(path), func() error { p, err = filepath.EvalSymlinks(path); return err }, nil)
	return p, err
}

func (f *faultFS) Rename(oldpath, newpath string) error {
	return f.do("rename "+label(oldpath)+" "+label(newpath), func() error {
		if err := cmp.Or(f.denied("rename", oldpath, true), f.denied("rename", newpath, true)); err != nil {
			return err
		}
		if f.renameErr != nil && filepath.Base(newpath) == f.target {
			return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: f.renameErr}
		}
		return os.Rename(oldpath, newpath)
	}, nil)
}

func (f *faultFS) Remove(name string) error {
	return f.do("remove "+label(name), func() error {
		if err := f.denied("remove", name, true); err != nil {
			return err
		}
		return os.Remove(name)
	}, nil)
}

func (f *faultFS) SyncDir(dir string) error {
	return f.do("syncDir", func() error { return osFS{}.SyncDir(dir) }, nil)
}

func (f *faultFS) CreateTemp(dir, pattern string) (file, error) {
	var of *os.File
	err := f.do("createTemp "+label(pattern), func() (err error) {
		if err := f.denied("open", filepath.Join(dir, pattern), true); err != nil {
			return err
		}
		of, err = os.CreateTemp(dir, pattern)
		return err
	}, nil)
	if err != nil {
		if of != nil { // crashed after creating it
			of.Close()
		}
		return nil, err
	}
	return &faultFile{f: of, fs: f}, nil
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (file, error) {
	var of *os.File
	err := f.do("open "+label(name), func() (err error) {
		if flag&(os.O_WRONLY|os.O_RDWR) != 0 {
			if err := f.denied("open", name, flag&os.O_CREATE != 0); err != nil {
				return err
			}
		}
		of, err = os.OpenFile(name, flag, perm)
		return err
	}, nil)
	if err != nil {
		if of != nil {
			of.Close()
		}
		return nil, err
	}
	return &faultFile{f: of, fs: f}, nil
}

// faultFile is a file of faultFS.
type faultFile struct {
	f  *os.File
	fs *faultFS
}

func (ff *faultFile) Name() string { return ff.f.Name() }
func (ff *faultFile) op(name string, op func() error) error {
	return ff.fs.do(name+" "+label(ff.f.Name()), op, nil)
}

func (ff *faultFile) Stat() (fi fs.FileInfo, err error) {
	err = ff.op("fstat", func() error { fi, err = ff.f.Stat(); return err })
	return fi, err
}

func (ff *faultFile) Read(b []byte) (n int, err error) {
	err = ff.op("fread", func() error { n, err = ff.f.Read(b); return err })
	return n, err
}

func (ff *faultFile) Write(b []byte) (int, error) {
	n := 0
	err := ff.fs.do("write "+label(ff.f.Name()), func() (err error) { n, err = ff.f.Write(b); return err },
		func() { n, _ = ff.f.Write(b[:len(b)/2]) })
	return n, err
}

func (ff *faultFile) Truncate(size int64) error {
	return ff.op("truncate", func() error { return ff.f.Truncate(size) })
}
func (ff *faultFile) Sync() error { return ff.op("fsync", ff.f.Sync) }
func (ff *faultFile) Chmod(mode fs.FileMode) error {
	return ff.op("chmod", func() error { return ff.f.Chmod(mode) })
}
func (ff *faultFile) Chown(uid, gid int) error {
	return ff.op("chown", func() error { return ff.f.Chown(uid, gid) })
}

func (ff *faultFile) Close() error {
	err := ff.op("close", ff.f.Close)
	if err != nil {
		ff.f.Close() // the descriptor goes with the process
	}
	return err
}

var _ fileOps = (*faultFS)(nil)

const (
	oldDoc = "{\n  \"ollamaAddresses\": [\"http://localhost:11434\"],\n  \"apiKeys\": [\n    \"old-key-0123456789\"\n  ]\n}\n"
	newDoc = "{\n  \"ollamaAddresses\": [\"http://localhost:11434\"],\n  \"apiKeys\": [\n    \"old-key-0123456789\",\n    \"new-key-0123456789\"\n  ]\n}\n"
)

// writeConfig writes content to a config.json, mode 0640, in a new
// directory and returns its path.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return path
}

// The documents these tests write stand for configs: a content is valid
// when it is a JSON object with only the members ollamaAddresses and
// apiKeys (validDoc), and a "config" is the document itself.

// validDoc is the test's stand-in for a config parser.
func validDoc(data []byte) bool {
	var doc struct {
		OllamaAddresses []string `json:"ollamaAddresses"`
		APIKeys         []string `json:"apiKeys"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(&doc) == nil && !dec.More()
}

// mustParse returns doc, the config it stands for.
func mustParse(t *testing.T, doc string) string {
	t.Helper()
	if !validDoc([]byte(doc)) {
		t.Fatalf("test document %q is not JSON", doc)
	}
	return doc
}

// errInvalid is what readDoc returns for a file validDoc rejects.
var errInvalid = errors.New("the file is not a valid document")

// readDoc reads the file at path as a config loader does: with ReadFile,
// then an error if the result is not valid.
func readDoc(path string) (string, error) {
	data, err := ReadFile(path, validDoc)
	if err == nil && !validDoc(data) {
		err = errInvalid
	}
	return string(data), err
}

// readDocFS is readDoc on fsys, without the lock.
func readDocFS(fsys fileOps, path string) ([]byte, string, error) {
	data, err := readRecovering(fsys, path, validDoc)
	if err == nil && !validDoc(data) {
		err = errInvalid
	}
	return data, string(data), err
}

// entries lists the names in the directory of path.
func entries(t *testing.T, path string) []string {
	t.Helper()
	return dirEntries(t, filepath.Dir(path))
}

// dirEntries lists the names in dir.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		t.Skip("no inode numbers here")
	}
	return st.Ino
}

// TestWriteFileFaults fails, in turn, every file operation of
// WriteFile, by rename and by the in-place rewrite of a bind mount
// (with its recovery copy next to the file, or in the temporary directory
// when the file's directory may not be written), and crashes the process
// before and after each: Load must then give the old config or the new
// one, never an error.
func TestWriteFileFaults(t *testing.T) {
	oldCfg, newCfg := mustParse(t, oldDoc), mustParse(t, newDoc)
	for _, tc := range []struct {
		name      string
		renameErr error
		denyDir   bool     // the file's directory may not be written
		steps     []string // must be among the operations
	}{
		{"rename", nil, false, []string{
			"createTemp .config.json.tmp*", "chmod .config.json.tmp*", "write .config.json.tmp*",
			"fsync .config.json.tmp*", "rename .config.json.tmp* config.json", "syncDir",
		}},
		{"bind mount", syscall.EBUSY, false, []string{
			"rename .config.json.tmp* config.json", // refused
			"open config.json",
			"write .config.json.new.tmp*", "fsync .config.json.new.tmp*", "rename .config.json.new.tmp* config.json.new",
			"truncate config.json", "write config.json", "fsync config.json", "remove config.json.new",
		}},
		// The spec's docker run -v /host/config.json:/config.json with the
		// image's non-root user, who may not write "/".
		{"bind mount, directory not writable", syscall.EBUSY, true, []string{
			"createTemp .config.json.tmp*",     // refused
			"createTemp .config.json.new.tmp*", // refused
			"open config.json",
			"createTemp .ollama-gateway-<h>.json.new.tmp*", "chmod .ollama-gateway-<h>.json.new.tmp*",
			"write .ollama-gateway-<h>.json.new.tmp*", "fsync .ollama-gateway-<h>.json.new.tmp*",
			"rename .ollama-gateway-<h>.json.new.tmp* ollama-gateway-<h>.json.new", "syncDir",
			"truncate config.json", "write config.json", "fsync config.json", "remove ollama-gateway-<h>.json.new",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// newFS returns a file system for path, and sets the temporary
			// directory of Load to the one it uses.
			newFS := func(path string, failAt int, ft fault) *faultFS {
				tmp := t.TempDir()
				t.Setenv("TMPDIR", tmp)
				f := &faultFS{renameErr: tc.renameErr, target: "config.json", tmpDir: tmp, failAt: failAt, fault: ft}
				if tc.denyDir {
					f.deny = []string{filepath.Dir(path)}
				}
				return f
			}
			// A clean run lists the operations.
			path := writeConfig(t, oldDoc)
			rec := newFS(path, 0, failOp)
			if err := writeFile(rec, path, []byte(newDoc)); err != nil {
				t.Fatalf("writeFileAtomic error: %v", err)
			}
			for _, s := range tc.steps {
				if !strings.Contains(strings.Join(rec.ops, "\n")+"\n", s+"\n") {
					t.Errorf("operation %q not among %q", s, rec.ops)
				}
			}
			t.Logf("operations: %q", rec.ops)

			for i, op := range rec.ops {
				for _, ft := range []fault{failOp, crashBefore, crashAfter, halfWrite, halfCrash} {
					if (ft == halfWrite || ft == halfCrash) && !strings.HasPrefix(op, "write ") {
						continue
					}
					name := fmt.Sprintf("%d %s: %v", i+1, op, ft)
					path := writeConfig(t, oldDoc)
					f := newFS(path, i+1, ft)
					err := writeFile(f, path, []byte(newDoc))
					if !f.fired {
						t.Errorf("%s: the operation was not reached (ops %q)", name, f.ops)
						continue
					}
					// Removing a temporary file, or the pending file after a
					// complete rewrite, is best effort; a crash makes the
					// result moot.
					if err == nil && !strings.HasPrefix(op, "remove ") && !f.crashed {
						t.Errorf("%s: writeFileAtomic returned no error", name)
					}
					got, lerr := readDoc(path) // with f's temporary directory
					if lerr != nil {
						t.Errorf("%s: Load error: %v (writeFileAtomic: %v)", name, lerr, err)
						continue
					}
					if !reflect.DeepEqual(got, oldCfg) && !reflect.DeepEqual(got, newCfg) {
						t.Errorf("%s: Load = %+v; want the old or the new config", name, got)
					}
					// Load finished any interrupted rewrite: the file is
					// whole, old or new, and loads again.
					data, _ := os.ReadFile(path)
					if string(data) != oldDoc && string(data) != newDoc {
						t.Errorf("%s: file after Load = %q; want the old or the new content", name, data)
					}
					if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
						t.Errorf("%s: mode %v; want 0640", name, fi.Mode().Perm())
					}
					if !f.crashed {
						// Without a crash nothing is left behind: temporary
						// files are removed, a recovery copy only when the
						// file was in the middle of its rewrite.
						for _, e := range entries(t, path) {
							leftover := e == "config.json.new" && mayLeavePending(op, e) ||
								strings.HasPrefix(e, ".config.json.") && op == "remove "+label(e)
							if e != "config.json" && !leftover {
								t.Errorf("%s: left behind %s", name, e)
							}
						}
						for _, e := range dirEntries(t, f.tmpDir) {
							leftover := e == filepath.Base(tempCopy(f, path)) && mayLeavePending(op, label(e)) ||
								strings.HasPrefix(e, ".ollama-gateway-") && op == "remove "+label(e)
							if !leftover {
								t.Errorf("%s: left behind %s in the temporary directory", name, e)
							}
						}
					}
				}
			}
		})
	}
}

// mayLeavePending reports whether a failure of op may leave the recovery
// copy named pending: once it is renamed into place (it is not removed
// then: in a recovery it may be the only good copy), and when removing it
// is what failed. Load ignores it while config.json loads. A file that
// cannot be opened for the rewrite fails before the copy is written.
func mayLeavePending(op, pending string) bool {
	switch op {
	case "syncDir", "remove " + pending, "truncate config.json", "write config.json",
		"fsync config.json", "close config.json":
		return true
	}
	return false
}

func TestWriteFileRenameRefused(t *testing.T) {
	// A single-file bind mount cannot be renamed over (EBUSY); other file
	// systems say EXDEV or EPERM. The file is rewritten in place.
	for _, errno := range []syscall.Errno{syscall.EBUSY, syscall.EXDEV, syscall.EPERM} {
		t.Run(errno.Error(), func(t *testing.T) {
			path := writeConfig(t, oldDoc)
			ino := inode(t, path)
			f := &faultFS{renameErr: errno, target: "config.json"}
			if err := writeFile(f, path, []byte(newDoc)); err != nil {
				t.Fatalf("writeFileAtomic error: %v", err)
			}
			if data, _ := os.ReadFile(path); string(data) != newDoc {
				t.Errorf("content = %q; want %q", data, newDoc)
			}
			if got := inode(t, path); got != ino {
				t.Errorf("inode changed from %d to %d: not rewritten in place", ino, got)
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
				t.Errorf("mode = %v; want 0640", fi.Mode().Perm())
			}
			if e := entries(t, path); !reflect.DeepEqual(e, []string{"config.json"}) {
				t.Errorf("directory holds %q; want only config.json (no .new left behind)", e)
			}
		})
	}
}

func TestWriteFileRenameOtherError(t *testing.T) {
	// Any other rename failure is an error, and changes nothing.
	path := writeConfig(t, oldDoc)
	f := &faultFS{renameErr: syscall.ENOSPC, target: "config.json"}
	if err := writeFile(f, path, []byte(newDoc)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("writeFileAtomic error = %v; want ENOSPC", err)
	}
	if data, _ := os.ReadFile(path); string(data) != oldDoc {
		t.Errorf("content = %q; want the old one", data)
	}
	if e := entries(t, path); !reflect.DeepEqual(e, []string{"config.json"}) {
		t.Errorf("directory holds %q; want only config.json", e)
	}
}

func TestWriteFileMode(t *testing.T) {
	path := writeConfig(t, oldDoc) // 0640
	if err := WriteFile(path, []byte(newDoc)); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("existing 0640 file: mode after write = %v; want 0640", fi.Mode().Perm())
	}

	fresh := filepath.Join(t.TempDir(), "config.json")
	if err := WriteFile(fresh, []byte(newDoc)); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("new file: mode = %v; want 0600", fi.Mode().Perm())
	}
	if data, _ := os.ReadFile(fresh); string(data) != newDoc {
		t.Errorf("new file: content = %q", data)
	}
}

func TestWriteFileFollowsSymlink(t *testing.T) {
	real := writeConfig(t, oldDoc)
	link := filepath.Join(t.TempDir(), "config.json")
	if err := os.Symlink(real, link); err != nil {
		t.Skip("no symbolic links:", err)
	}
	if err := WriteFile(link, []byte(newDoc)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the link was replaced by a file (%v, %v)", fi, err)
	}
	if data, _ := os.ReadFile(real); string(data) != newDoc {
		t.Errorf("link target content = %q; want the new content", data)
	}
}

func TestWriteFileKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	path := writeConfig(t, oldDoc)
	if err := os.Chown(path, 4321, 4322); err != nil {
		t.Skip("chown:", err)
	}
	if err := WriteFile(path, []byte(newDoc)); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if uid, gid, ok := fileOwner(fi); ok && (uid != 4321 || gid != 4322) {
		t.Errorf("owner = %d:%d; want 4321:4322", uid, gid)
	}
}

// foreignOwner is a file system where config.json belongs to another
// user, to whom this one may not give a file, as for a gateway that does
// not run as root.
type foreignOwner struct{ *faultFS }

func (o foreignOwner) Stat(name string) (fs.FileInfo, error) {
	fi, err := o.faultFS.Stat(name)
	if err != nil || filepath.Base(name) != "config.json" {
		return fi, err
	}
	st := *fi.Sys().(*syscall.Stat_t)
	st.Uid++
	return statWithSys{fi, &st}, nil
}

func (o foreignOwner) CreateTemp(dir, pattern string) (file, error) {
	f, err := o.faultFS.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return denyChown{f}, nil
}

type statWithSys struct {
	fs.FileInfo
	sys any
}

func (s statWithSys) Sys() any { return s.sys }

type denyChown struct{ file }

func (denyChown) Chown(int, int) error { return &fs.PathError{Op: "chown", Err: syscall.EPERM} }

func TestWriteFileInPlaceWhenOwnerCannotBeKept(t *testing.T) {
	path := writeConfig(t, oldDoc)
	ino := inode(t, path)
	if err := writeFile(foreignOwner{&faultFS{}}, path, []byte(newDoc)); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); string(data) != newDoc {
		t.Errorf("content = %q; want the new one", data)
	}
	if got := inode(t, path); got != ino {
		t.Errorf("the file was replaced (inode %d -> %d); want an in-place rewrite, which keeps the owner", ino, got)
	}
	if e := entries(t, path); !reflect.DeepEqual(e, []string{"config.json"}) {
		t.Errorf("directory holds %q; want only config.json", e)
	}
}

// useTempDir makes a new directory the temporary directory (os.TempDir)
// for the rest of the test, and returns it.
func useTempDir(t *testing.T) string {
	t.Helper()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	return tmp
}

// copyPlaces are where WriteFile leaves the recovery copy of an
// in-place rewrite of path: next to it or, when its directory may not be
// written, in the temporary directory (set by useTempDir first).
var copyPlaces = []struct {
	name string
	of   func(path string) string
}{
	{"next to the file", func(path string) string { return path + ".new" }},
	{"in the temporary directory", func(path string) string { return tempCopy(osFS{}, path) }},
}

func TestReadFileRecoversInterruptedRewrite(t *testing.T) {
	newCfg := mustParse(t, newDoc)
	for _, place := range copyPlaces {
		for _, tc := range []struct {
			name, file string
		}{
			{"truncated", ""},
			{"half written", newDoc[:len(newDoc)/2]},
			{"zeroed block", newDoc[:10] + strings.Repeat("\x00", 20) + newDoc[30:40]},
		} {
			t.Run(place.name+"/"+tc.name, func(t *testing.T) {
				tmp := useTempDir(t)
				path := writeConfig(t, tc.file)
				pending := place.of(path)
				if err := os.WriteFile(pending, []byte(newDoc), 0o600); err != nil {
					t.Fatal(err)
				}
				got, err := readDoc(path)
				if err != nil {
					t.Fatalf("Load error: %v", err)
				}
				if !reflect.DeepEqual(got, newCfg) {
					t.Errorf("Load = %+v; want the pending config", got)
				}
				if data, _ := os.ReadFile(path); string(data) != newDoc {
					t.Errorf("file not restored: %q", data)
				}
				if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
					t.Errorf("restored file mode = %v; want 0640", fi.Mode().Perm())
				}
				if _, err := os.Stat(pending); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("recovery copy still there after recovery (%v)", err)
				}
				if e := entries(t, path); !reflect.DeepEqual(e, []string{"config.json"}) {
					t.Errorf("directory holds %q; want only config.json", e)
				}
				if e := dirEntries(t, tmp); len(e) != 0 {
					t.Errorf("temporary directory holds %q; want nothing", e)
				}
			})
		}
	}
}

func TestReadFileIgnoresStalePending(t *testing.T) {
	// The operator's own broken edit is reported, not replaced by a
	// leftover recovery copy; nor does a copy override a file that loads.
	broken := strings.Replace(oldDoc, `"apiKeys"`, `"apiKey"`, 1)
	for _, place := range copyPlaces {
		for _, tc := range []struct{ name, file, pending string }{
			{"broken edit", broken, newDoc},
			{"pending does not parse", "", "{"},
			{"file loads", oldDoc, newDoc},
		} {
			t.Run(place.name+"/"+tc.name, func(t *testing.T) {
				useTempDir(t)
				path := writeConfig(t, tc.file)
				pending := place.of(path)
				if err := os.WriteFile(pending, []byte(tc.pending), 0o600); err != nil {
					t.Fatal(err)
				}
				c, err := readDoc(path)
				if tc.file == oldDoc {
					if err != nil || !reflect.DeepEqual(c, mustParse(t, oldDoc)) {
						t.Errorf("Load = %v, %v; want the file's config", c, err)
					}
				} else if err == nil {
					t.Errorf("Load = %+v; want the file's error", c)
				}
				if data, _ := os.ReadFile(path); string(data) != tc.file {
					t.Errorf("file changed to %q", data)
				}
				if data, _ := os.ReadFile(pending); string(data) != tc.pending {
					t.Errorf("recovery copy changed to %q", data)
				}
			})
		}
	}
}

func TestInterruptedRewrite(t *testing.T) {
	pending := []byte("abcdef")
	for _, tc := range []struct {
		data string
		want bool
	}{
		{"", true},
		{"abc", true},
		{"a\x00\x00d", true},
		{"abcdef", true},
		{"abcdefg", false},
		{"abd", false},
		{"x", false},
	} {
		if got := interruptedRewrite([]byte(tc.data), pending); got != tc.want {
			t.Errorf("interruptedRewrite(%q, %q) = %v; want %v", tc.data, pending, got, tc.want)
		}
	}
}

// TestReadFileRecoveryFaults interrupts Load's own restore of an interrupted
// rewrite at every step: the recovery copy is then the only good one, and
// a later Load must still find the new config.
func TestReadFileRecoveryFaults(t *testing.T) {
	newCfg := mustParse(t, newDoc)
	for _, tc := range []struct {
		name      string
		renameErr error
		denyDir   bool // the directory may not be written; the copy is in the temporary one
	}{
		{"rename", nil, false},
		{"bind mount", syscall.EBUSY, false},
		{"bind mount, directory not writable", syscall.EBUSY, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// setup returns a file broken by a crash mid-rewrite with its
			// recovery copy, and a file system for it.
			setup := func(failAt int, ft fault) (string, *faultFS) {
				tmp := useTempDir(t)
				path := writeConfig(t, newDoc[:len(newDoc)/3])
				place := copyPlaces[0]
				f := &faultFS{renameErr: tc.renameErr, target: "config.json", tmpDir: tmp, failAt: failAt, fault: ft}
				if tc.denyDir {
					place = copyPlaces[1]
					f.deny = []string{filepath.Dir(path)}
				}
				if err := os.WriteFile(place.of(path), []byte(newDoc), 0o600); err != nil {
					t.Fatal(err)
				}
				return path, f
			}
			path, rec := setup(0, failOp)
			if _, c, err := readDocFS(rec, path); err != nil || !reflect.DeepEqual(c, newCfg) {
				t.Fatalf("load = %+v, %v; want the pending config", c, err)
			}
			t.Logf("operations: %q", rec.ops)
			for i, op := range rec.ops {
				for _, ft := range []fault{failOp, crashBefore, crashAfter, halfWrite, halfCrash} {
					if (ft == halfWrite || ft == halfCrash) && !strings.HasPrefix(op, "write ") {
						continue
					}
					name := fmt.Sprintf("%d %s: %v", i+1, op, ft)
					path, f := setup(i+1, ft)
					readDocFS(f, path)
					got, err := readDoc(path)
					if err != nil || !reflect.DeepEqual(got, newCfg) {
						t.Errorf("%s: then Load = %+v, %v; want the pending config", name, got, err)
					}
				}
			}
		})
	}
}

// TestWriteFileHonoursReadOnlyMode is the regression test for a mode 0444
// config.json being replaced by new-key (issue 10, item 8): renaming over
// a read-only file is allowed where the directory may be written, but the
// file's mode says it must not change. Nothing is written, for root too.
func TestWriteFileHonoursReadOnlyMode(t *testing.T) {
	for _, mode := range []os.FileMode{0o444, 0o400, 0o555} {
		t.Run(mode.String(), func(t *testing.T) {
			path := writeConfig(t, oldDoc)
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			ino := inode(t, path)
			err := WriteFile(path, []byte(newDoc))
			var pe *fs.PathError
			if !errors.Is(err, fs.ErrPermission) || !errors.As(err, &pe) || pe.Path != path {
				t.Errorf("WriteFile error = %v; want a permission *fs.PathError naming %s", err, path)
			}
			if data, _ := os.ReadFile(path); string(data) != oldDoc {
				t.Errorf("content = %q; want the old one", data)
			}
			if fi, _ := os.Stat(path); inode(t, path) != ino || fi.Mode().Perm() != mode {
				t.Errorf("file replaced or its mode changed (%v)", fi.Mode().Perm())
			}
			if e := entries(t, path); !reflect.DeepEqual(e, []string{"config.json"}) {
				t.Errorf("directory holds %q; want only config.json", e)
			}
		})
	}
}
