// Command infra is the gateway's CDK app. `go run ./infra` synthesizes the cloud assembly (needs
// node, not the CDK CLI); `cdk synth` / `cdk deploy` run it through cdk.json.
//
// Environment:
//   - CDK_OUTDIR: where the cloud assembly goes; default cdk.out (the CLI sets it itself).
//   - CDK_DEPLOY_ACCOUNT / CDK_DEPLOY_REGION, else CDK_DEFAULT_ACCOUNT / CDK_DEFAULT_REGION (set
//     by the CLI from the caller's credentials): the target environment. With neither, the stack
//     is environment-agnostic, which is all synth and the tests need.
//   - GATEWAY_LAMBDA_DIR: the functions' binaries, one <name>/bootstrap each; default bin/lambda,
//     where `make lambdas` builds them (`make synth` runs it first).
//   - Context key "env" (dev|prod, default dev) picks the stage: `cdk deploy -c env=prod`, or
//     CDK_CONTEXT_JSON='{"env":"prod"}' go run ./infra without the CLI. "otaAccounts" (account
//     ids allowed to send to the config-change queue) and "alarmEmails" are lists: JSON arrays,
//     or comma-separated with -c. See stacks.OptionsFromContext.
//
// Output: one stack, SatelliteGateway-<stage>, so dev and prod can share an account.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
	"github.com/aws/jsii-runtime-go"

	"github.com/satellite-gateway/gateway/infra/cdkapp"
	"github.com/satellite-gateway/gateway/infra/stacks"
)

// defaultOutdir is relative to the working directory, so `go run ./infra` from the repo root
// writes where `cdk` and .gitignore expect it.
const defaultOutdir = "cdk.out"

func main() {
	_, err := synth(os.Getenv, nil)
	// Close the jsii runtime (the node child process) before exiting: os.Exit would skip a
	// deferred call, and an unclosed runtime prints a stray "exited abnormally" message.
	jsii.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "infra:", err)
		os.Exit(1)
	}
}

// synth builds the app from the environment and writes the cloud assembly. getenv and context
// (below the CLI's context in precedence) are injected for tests: the jsii runtime is a node
// process started once, so a test cannot change the environment it reads, CDK_CONTEXT_JSON
// included, after the first CDK call.
func synth(getenv func(string) string, context map[string]any) (cxapi.CloudAssembly, error) {
	outdir := getenv("CDK_OUTDIR")
	if outdir == "" {
		outdir = defaultOutdir
	}
	props := &awscdk.AppProps{Outdir: jsii.String(outdir)}
	if context != nil {
		props.Context = &context
	}
	app := cdkapp.New(props)

	// Checked here as well as in the stack, to fail with a message rather than a panic.
	opts, err := stacks.OptionsFromContext(app)
	if err != nil {
		return nil, err
	}
	stacks.NewGatewayStack(app, "SatelliteGateway-"+string(opts.Stage), &stacks.GatewayStackProps{
		StackProps: awscdk.StackProps{Env: environment(getenv)},
		LambdaDir:  getenv("GATEWAY_LAMBDA_DIR"),
	})
	return app.Synth(nil), nil
}

// environment returns the deployment target from the standard CDK variables, or nil
// (environment-agnostic) when none is set: an Environment with empty strings would be taken
// literally as account "" and fail at deploy time.
func environment(getenv func(string) string) *awscdk.Environment {
	first := func(keys ...string) *string {
		for _, k := range keys {
			if v := getenv(k); v != "" {
				return jsii.String(v)
			}
		}
		return nil
	}
	account := first("CDK_DEPLOY_ACCOUNT", "CDK_DEFAULT_ACCOUNT")
	region := first("CDK_DEPLOY_REGION", "CDK_DEFAULT_REGION")
	if account == nil && region == nil {
		return nil
	}
	return &awscdk.Environment{Account: account, Region: region}
}
