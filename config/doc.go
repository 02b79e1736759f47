// Package config reads, defaults and validates the gateway's config.json.
// Writing the file atomically and recovering an interrupted write is
// internal/atomicfile's concern; editing its key lists on disk is
// internal/keyfile's.
//
// A Config is plain data. It is built in three steps:
//
//  1. Decode: the JSON document is decoded onto [Default], so a field that
//     is absent keeps its default and a field that is present wins. An
//     explicitly empty string for a string field that has a default
//     (gatewayAddress, authHeaderName, loadBalancer.healthCheckEndpoint,
//     metrics.endpoint, metrics.namespace) also means the default. Unknown
//     fields, values of the wrong type and data after the JSON object are
//     errors, so typos are caught instead of silently ignored. A JSON null
//     for a field is the same as leaving the field out.
//  2. Normalise: surrounding whitespace is trimmed from ollamaAddresses
//     entries. Nothing else is rewritten.
//  3. Validate: every problem is reported at once, joined with
//     [errors.Join], each a [*FieldError] naming its field by JSON path
//     (for example "ollamaAddresses[1]" or "rateLimit.maxRequests").
//
// Error messages never contain the value of an API key or admin key, nor the
// user info (credentials) of an address: keys are named by index only.
//
// The format is that of the original Ollama Gateway config.json; a file
// written for it loads unchanged. The "proxy" block, "adminKeys" and the
// other fields marked optional are new.
//
// A *Config returned by [Parse] or [Load] is not modified by this package
// afterwards; it is safe for concurrent reads as long as no one writes to it.
// To reload, parse the file again and swap the pointer.
package config
