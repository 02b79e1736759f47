package gateway

import (
	"errors"
	"log/slog"
	"net"
	"syscall"
	"time"
)

// KeepAccepting wraps ln so that running out of file descriptors (EMFILE,
// ENFILE) or another temporary accept failure does not stop the server:
// fasthttp's Serve returns on any accept error it does not know, which
// would take the gateway down under a connection spike. Accept waits
// (5 ms, doubling up to 1 s) and tries again, logging once per episode.
func KeepAccepting(ln net.Listener, log *slog.Logger) net.Listener {
	return &patientListener{Listener: ln, log: log}
}

type patientListener struct {
	net.Listener
	log *slog.Logger
}

func (l *patientListener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil || !retryableAccept(err) {
			return c, err
		}
		if delay == 0 {
			delay = 5 * time.Millisecond
			l.log.Warn("accepting connections failed: retrying (raise the open-file limit?)", "err", err)
		} else if delay *= 2; delay > time.Second {
			delay = time.Second
		}
		time.Sleep(delay)
	}
}

func retryableAccept(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
