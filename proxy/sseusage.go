package proxy

import (
	"bytes"
	"io"

	"github.com/ollamagw/ollama-gateway/ollamaapi"
)

// usageCarrySize bounds the start of an SSE event held back between two
// reads until it shows whether it is the usage-only chunk: the chunk's
// "choices" come after its id, object, created, model (at most
// MaxModelNameLen bytes) and system_fingerprint. A longer start is passed
// on as it is.
const usageCarrySize = 1536

// Where usageStrip is in the stream.
const (
	eventStart = iota // at the start of an event, or in one not decided yet
	eventKeep         // in an event passed on
	eventDrop         // in the usage-only chunk, dropped
)

// usageStrip removes from an OpenAI SSE stream the usage-only chunk the
// gateway asked for (ollamaapi.AppendStreamUsage) and the client did not,
// so the client gets the bytes it would have had without the gateway.
// Events are split at blank lines ("\n\n", as Ollama writes them); an
// event split across reads is decided as soon as its start tells, and the
// start of one that cannot be decided yet is carried to the next read.
// The zero value passes everything on; it is reset with reset.
type usageStrip struct {
	mode  uint8
	lf    bool // the last byte seen of an event being passed or dropped was '\n'
	n     int  // bytes in carry
	carry [usageCarrySize]byte
}

func (s *usageStrip) reset() { s.mode, s.lf, s.n = eventStart, false, 0 }

// read reads src into p and returns what of it is passed on, the carried
// start of an event first. It returns 0 bytes only with an error.
func (s *usageStrip) read(p []byte, src io.Reader) (int, error) {
	for {
		c, passed := s.takeCarry(p)
		if passed {
			return c, nil
		}
		n, err := src.Read(p[c:])
		if n = s.filter(p[:c+n], err == io.EOF); n > 0 || err != nil {
			return n, err
		}
	}
}

// filter compacts b in place to the bytes to pass on and returns their
// number. b starts with what was carried (see takeCarry). The start of an
// event that cannot be decided yet is moved to the carry, unless eof: then
// it is passed on.
func (s *usageStrip) filter(b []byte, eof bool) int {
	w, i := 0, 0
	for i < len(b) {
		rest := b[i:]
		if s.mode == eventStart {
			end := bytes.Index(rest, []byte("\n\n"))
			ev := rest
			if end >= 0 {
				ev = rest[:end+2]
			}
			drop, decided := ollamaapi.IsUsageOnlyChunk(ev, end >= 0)
			if !decided {
				if eof || len(ev) > len(s.carry) {
					drop, decided = false, true
				} else {
					s.n = copy(s.carry[:], ev)
					return w
				}
			}
			if end >= 0 {
				if !drop {
					w += copy(b[w:], ev)
				}
				i += len(ev)
				continue
			}
			s.mode, s.lf = eventKeep, false
			if drop {
				s.mode = eventDrop
			}
		}
		// In an event decided: up to the blank line that ends it.
		end := -1
		if s.lf && rest[0] == '\n' {
			end = 1
		} else if k := bytes.Index(rest, []byte("\n\n")); k >= 0 {
			end = k + 2
		}
		seg := rest
		if end >= 0 {
			seg = rest[:end]
		}
		if s.mode == eventKeep {
			w += copy(b[w:], seg)
		}
		i += len(seg)
		if end >= 0 {
			s.mode = eventStart
		} else {
			s.lf = seg[len(seg)-1] == '\n'
		}
	}
	return w
}

// takeCarry copies the carried bytes to the start of p and returns their
// number; 0 when there are none or p cannot hold more than them, in which
// case they are given up on: copied to p and passed on as they are
// (passed reports it).
func (s *usageStrip) takeCarry(p []byte) (n int, passed bool) {
	if s.n == 0 {
		return 0, false
	}
	if len(p) == 0 {
		return 0, true
	}
	n = copy(p, s.carry[:s.n])
	if n < len(p) {
		s.n = 0
		return n, false
	}
	// p is too small to read more into: pass on what fits.
	copy(s.carry[:], s.carry[n:s.n])
	s.n -= n
	s.mode, s.lf = eventKeep, p[n-1] == '\n'
	return n, true
}
