package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"testing"
)

// TestLockFollowsReplacement: a writer that waited for the lock while the
// holder replaced the file by rename must end up holding the lock of the
// new file, else a third writer locking the new file would run beside it.
func TestLockFollowsReplacement(t *testing.T) {
	path := writeConfig(t, oldDoc)
	first, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *Locked, 1)
	go func() {
		l, err := Lock(path)
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	ino := inode(t, path)
	if err := WriteFile(path, []byte(newDoc)); err != nil {
		t.Fatal(err)
	}
	if inode(t, path) == ino {
		t.Fatal("WriteFile kept the inode; the test needs a replacement by rename")
	}
	if err := first.Unlock(); err != nil {
		t.Fatal(err)
	}
	second := <-got
	if second == nil {
		return
	}
	defer second.Unlock()
	held, err := second.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	now, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(held, now) {
		t.Error("the waiter holds the lock of the replaced file, not of the one at path")
	}
}

// TestEditConcurrent: concurrent Edits, each appending a line, lose none.
func TestEditConcurrent(t *testing.T) {
	valid := func([]byte) bool { return true }
	path := writeConfig(t, "")
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			err := Edit(path, valid, func(data []byte) ([]byte, error) {
				return fmt.Appendf(data, "line %d\n", i), nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	data, _ := os.ReadFile(path)
	for i := range n {
		if !strings.Contains(string(data), fmt.Sprintf("line %d\n", i)) {
			t.Errorf("line %d lost", i)
		}
	}
}

// TestLockMissingFile: there is nothing to lock; the error names the file.
func TestLockMissingFile(t *testing.T) {
	path := writeConfig(t, oldDoc) + ".missing"
	if _, err := Lock(path); err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("Lock(missing) error = %v; want ErrNotExist naming the file", err)
	}
}
