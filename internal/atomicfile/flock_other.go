//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package atomicfile

import (
	"errors"
	"os"
)

// errNoLocks marks a system without flock.
var errNoLocks = errors.New("no file locks here")

// flock reports that there is no flock here.
func flock(*os.File) error { return errNoLocks }
