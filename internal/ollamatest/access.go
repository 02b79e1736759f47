package ollamatest

import (
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
)

// admit applies Ollama's two access checks, in its order, and reports
// whether the request may go on; when it may not, the answer is written.
//
//  1. CORS (gin-contrib/cors with Ollama's default origins): a browser Origin
//     that is neither the request's own host nor allowed gets 403 with an
//     empty body; an allowed one gets Access-Control-Allow-Origin, and its
//     preflight (OPTIONS) gets 204.
//  2. allowedHostsMiddleware: the fake listens on loopback, so a Host header
//     that is not an IP on this machine or a private network, "localhost",
//     this machine's name or a *.localhost, *.local or *.internal name gets
//     403 with an empty body. An OPTIONS request to an allowed name gets 204.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) bool {
	if origin := r.Header.Get("Origin"); origin != "" &&
		origin != "http://"+r.Host && origin != "https://"+r.Host {
		if !allowedOrigin(origin) {
			w.WriteHeader(http.StatusForbidden)
			return false
		}
		h := w.Header()
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS")
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", "43200")
			h.Add("Vary", "Origin")
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Origin", origin)
			w.WriteHeader(http.StatusNoContent)
			return false
		}
		h.Set("Vary", "Origin")
		h.Set("Access-Control-Allow-Origin", origin)
	}

	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if addr.IsLoopback() || addr.IsPrivate() || addr.IsUnspecified() || isLocalIP(addr) {
			return true
		}
	}
	if allowedHostName(host) {
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return false
		}
		return true
	}
	w.WriteHeader(http.StatusForbidden)
	return false
}

// corsAllowHeaders is Ollama's AllowHeaders list as gin-contrib/cors sends
// it.
const corsAllowHeaders = "Authorization,Content-Type,User-Agent,Accept,X-Requested-With," +
	"Openai-Beta,X-Stainless-Arch,X-Stainless-Async,X-Stainless-Custom-Poll-Interval," +
	"X-Stainless-Helper-Method,X-Stainless-Lang,X-Stainless-Os,X-Stainless-Package-Version," +
	"X-Stainless-Poll-Helper,X-Stainless-Retry-Count,X-Stainless-Runtime," +
	"X-Stainless-Runtime-Version,X-Stainless-Timeout"

// allowedOrigin reports whether Ollama allows a browser origin by default
// (envconfig.AllowedOrigins without OLLAMA_ORIGINS).
func allowedOrigin(origin string) bool {
	for _, host := range []string{"localhost", "127.0.0.1", "0.0.0.0"} {
		for _, scheme := range []string{"http://", "https://"} {
			if origin == scheme+host || strings.HasPrefix(origin, scheme+host+":") {
				return true
			}
		}
	}
	for _, prefix := range []string{"app://", "file://", "tauri://", "vscode-webview://", "vscode-file://"} {
		if strings.HasPrefix(origin, prefix) {
			return true
		}
	}
	return false
}

// allowedHostName is Ollama's allowedHost.
func allowedHostName(host string) bool {
	host = strings.ToLower(host)
	if host == "" || host == "localhost" {
		return true
	}
	if name, err := os.Hostname(); err == nil && host == strings.ToLower(name) {
		return true
	}
	for _, tld := range []string{"localhost", "local", "internal"} {
		if strings.HasSuffix(host, "."+tld) {
			return true
		}
	}
	return false
}

// isLocalIP reports whether ip is an address of one of this machine's
// interfaces.
func isLocalIP(ip netip.Addr) bool {
	ifaces, err := net.Interfaces()
	if err != nil {
		return false
	}
	for _, iface := range ifaces {
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Unmap() == ip.Unmap() {
				return true
			}
		}
	}
	return false
}
