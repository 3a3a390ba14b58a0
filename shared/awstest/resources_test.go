package awstest

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
)

// fatalRecorder is a testing.TB whose Fatal stops only the helper under
// test, so the refusal itself can be checked.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatal(args ...any) { f.msg = fmt.Sprint(args...); runtime.Goexit() }

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestClientsRefuseRealAWS checks the guard that keeps a test without Main
// (or with an endpoint missing for one service) away from a real account.
func TestClientsRefuseRealAWS(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "")
	if err := os.Unsetenv("AWS_ENDPOINT_URL"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1")
	t.Setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:1") // DynamoDB has none

	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Clients(rec)
	}()
	<-done
	if !strings.Contains(rec.msg, "no endpoint configured for DynamoDB") {
		t.Errorf("Clients without a DynamoDB endpoint: Fatal message %q, want a refusal naming DynamoDB", rec.msg)
	}
}
