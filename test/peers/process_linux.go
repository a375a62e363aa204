package peers

import "syscall"

// sysProcAttr puts the child in its own process group (so Close can stop
// everything it started) and kills it if this process dies first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
