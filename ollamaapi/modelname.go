package ollamaapi

import "bytes"

// Default parts of an Ollama model name (types/model/name.go).
const (
	defaultHost      = "registry.ollama.ai"
	defaultNamespace = "library"
	defaultTag       = "latest"
)

// AppendModelName appends to dst the canonical form of an Ollama model
// name: the name split as Ollama's model.ParseName splits it ([host/]
// [namespace/]model[:tag], an optional scheme:// before the host), with the
// default host, namespace and tag for the parts it lacks, shortened as
// Ollama lists names in /api/tags (Name.DisplayShortest: the host only if not the default, the
// namespace only if the host or the namespace is not the default, the tag
// always), in lower case. So "llama3", "Llama3:latest" and
// "registry.ollama.ai/library/llama3" are all "llama3:latest", and
// "hf.co/bartowski/x:q4" stays "hf.co/bartowski/x:q4". It allocates only
// when dst is too small.
//
// Ollama finds a model by its file path, which is case-sensitive on Linux
// only; matching without case sends a name that differs only in case to a
// backend that has the model, which answers as it would anyway.
func AppendModelName(dst, name []byte) []byte {
	s := name
	tag := []byte(nil)
	if c := bytes.LastIndexByte(s, ':'); c > bytes.LastIndexByte(s, '/') {
		s, tag = s[:c], s[c+1:]
	}
	model, ns, host := s, []byte(nil), []byte(nil)
	if k := bytes.LastIndexByte(s, '/'); k >= 0 {
		model, ns = s[k+1:], s[:k]
		if k := bytes.LastIndexByte(ns, '/'); k >= 0 {
			ns, host = ns[k+1:], ns[:k]
			if i := bytes.Index(host, []byte("://")); i >= 0 {
				host = host[i+3:]
			}
		}
	}
	if len(host) == 0 {
		host = []byte(defaultHost)
	}
	if len(ns) == 0 {
		ns = []byte(defaultNamespace)
	}
	if len(tag) == 0 {
		tag = []byte(defaultTag)
	}
	if !bytes.EqualFold(host, []byte(defaultHost)) {
		dst = appendLower(dst, host)
		dst = append(dst, '/')
		dst = appendLower(dst, ns)
		dst = append(dst, '/')
	} else if !bytes.EqualFold(ns, []byte(defaultNamespace)) {
		dst = appendLower(dst, ns)
		dst = append(dst, '/')
	}
	dst = appendLower(dst, model)
	dst = append(dst, ':')
	return appendLower(dst, tag)
}

// appendLower appends s to dst with ASCII letters in lower case.
func appendLower(dst, s []byte) []byte {
	for _, c := range s {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}
