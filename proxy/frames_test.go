package proxy

import "testing"

// checkFrames feeds resp to a fresh frameCheck in pieces of size step (0:
// at once) and returns whether the connection was found unsafe and whether
// the scan ended.
func checkFrames(resp string, step int) (unsafe, ended bool) {
	var f frameCheck
	f.start()
	b := []byte(resp)
	if step <= 0 {
		step = len(b) + 1
	}
	for len(b) > 0 && f.active {
		n := min(step, len(b))
		f.feed(b[:n])
		b = b[n:]
	}
	return f.unsafe, !f.active
}

func TestFrameCheck(t *testing.T) {
	cases := []struct {
		name, resp string
		unsafe     bool
	}{
		{"content length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", false},
		{"no reason phrase", "HTTP/1.1 204\r\n\r\n", false},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", false},
		{"both", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", true},
		{"both, other case and order", "HTTP/1.1 200 OK\r\ntransfer-ENCODING: chunked\r\ncontent-length: 2\r\n\r\n", true},
		{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 2\r\nTransfer-Encoding\t: chunked\r\n\r\n", true},
		{"both in the body is fine", "HTTP/1.1 200 OK\r\nContent-Length: 60\r\n\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"name with an inner space", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer- Encoding: chunked\r\n\r\n", false},
		{"longer name", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Transfer-Encoding: chunked\r\n\r\n", false},
		{"in a value", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: Transfer-Encoding: chunked\r\n\r\n", false},
		{"101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", true},
		{"interim then final", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false},
		{"interim then both", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", true},
		{"both in the interim only", "HTTP/1.1 103 Early Hints\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false},
		{"status 600", "HTTP/1.1 600 Odd\r\n\r\n", true},
		{"status 099", "HTTP/1.1 099 Odd\r\n\r\n", true},
		{"status 599", "HTTP/1.1 599 Odd\r\n\r\n", false},
		{"status 000", "HTTP/1.1 000 OK\r\n\r\n", true},
		{"two-digit status", "HTTP/1.1 20 OK\r\n\r\n", true},
		{"no status", "HTTP/1.1\r\n\r\n", true},
	}
	for _, tc := range cases {
		for _, step := range []int{0, 1, 3, 7} {
			unsafe, ended := checkFrames(tc.resp, step)
			if unsafe != tc.unsafe || !ended {
				t.Errorf("%s (pieces of %d): unsafe %v, ended %v; want %v, true", tc.name, step, unsafe, ended, tc.unsafe)
			}
		}
	}
}

// FuzzFrameCheck: any bytes, however split, give the same verdict and
// never panic.
func FuzzFrameCheck(f *testing.F) {
	f.Add("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", 3)
	f.Add("HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 101 X\r\n\r\n", 1)
	f.Add("\r\n\r\nHTTP/1.1 200\n\n", 2)
	f.Fuzz(func(t *testing.T, resp string, step int) {
		step = step%64 + 1
		if step < 1 {
			step = -step + 1
		}
		u0, e0 := checkFrames(resp, 0)
		u1, e1 := checkFrames(resp, step)
		if u0 != u1 || e0 != e1 {
			t.Errorf("%q: whole: unsafe %v ended %v; pieces of %d: %v %v", resp, u0, e0, step, u1, e1)
		}
	})
}
