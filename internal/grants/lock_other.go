//go:build !unix

package grants

import "os"

// lockDir opens the lock file. This platform has no flock, so nothing
// stops two processes sharing a directory: run one airlock per directory.
func lockDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}
