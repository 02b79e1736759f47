// Package access decides who may use the gateway: API keys (with an admin
// scope), IP allow and deny lists, and the client address behind trusted
// reverse proxies.
//
// Everything here is built once per configuration snapshot and is immutable
// afterwards, so the request path only reads: no parsing, no locks.
package access
