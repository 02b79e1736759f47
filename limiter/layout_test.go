package limiter

import (
	"testing"
	"unsafe"
)

// TestLayout guards the sizes the memory and contention figures depend on.
func TestLayout(t *testing.T) {
	for _, tt := range []struct {
		name      string
		got, want uintptr
	}{
		{"Key", unsafe.Sizeof(ClientKey{}), 18},
		{"bucket", unsafe.Sizeof(bucket{}), 24},
		{"shard", unsafe.Sizeof(shard{}), 64},
		{"concShard", unsafe.Sizeof(concShard{}), 64},
	} {
		if tt.got != tt.want {
			t.Errorf("unsafe.Sizeof(%s) = %d; want %d", tt.name, tt.got, tt.want)
		}
	}
}
