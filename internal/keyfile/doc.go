// Package keyfile adds keys to and removes them from the key lists of a
// gateway config file on disk ([AddKey], [RemoveKey]), editing the file as
// text so that everything the edit does not touch stays byte for byte as
// the operator wrote it, and never leaving a file that would not load.
//
// Every edit holds the file's advisory lock while it reads, edits and
// writes (atomicfile.Edit): the gateway's POST /config/new-key and
// DELETE /config/keys/<id> and the `ollama-gateway keys` CLI, in any
// number of processes, never lose or undo each other's changes. Errors are
// *fs.PathError values naming the file, wrapped once.
package keyfile
