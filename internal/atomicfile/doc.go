// Package atomicfile writes a file so that a crash at any point leaves its
// old content or its new one ([WriteFile]), recovers a file whose in-place
// rewrite was interrupted ([ReadFile]), and serializes the processes that
// edit one file with an advisory lock ([Lock], [Edit]).
//
// It is what config.json needs: a small file, edited rarely, that may be a
// single-file Docker bind mount or sit in a directory the process may not
// write. Errors are *[fs.PathError]s naming the file, wrapped once.
package atomicfile
