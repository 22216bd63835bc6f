//go:build unix

package node

import (
	"io/fs"
	"os"
	"syscall"
)

// ownedByOther reports whether fi, a directory's, belongs to a user
// other than the process's effective one.
func ownedByOther(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) != os.Geteuid()
}
