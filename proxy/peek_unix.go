//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package proxy

import "syscall"

// peekSupported: a non-blocking MSG_PEEK tells what waits on a socket.
const peekSupported = true

// peekFD peeks one byte without blocking or consuming it: p.n is 1 if a
// byte waits, 0 at end of file or on a socket error, -1 if nothing waits.
func (p *peeker) peekFD(fd uintptr) bool {
	n, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
		p.n = -1
	case err != nil:
		// A reset or another socket error: not reusable either.
		p.n = 0
	default:
		p.n = n
	}
	return true // done: do not wait for readability
}
