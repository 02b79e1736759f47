//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package proxy

// peekSupported: without a portable non-blocking peek, pooled connections
// are only checked for ambiguous framing (frameCheck), not for unread bytes.
const peekSupported = false

func (p *peeker) peekFD(uintptr) bool { p.n = -1; return true }
