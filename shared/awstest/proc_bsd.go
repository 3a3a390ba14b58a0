//go:build unix && !linux

package awstest

import "syscall"

// procAttr puts moto in its own process group, so Close can signal
// everything it may have spawned. There is no parent-death signal outside
// Linux: a test binary that dies without Close leaves moto running.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
