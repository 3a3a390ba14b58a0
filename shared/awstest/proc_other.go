//go:build !unix

package awstest

import (
	"os"
	"syscall"
)

// procAttr has nothing to add where there are no process groups.
func procAttr() *syscall.SysProcAttr { return nil }

// terminate stops moto; without process groups only the process itself.
func terminate(p *os.Process) { _ = p.Kill() }

// kill stops moto; without process groups only the process itself.
func kill(p *os.Process) { _ = p.Kill() }
