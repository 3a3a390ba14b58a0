//go:build unix

package awstest

import (
	"os"
	"syscall"
)

// terminate asks moto's whole process group to stop.
func terminate(p *os.Process) { _ = syscall.Kill(-p.Pid, syscall.SIGTERM) }

// kill stops moto's whole process group for good.
func kill(p *os.Process) { _ = syscall.Kill(-p.Pid, syscall.SIGKILL) }
