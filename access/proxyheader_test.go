package access

import "testing"

func TestIsProxyHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"Forwarded": true, "forwarded": true, "FORWARDED": true,
		"X-Forwarded-For": true, "x-forwarded-host": true, "X-Forwarded-Proto": true, "X-Forwarded-Port": true,
		"X-Forwarded": true, "X-Real-IP": true, "x-real-ip": true, "Via": true,
		"True-Client-IP": true, "CF-Connecting-IP": true, "X-Client-IP": true,
		"Authorization": false, "Host": false, "X-Forward": false, "Forwarded-For": false,
		"X-Real-IPs": false, "Vias": false, "": false, "User-Agent": false,
	} {
		if got := IsProxyHeader([]byte(name)); got != want {
			t.Errorf("IsProxyHeader(%q) = %v; want %v", name, got, want)
		}
	}
}
