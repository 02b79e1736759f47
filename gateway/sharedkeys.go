package gateway

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"

	"github.com/ollamagw/ollama-gateway/access"
	"github.com/ollamagw/ollama-gateway/config"
	"github.com/ollamagw/ollama-gateway/redisstore"
)

// Keys shared through Redis: the hash <prefix>keys maps each key's
// SHA-256 digest (64 hex digits) to its policy (a config.KeyEntry without
// its key, as JSON); <prefix>keys:v counts the hash's changes. Every
// replica mirrors the hash, polling the counter every keySync and reading
// the hash when it moved, so a key minted or revoked on one replica takes
// effect on the others within keySync plus a round trip. The secret is
// never stored: only its digest.

// keySync is how often a replica checks for changed shared keys.
const keySync = 200 * time.Millisecond

// syncScript returns {version} when the counter KEYS[1] is ARGV[1], else
// {version, field, value, ...} of the hash KEYS[2].
var syncScript = redisstore.NewScript(`
local v = redis.call('GET', KEYS[1]) or '0'
if v == ARGV[1] then return {v} end
local out = redis.call('HGETALL', KEYS[2])
table.insert(out, 1, v)
return out
`)

// addScript stores the policy ARGV[2] of digest ARGV[1] and moves the
// counter.
var addScript = redisstore.NewScript(`
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return redis.call('INCR', KEYS[1])
`)

// delScript removes the digests ARGV and moves the counter; it returns
// how many were removed.
var delScript = redisstore.NewScript(`
local n = redis.call('HDEL', KEYS[2], unpack(ARGV))
if n > 0 then redis.call('INCR', KEYS[1]) end
return n
`)

// errKeysUnavailable refuses a key operation while Redis cannot be
// reached: nothing was changed.
var errKeysUnavailable = errors.New("redis is unavailable: the shared keys cannot be changed, nothing was done; try again later")

// sharedKeys mirrors the keys stored in Redis. Safe for concurrent use.
type sharedKeys struct {
	store *redisstore.Client
	set   atomic.Pointer[access.KeySet]       // nil before the first sync
	ids   atomic.Pointer[map[string][]string] // public id -> digests (hex)
	ver   atomic.Pointer[string]              // the counter set was read at
}

func newSharedKeys(store *redisstore.Client) *sharedKeys {
	return &sharedKeys{store: store}
}

func (s *sharedKeys) redisKeys() []string {
	p := s.store.Prefix()
	return []string{p + "keys:v", p + "keys"}
}

// Lookup returns the shared key matching a presented key, or nil.
func (s *sharedKeys) Lookup(presented []byte) *access.Key {
	if set := s.set.Load(); set != nil {
		return set.Lookup(presented)
	}
	return nil
}

// All returns the shared keys, ordered by id; nil on a nil s.
func (s *sharedKeys) All() []*access.Key {
	if s == nil {
		return nil
	}
	if set := s.set.Load(); set != nil {
		return set.All()
	}
	return nil
}

// sync reads the hash if it changed since the last sync. On an error the
// keys last read stay in use.
func (s *sharedKeys) sync() error {
	known := ""
	if v := s.ver.Load(); v != nil {
		known = *v
	}
	msg, err := s.store.Run("keys-sync", syncScript, s.redisKeys(), []string{known})
	if err != nil {
		return err
	}
	vals, err := msg.AsStrSlice()
	if err != nil || len(vals) == 0 {
		return fmt.Errorf("shared keys: unexpected reply")
	}
	if vals[0] == known && s.set.Load() != nil {
		return nil
	}
	var entries []config.KeyEntry
	ids := map[string][]string{}
	for i := 1; i+1 < len(vals); i += 2 {
		var e config.KeyEntry
		if err := json.Unmarshal([]byte(vals[i+1]), &e); err != nil || len(vals[i]) != 64 {
			continue // not ours: skipped rather than trusted
		}
		e.Key, e.SHA256 = "", vals[i]
		entries = append(entries, e)
		ids[e.ID()] = append(ids[e.ID()], vals[i])
	}
	s.set.Store(access.NewKeySet(entries, nil))
	s.ids.Store(&ids)
	v := vals[0]
	s.ver.Store(&v)
	return nil
}

// Run syncs every keySync until ctx ends.
func (s *sharedKeys) Run(ctx context.Context) {
	_ = s.sync()
	t := time.NewTicker(keySync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = s.sync()
		}
	}
}

// add stores the policy of a new key of digest d, then syncs.
func (s *sharedKeys) add(d [32]byte, pol config.KeyEntry) error {
	pol.Key, pol.SHA256 = "", ""
	b, err := json.Marshal(pol)
	if err != nil {
		return err
	}
	if _, err := s.store.Run("keys-add", addScript, s.redisKeys(), []string{hex.EncodeToString(d[:]), string(b)}); err != nil {
		if errors.Is(err, redisstore.ErrUnavailable) {
			return errKeysUnavailable
		}
		return err
	}
	_ = s.sync()
	return nil
}

// revoke removes the shared keys of public id id, then syncs. It returns
// how many were removed (0: none has that id).
func (s *sharedKeys) revoke(id string) (int, error) {
	if err := s.sync(); err != nil {
		return 0, errKeysUnavailable
	}
	var digests []string
	if ids := s.ids.Load(); ids != nil {
		digests = (*ids)[id]
	}
	if len(digests) == 0 {
		return 0, nil
	}
	n, err := s.store.Run("keys-revoke", delScript, s.redisKeys(), digests)
	if err != nil {
		if errors.Is(err, redisstore.ErrUnavailable) {
			return 0, errKeysUnavailable
		}
		return 0, err
	}
	removed, _ := n.AsInt64()
	_ = s.sync()
	return int(removed), nil
}

// allKeys returns the configured keys, then the keys shared through Redis.
func (g *Gateway) allKeys() []*access.Key {
	return append(g.Snapshot().policy.allKeys(), g.sharedKeySet().All()...)
}

// newSharedKey mints a key with the policy pol into Redis: stored as its
// digest, live on every replica within keySync. While Redis cannot be
// reached the key is refused (errKeysUnavailable), never half made.
func (g *Gateway) newSharedKey(sk *sharedKeys, pol config.KeyEntry) (key, id string, err error) {
	key, err = config.GenerateKey()
	if err != nil {
		return "", "", fmt.Errorf("generating a key: %w", err)
	}
	d := config.KeyDigest(key)
	if err := sk.add(d, pol); err != nil {
		return "", "", err
	}
	id = config.KeyID(d)
	g.log.Info("API key created", "key_id", id, "key_name", pol.Name, "shared", true)
	return key, id, nil
}
