//go:build unix

package main

import (
	"io/fs"
	"os"
	"syscall"
)

// permBitsMeaningful: Unix permission bits say who may read a file.
const permBitsMeaningful = true

// ownedByCurrentUser reports whether this process's user owns the file;
// known is false where the owner cannot be learnt.
func ownedByCurrentUser(fi fs.FileInfo) (owned, known bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false, false
	}
	return int(st.Uid) == os.Getuid(), true
}
