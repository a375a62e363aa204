//go:build unix && !linux

package peers

import "syscall"

// sysProcAttr puts the child in its own process group so Close can stop
// everything it started.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
