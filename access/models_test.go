package access

import (
	"testing"
	"time"

	"github.com/ollamagw/ollama-gateway/config"
)

func TestModelSet(t *testing.T) {
	s := NewModelSet([]string{"llama3.2", "qwen2.5:*", "hf.co/Org/M:q4", "library/phi3:mini"})
	tests := []struct {
		name string
		want bool
	}{
		{"llama3.2", true},
		{"llama3.2:latest", true},
		{"LLaMA3.2:Latest", true},
		{"registry.ollama.ai/library/llama3.2:latest", true},
		{"llama3.2:1b", false},
		{"llama3", false},
		{"qwen2.5:7b", true},
		{"qwen2.5", true},
		{"Qwen2.5:0.5B-instruct", true},
		{"qwen2.5-coder:7b", false},
		{"other/qwen2.5:7b", false},
		{"hf.co/org/m:Q4", true},
		{"hf.co/org/m", false},
		{"phi3:mini", true},
		{"phi3", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := s.Allows([]byte(tt.name)); got != tt.want {
			t.Errorf("Allows(%q) = %v; want %v", tt.name, got, tt.want)
		}
		if got := s.AllowsName(tt.name); got != tt.want {
			t.Errorf("AllowsName(%q) = %v; want %v", tt.name, got, tt.want)
		}
	}
	var none *ModelSet
	if !none.Allows([]byte("anything")) || !none.AllowsName("x") {
		t.Error("a nil ModelSet refuses a model; want every model allowed")
	}
}

func TestModelSetAllocs(t *testing.T) {
	s := NewModelSet([]string{"llama3.2", "qwen2.5:*"})
	name := []byte("registry.ollama.ai/library/qwen2.5:7b")
	if n := testing.AllocsPerRun(100, func() { s.Allows(name) }); n != 0 {
		t.Errorf("Allows allocates %v times per call; want 0", n)
	}
}

func TestKeySetPolicy(t *testing.T) {
	s := NewKeySet([]config.KeyEntry{
		{Key: "plain"},
		{Key: "team", KeyPolicy: config.KeyPolicy{Name: "team-a", Models: []string{"llama3.2"},
			RateLimit: &config.RateOverride{MaxRequests: 5, TimeWindowSeconds: 60},
			Tokens:    &config.TokenBudget{Max: 100, WindowSeconds: 3600}, ExpiresAt: "2027-01-31T00:00:00Z"}},
	}, []config.KeyEntry{{Key: "team"}})
	team := s.Lookup([]byte("team"))
	if team == nil || !team.Admin || team.Label != "team-a" || team.DisplayName() != "team-a" ||
		team.RateLimit != 5 || team.RateWindow != time.Minute || team.TokenMax != 100 || team.TokenWindow != time.Hour {
		t.Fatalf("team key = %+v; want admin team-a with its rate and budget", team)
	}
	exp := time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)
	if !team.Expires.Equal(exp) || team.Expired(exp.Add(-time.Second)) || !team.Expired(exp) {
		t.Errorf("Expires = %v; want %v, expired from then on", team.Expires, exp)
	}
	if f := team.ModelFilter(); f == nil || !f("llama3.2:latest") || f("mistral") {
		t.Error("team's model filter does not keep exactly llama3.2")
	}
	plain := s.Lookup([]byte("plain"))
	if plain.ModelFilter() != nil || plain.Expired(exp) || plain.DisplayName() != plain.Name {
		t.Errorf("plain key = %+v; want no policy", plain)
	}
}
