package awstest

import "syscall"

// procAttr puts moto in its own process group, so Close can signal
// everything it may have spawned, and asks the kernel to kill it if the test
// binary dies without calling Close (a panic, a test timeout, os.Exit).
//
// Pdeathsig fires when the OS thread that started the child exits, not the
// process; the Go runtime does not retire threads unless a goroutine exits
// while locked to one, which this package never does.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
