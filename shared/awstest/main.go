// Package awstest runs the local AWS emulator (the moto server) for Go tests
// and creates per-test AWS resources on it.
//
// A package with integration tests calls [Main] from TestMain. It starts one
// moto server for the test binary and rewrites the process environment so
// that the SDK's standard settings (AWS_ENDPOINT_URL, AWS_REGION, static
// credentials) point at it before any test runs. Code under test then builds
// its clients through shared/awsconfig exactly as in production, with no test
// switch to forget:
//
//	func TestMain(m *testing.M) { awstest.Main(m) }
//
//	func TestIngest(t *testing.T) {
//		t.Parallel()
//		bucket := awstest.Bucket(t)
//		q := awstest.Queue(t, localaws.QueueSpec{MaxReceiveCount: 3})
//		awstest.NotifyQueue(t, bucket, q, "uploads/")
//		...
//	}
//
// Resources get unique names and are deleted by t.Cleanup, so tests may run
// in parallel. When moto is missing, Main fails the test binary with a
// message to run `make moto`: integration tests never skip.
//
// [Start] runs a server without touching the environment, for a tool
// (cmd/localdev) or an end-to-end test that hands [Server.Environ] to the
// binaries it runs. The resources themselves are defined in shared/localaws.
package awstest

import (
	"fmt"
	"os"
	"testing"
)

// Main starts a moto server, points the process environment at it, runs the
// tests, stops the server and exits with the tests' status. Call it from
// TestMain.
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is [Main] without the exit, for a TestMain that has more to set up or
// tear down. It returns the exit code; a server that fails to start or to
// stop makes it non-zero.
func Run(m *testing.M) int {
	srv, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "awstest:", err)
		return 1
	}
	code := run(m, srv)
	if err := srv.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "awstest: stop moto server:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func run(m *testing.M, srv *Server) int {
	if err := srv.SetProcessEnv(); err != nil {
		fmt.Fprintln(os.Stderr, "awstest: point the environment at moto:", err)
		return 1
	}
	code := m.Run()
	if code != 0 {
		// The emulator's log is often the explanation (a 500 with a Python
		// traceback, an unimplemented call).
		fmt.Fprintf(os.Stderr, "awstest: tests failed; moto server output (tail):\n%s\n", srv.Output())
	}
	return code
}
