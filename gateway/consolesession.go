package gateway

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"sync"
	"time"
)

// maxConsoleSessions bounds the console's session store: signing in
// beyond it drops the session closest to expiry.
const maxConsoleSessions = 64

// consoleSession is one signed-in browser. It holds the digest of the
// admin key that signed in (never the key), so the session ends as soon
// as that key is no longer an admin key.
type consoleSession struct {
	keyDigest [32]byte
	keyID     string
	csrf      string
	expires   time.Time
}

// sessions is the console's in-memory session store, bounded by
// maxConsoleSessions. It is safe for concurrent use. A restart signs
// everyone out.
type sessions struct {
	mu sync.Mutex
	m  map[string]*consoleSession // by cookie token
}

// randomToken returns 32 random bytes in hex.
func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// create starts a session for the key of digest d, returning its cookie
// token and the session.
func (s *sessions) create(d [32]byte, keyID string, now time.Time, ttl time.Duration) (string, *consoleSession, error) {
	tok, err := randomToken()
	if err != nil {
		return "", nil, err
	}
	csrf, err := randomToken()
	if err != nil {
		return "", nil, err
	}
	se := &consoleSession{keyDigest: d, keyID: keyID, csrf: csrf, expires: now.Add(ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]*consoleSession)
	}
	if len(s.m) >= maxConsoleSessions {
		var oldest string
		for t, o := range s.m {
			if !now.Before(o.expires) {
				delete(s.m, t)
				continue
			}
			if oldest == "" || o.expires.Before(s.m[oldest].expires) {
				oldest = t
			}
		}
		if len(s.m) >= maxConsoleSessions {
			delete(s.m, oldest)
		}
	}
	s.m[tok] = se
	return tok, se, nil
}

// get returns the live session of token tok, or nil; an expired one is
// dropped.
func (s *sessions) get(tok string, now time.Time) *consoleSession {
	if tok == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.m[tok]
	if se != nil && !now.Before(se.expires) {
		delete(s.m, tok)
		return nil
	}
	return se
}

// drop ends the session of token tok.
func (s *sessions) drop(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, tok)
}

// len returns the number of sessions held, expired ones included.
func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// csrfOK reports whether token is the session's CSRF token, in constant
// time.
func (se *consoleSession) csrfOK(token []byte) bool {
	return len(token) > 0 && subtle.ConstantTimeCompare(token, []byte(se.csrf)) == 1
}
