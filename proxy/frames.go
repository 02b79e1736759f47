package proxy

import "bytes"

// frameCheck reads along the header blocks of a backend response as they
// pass through deadlineConn.Read and marks the connection unsafe to reuse
// when the response leaves in doubt where it ends, so whatever follows might
// be taken for the answer to the next, unrelated request:
//
//   - both Content-Length and Transfer-Encoding (fasthttp reads the body
//     chunked, as RFC 9112 section 6.3 says, but the two framings disagree
//     on where the next response starts: the connection must be closed);
//   - 101 Switching Protocols (what follows is not HTTP);
//   - a status outside 100-599 (badStatus: deadlineConn fails the read,
//     so no such status is ever passed on, 000 included, which fasthttp
//     would report as 200).
//
// Interim 1xx responses (but 101) are skipped, as fasthttp skips them. Only
// header bytes are examined, once; the scan stops at the end of the final
// header block. Header names are matched as fasthttp matches them: case
// insensitively, with spaces before the colon ignored.
type frameCheck struct {
	active    bool // reading a response's header blocks
	unsafe    bool // the connection must not be reused
	badStatus bool // a status line with a code outside 100-599

	lineStart bool // the next byte starts a line
	status    bool // the current line is a status line
	inValue   bool // past the colon of the current header line
	spaced    bool // a space or tab followed the name so far
	badName   bool // the name cannot be one we look for
	empty     bool // the current line has no byte but '\r' so far
	code      int  // status code of the current block, -1 unparsed
	statusPos int  // bytes of the status line seen
	cl, te    bool // Content-Length, Transfer-Encoding seen in this block
	name      [len("transfer-encoding")]byte
	nameLen   int
}

// start prepares the check for the response to a new request.
func (f *frameCheck) start() {
	*f = frameCheck{active: true}
	f.newBlock()
}

func (f *frameCheck) newBlock() {
	f.lineStart, f.status, f.code, f.statusPos, f.cl, f.te = true, true, -1, 0, false, false
}

// feed examines the next bytes read from the connection.
func (f *frameCheck) feed(p []byte) {
	for i := 0; i < len(p); i++ {
		if !f.lineStart && (f.inValue || (f.status && f.statusPos == 4)) {
			// A header value or the reason phrase: only its end matters.
			j := bytes.IndexByte(p[i:], '\n')
			if j < 0 {
				return
			}
			i += j
		}
		b := p[i]
		if f.lineStart {
			f.lineStart, f.inValue, f.spaced, f.badName, f.empty, f.nameLen = false, false, false, false, true, 0
		}
		if b == '\n' {
			f.endLine()
			if !f.active {
				return
			}
			continue
		}
		if b != '\r' {
			f.empty = false
		}
		switch {
		case f.status:
			f.statusByte(b)
		case f.inValue || b == '\r':
		case b == ':':
			f.inValue = true
			f.nameDone()
		case b == ' ' || b == '\t':
			f.spaced = true
		case f.spaced || f.nameLen == len(f.name):
			f.badName = true
		default:
			if 'A' <= b && b <= 'Z' {
				b += 'a' - 'A'
			}
			f.name[f.nameLen] = b
			f.nameLen++
		}
	}
}

// statusByte parses "HTTP/1.1 200 OK": the code is the three bytes after the
// first run of spaces.
func (f *frameCheck) statusByte(b byte) {
	switch {
	case f.statusPos == 0 && b != ' ': // protocol
		return
	case f.statusPos == 0:
		f.statusPos = 1
		f.code = 0
	case f.statusPos == 1 && b == ' ' && f.code == 0:
	case f.statusPos >= 1 && f.statusPos <= 3 && '0' <= b && b <= '9':
		f.code = f.code*10 + int(b-'0')
		f.statusPos++
	case f.statusPos == 4: // reason phrase
	default:
		f.code = -1
		f.statusPos = 5
	}
}

func (f *frameCheck) nameDone() {
	if f.badName {
		return
	}
	switch string(f.name[:f.nameLen]) {
	case "content-length":
		f.cl = true
	case "transfer-encoding":
		f.te = true
	}
}

func (f *frameCheck) endLine() {
	f.lineStart = true
	if f.status {
		f.status = false
		if f.statusPos != 4 {
			f.code = -1
		} else if f.code < 100 || f.code > 599 {
			// fasthttp would report a 000 as 200: fail the read.
			f.badStatus, f.unsafe, f.active = true, true, false
		}
		return
	}
	if !f.empty {
		return
	}
	// The end of a header block.
	if f.code >= 100 && f.code < 200 && f.code != 101 {
		f.newBlock() // interim: the real response follows
		return
	}
	f.active = false
	f.unsafe = (f.cl && f.te) || f.code < 100 || f.code > 599 || f.code == 101
}
