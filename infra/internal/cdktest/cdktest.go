// Package cdktest holds what the CDK template tests share: one jsii runtime per test binary,
// apps built like the real one, and failed assertions reported as test failures instead of
// panics.
package cdktest

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/satellite-gateway/gateway/infra/cdkapp"
	"github.com/satellite-gateway/gateway/infra/stacks"
)

// Main runs the package's tests, then stops the jsii runtime (a node child process shared by
// every test in the binary) once. Call it from TestMain. Closing per test would restart node,
// seconds each time.
//
// Under the race detector it leaves the runtime to die with the test binary instead:
// jsii-runtime-go v1.119.0's Close calls exec.Cmd.Wait while its own watcher goroutine is in Wait
// too, a real data race that would fail `go test -race` after every test had passed. The same
// race is why a plain run can still print a stray "Runtime process exited abnormally: waitid: no
// child processes" after the results; it is harmless.
func Main(m *testing.M) {
	code := m.Run()
	if !raceEnabled {
		jsii.Close()
	}
	os.Exit(code)
}

// NewApp returns an app built as ./infra builds it (same feature flags) with context on top,
// writing into a per-test temporary directory rather than cdk.out.
func NewApp(t testing.TB, context map[string]any) awscdk.App {
	t.Helper()
	props := &awscdk.AppProps{Outdir: jsii.String(t.TempDir())}
	if context != nil {
		props.Context = &context
	}
	return cdkapp.New(props)
}

// Template returns the synthesized template of stack for the assertions library.
func Template(t testing.TB, stack awscdk.Stack) assertions.Template {
	t.Helper()
	var tmpl assertions.Template
	Must(t, func() { tmpl = assertions.Template_FromStack(stack, nil) })
	return tmpl
}

// JSON returns tmpl as CloudFormation JSON, for checks that walk the whole template.
func JSON(t testing.TB, tmpl assertions.Template) []byte {
	t.Helper()
	b, err := json.Marshal(tmpl.ToJSON())
	if err != nil {
		t.Fatalf("marshal template: %v", err)
	}
	return b
}

// Must runs fn, which calls the assertions library (or anything else that reports failure by
// panicking, as every jsii call does), and fails the test with the panic's message. Without it a
// failed match aborts the whole test binary with a goroutine dump and skips the other tests.
func Must(t testing.TB, fn func()) {
	t.Helper()
	if msg, failed := recovered(fn); failed {
		t.Fatal(msg)
	}
}

// Panics runs fn and returns the message it panicked with, failing the test if it did not:
// for checking that a construct rejects invalid props.
func Panics(t testing.TB, fn func()) string {
	t.Helper()
	msg, failed := recovered(fn)
	if !failed {
		t.Fatal("want a panic, got none")
	}
	return msg
}

func recovered(fn func()) (msg string, panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			msg, panicked = fmt.Sprint(r), true
		}
	}()
	fn()
	return "", false
}

// LambdaAsset returns a folder holding a stand-in `bootstrap`, as `make lambdas` leaves one per
// function: the function construct only packages the folder, so the binary's content does not
// matter to a template.
func LambdaAsset(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// LambdaDir returns a folder laid out as `make lambdas` leaves bin/lambda: one stand-in
// `bootstrap` per function the gateway stack deploys.
func LambdaDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range stacks.Functions() {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "bootstrap"), []byte("binary"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// MTLSContext is a valid set of the API's custom-domain context keys, which prod requires.
func MTLSContext() map[string]any {
	return map[string]any{
		stacks.APIDomainContextKey:      "gateway.example.com",
		stacks.APICertificateContextKey: "arn:aws:acm:eu-central-1:111111111111:certificate/0b1e3b7a-7c55-4f2e-9e55-2a1b7f0c9d11",
		stacks.TruststoreURIContextKey:  "s3://example-truststore/factories.pem",
	}
}

// StageContext is the context that synthesizes stage: the stage key, plus MTLSContext for prod.
func StageContext(stage stacks.Stage) map[string]any {
	ctx := map[string]any{stacks.StageContextKey: string(stage)}
	if stage == stacks.StageProd {
		maps.Copy(ctx, MTLSContext())
	}
	return ctx
}
