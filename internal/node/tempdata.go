package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrUnsafeDataDir is Start's error when DataDir is empty and the
// default directory under the system's temporary directory is not safely
// the node's own.
var ErrUnsafeDataDir = errors.New("the default data directory is not safely this user's")

// defaultDataDir makes (or takes again) the data directory of a node
// whose DataDir is empty: switchboard-SERVICE-ID under the system's
// temporary directory. Its name can be foretold, and the temporary
// directory is everyone's, so it is taken only when it is a directory
// (not a link), of the process's user, that others may not write in:
// another local user who made it first could otherwise read the rooms
// stored there, or change them.
func defaultDataDir(service, id string) (string, error) {
	dir := filepath.Join(os.TempDir(), "switchboard-"+sanitize(service)+"-"+sanitize(id))
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("node: making the default data directory: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("node: the default data directory: %w", err)
	}
	switch {
	case !fi.IsDir():
		return "", fmt.Errorf("node: %s is not a directory (a link?): %w; set DataDir", dir, ErrUnsafeDataDir)
	case ownedByOther(fi):
		return "", fmt.Errorf("node: %s belongs to another user: %w; set DataDir", dir, ErrUnsafeDataDir)
	case fi.Mode().Perm()&0o022 != 0:
		return "", fmt.Errorf("node: others may write in %s (mode %v): %w; set DataDir", dir, fi.Mode().Perm(), ErrUnsafeDataDir)
	}
	return dir, nil
}
