// Package function is one of the gateway's Lambda functions: a Go binary (functions/<name>,
// built by `make lambdas` for arm64) on the provided.al2023 runtime, with its own log group,
// structured JSON logs and, for queue consumers, an event source mapping that reports partial
// batch failures with the batch and concurrency of its queue's shared/resources spec.
//
// The binary is built by the Makefile rather than bundled by CDK: the Go Lambda alpha construct
// is not served here, and a plain `go build` is the same command CI, `make dev` and a developer
// run, so what is tested is what is deployed.
package function

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/satellite-gateway/gateway/infra/constructs/queues"
)

// Defaults for Props' zero values.
const (
	DefaultMemoryMB  = 256
	DefaultRetention = awslogs.RetentionDays_ONE_MONTH
)

// Props configures a Function.
type Props struct {
	// AssetDir is the folder holding the function's `bootstrap` binary (bin/lambda/<name>).
	// It must exist at synth time; `make lambdas` builds it.
	AssetDir string
	// Description is shown in the console; say what triggers the function.
	Description string
	// Timeout of one invocation. A queue consumer's must equal its queue's ConsumerTimeout.
	Timeout time.Duration
	// MemoryMB is the memory size, and with it the CPU share. Zero means DefaultMemoryMB.
	MemoryMB int
	// Environment variables: resource names and settings, never secrets.
	Environment map[string]string
	// LogRetention of the function's log group. Empty means DefaultRetention.
	LogRetention awslogs.RetentionDays
	// LogRemovalPolicy of the log group. Empty means RETAIN.
	LogRemovalPolicy awscdk.RemovalPolicy
}

// Function is a Lambda function and its log group.
type Function struct {
	constructs.Construct
	fn awslambda.Function
}

// New adds the function under scope. It panics on invalid props (missing binary included), as
// CDK constructs do.
func New(scope constructs.Construct, id string, props *Props) *Function {
	if props == nil {
		panic(fmt.Sprintf("function %s: no props", id))
	}
	p := *props
	if err := p.validate(); err != nil {
		panic(fmt.Sprintf("function %s: %v", id, err))
	}
	if p.MemoryMB == 0 {
		p.MemoryMB = DefaultMemoryMB
	}
	if p.LogRetention == "" {
		p.LogRetention = DefaultRetention
	}
	if p.LogRemovalPolicy == "" {
		p.LogRemovalPolicy = awscdk.RemovalPolicy_RETAIN
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	// An explicit log group, rather than the one Lambda creates on first log: it gets a
	// retention (Lambda's own never expires) and is deleted or kept with the stack.
	logs := awslogs.NewLogGroup(c, jsii.String("Logs"), &awslogs.LogGroupProps{
		Retention:     p.LogRetention,
		RemovalPolicy: p.LogRemovalPolicy,
	})
	// An explicit role instead of Lambda's default one, whose AWS managed policy
	// (AWSLambdaBasicExecutionRole) may create and write any log group in the account: this one
	// writes only the function's own group. Every other permission comes from Allow.
	role := awsiam.NewRole(c, jsii.String("Role"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
	})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents"),
		Resources: &[]*string{logs.LogGroupArn()},
	}))
	env := map[string]*string{}
	for k, v := range p.Environment {
		env[k] = jsii.String(v)
	}
	fn := awslambda.NewFunction(c, jsii.String("Function"), &awslambda.FunctionProps{
		// No FunctionName: generated, so stages share an account.
		Description: jsii.String(p.Description),
		Runtime:     awslambda.Runtime_PROVIDED_AL2023(),
		// Graviton: cheaper per GB-second, and Go cross-compiles to it for free.
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String("bootstrap"),
		Code:         awslambda.Code_FromAsset(jsii.String(p.AssetDir), nil),
		Timeout:      awscdk.Duration_Seconds(jsii.Number(p.Timeout.Seconds())),
		MemorySize:   jsii.Number(float64(p.MemoryMB)),
		Environment:  &env,
		LogGroup:     logs,
		Role:         role,
		// Lambda's JSON log format: the platform's own lines and the functions' log/slog JSON
		// lines land as JSON, filterable by level, in the same group.
		LoggingFormat:         awslambda.LoggingFormat_JSON,
		ApplicationLogLevelV2: awslambda.ApplicationLogLevel_INFO,
		SystemLogLevelV2:      awslambda.SystemLogLevel_WARN,
		// The gateway's functions are all started by queues or the API: Lambda's own async
		// retries and destinations are never involved, so none are configured.
		RecursiveLoop: awslambda.RecursiveLoop_TERMINATE,
	})
	return &Function{Construct: c, fn: fn}
}

func (p Props) validate() error {
	if p.Timeout < time.Second || p.Timeout > 15*time.Minute || p.Timeout%time.Second != 0 {
		return fmt.Errorf("timeout %v: want whole seconds from 1s to 15m", p.Timeout)
	}
	if p.MemoryMB != 0 && (p.MemoryMB < 128 || p.MemoryMB > 10240) {
		return fmt.Errorf("memory %d MB: want 128 to 10240", p.MemoryMB)
	}
	if _, err := os.Stat(filepath.Join(p.AssetDir, "bootstrap")); err != nil {
		return fmt.Errorf("binary: %w (run `make lambdas`)", err)
	}
	return nil
}

// Function is the Lambda function, for grants, routes and alarms.
func (f *Function) Function() awslambda.Function { return f.fn }

// Allow lets the function call actions on resources (ARNs, or ARN patterns confined to a
// prefix the function owns). Grants are spelled out rather than taken from CDK's Grant*
// helpers, which add actions the functions never call (Scan, DescribeTable, s3:GetObject*),
// so the role says exactly what the code does.
func (f *Function) Allow(actions []string, resources ...*string) {
	f.AllowIf(nil, actions, resources...)
}

// AllowIf is Allow with IAM conditions, e.g. s3:ListBucket confined to a prefix with
// {"StringLike": {"s3:prefix": ["uploads/*"]}}.
func (f *Function) AllowIf(conditions map[string]any, actions []string, resources ...*string) {
	if len(actions) == 0 || len(resources) == 0 {
		panic(fmt.Sprintf("function %s: Allow needs actions and resources", *f.Node().Id()))
	}
	props := &awsiam.PolicyStatementProps{
		Actions:   jsii.Strings(actions...),
		Resources: &resources,
	}
	if conditions != nil {
		props.Conditions = &conditions
	}
	f.fn.AddToRolePolicy(awsiam.NewPolicyStatement(props))
}

// Consume subscribes the function to w's queue with w's batch size, batching window and
// maximum concurrency, reporting partial batch failures (the handler names the messages that
// failed; the rest are deleted). It panics if the function's timeout is not the queue's
// ConsumerTimeout: the queue's visibility timeout was sized for that timeout.
func (f *Function) Consume(w *queues.WorkQueue) {
	spec := w.Spec()
	if got := time.Duration(*f.fn.Timeout().ToSeconds(nil)) * time.Second; got != spec.ConsumerTimeout {
		panic(fmt.Sprintf("function %s: timeout %v, but queue %s is sized for a consumer timeout of %v",
			*f.Node().Id(), got, spec.Name, spec.ConsumerTimeout))
	}
	props := &awslambdaeventsources.SqsEventSourceProps{
		BatchSize:               jsii.Number(float64(spec.BatchSize)),
		MaxConcurrency:          jsii.Number(float64(spec.MaxConcurrency)),
		ReportBatchItemFailures: jsii.Bool(true),
	}
	if spec.MaxBatchingWindow > 0 {
		props.MaxBatchingWindow = awscdk.Duration_Seconds(jsii.Number(spec.MaxBatchingWindow.Seconds()))
	}
	// The event source grants the function receive, delete and change-visibility on this queue
	// only: named actions on one ARN.
	f.fn.AddEventSource(awslambdaeventsources.NewSqsEventSource(w.Queue(), props))
}
