//go:build unix

package awstest

import (
	"errors"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// TestStartClose starts a second, private server and checks that Close
// leaves no process and no listener behind.
func TestStartClose(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	pid := s.cmd.Process.Pid
	resp, err := http.Get(s.Endpoint() + "/moto-api/")
	if err != nil {
		s.Close()
		t.Fatalf("server not answering after Start: %v", err)
	}
	resp.Body.Close()

	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// Signal 0 probes for existence; the group is gone too.
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d after Close: kill(0) = %v, want ESRCH", pid, err)
	}
	client := http.Client{Timeout: time.Second}
	if resp, err := client.Get(s.Endpoint() + "/moto-api/"); err == nil {
		resp.Body.Close()
		t.Error("server still answering after Close")
	}
}
