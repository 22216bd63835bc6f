//go:build !unix

package bench

import "errors"

// raiseNoFile would raise the descriptor limit; this system has none that
// the bench knows how to raise.
func raiseNoFile(want uint64) (uint64, error) {
	return 0, errors.New("raising the descriptor limit needs a Unix system")
}
