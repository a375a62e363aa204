//go:build unix

package grants

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive advisory lock on path (created if needed), so
// two airlock processes never write one store. The lock lasts until the
// returned file is closed, or the process dies.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errors.New("in use by another process (it holds the LOCK file): run one airlock per grant store directory, or a shared store")
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return f, nil
}
