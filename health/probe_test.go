package health

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestJoinURL(t *testing.T) {
	tests := []struct {
		base, path, want string
	}{
		{"http://h:11434/", "/", "http://h:11434/"},
		{"http://h:11434", "/", "http://h:11434/"},
		{"http://h:11434", "", "http://h:11434/"},
		{"http://h/ollama", "/api/version", "http://h/ollama/api/version"},
		{"http://h/ollama/", "/api/version", "http://h/ollama/api/version"},
		{"http://h/ollama/", "api/version", "http://h/ollama/api/version"},
		{"http://h/ollama", "api/version", "http://h/ollama/api/version"},
		{"http://h//", "//api/tags", "http://h/api/tags"},
		{"http://h/", "/api/", "http://h/api/"},
		{" http://h:11434/ ", "/", "http://h:11434/"},
		{"https://gpu1.example:443/x/y", "/", "https://gpu1.example:443/x/y/"},
	}
	for _, tt := range tests {
		if got := joinURL(tt.base, tt.path); got != tt.want {
			t.Errorf("joinURL(%q, %q) = %q; want %q", tt.base, tt.path, got, tt.want)
		}
	}
}

// TestProbeStatus checks which answers count as a success. Redirects are not
// followed: a 3xx is a failure like any other non-2xx status.
func TestProbeStatus(t *testing.T) {
	tests := []struct {
		status     int
		wantReason string
	}{
		{200, ""},
		{204, ""},
		{299, ""},
		{301, "status 301"},
		{302, "status 302"},
		{404, "status 404"},
		{500, "status 500"},
		{503, "status 503"},
	}
	for _, tt := range tests {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tt.status >= 300 && tt.status < 400 {
				http.Redirect(w, r, "/elsewhere", tt.status)
				return
			}
			w.WriteHeader(tt.status)
			w.Write([]byte("Ollama is running"))
		}))
		c := New(nil, Options{})
		if got := c.probe(context.Background(), srv.URL+"/"); got != tt.wantReason {
			t.Errorf("status %d: reason %q; want %q", tt.status, got, tt.wantReason)
		}
		srv.Close()
	}
}

// TestProbeDrainsLargeBody checks that a body beyond the drain bound neither
// fails the check nor makes it read forever.
func TestProbeDrainsLargeBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := strings.Repeat("x", 32<<10)
		for range 16 { // 512 KiB, 8 times the bound
			if _, err := w.Write([]byte(chunk)); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	c := New(nil, Options{})
	if got := c.probe(context.Background(), srv.URL); got != "" {
		t.Errorf("reason %q; want success", got)
	}
}

func TestProbeBadURL(t *testing.T) {
	c := New(nil, Options{})
	if got := c.probe(context.Background(), "http://[::1/"); got == "" {
		t.Error("a malformed URL was a success; want a failure")
	}
}
