package function_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/satellite-gateway/gateway/infra/constructs/function"
	"github.com/satellite-gateway/gateway/infra/constructs/monitoring"
	"github.com/satellite-gateway/gateway/infra/constructs/queues"
	"github.com/satellite-gateway/gateway/infra/internal/cdktest"
	"github.com/satellite-gateway/gateway/infra/internal/policy"
	"github.com/satellite-gateway/gateway/shared/resources"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

type obj = map[string]any
type arr = []any

func newStack(t *testing.T) awscdk.Stack {
	return awscdk.NewStack(cdktest.NewApp(t, nil), jsii.String("Test"), nil)
}

func TestFunction(t *testing.T) {
	stack := newStack(t)
	function.New(stack, "Ingest", &function.Props{
		AssetDir:    cdktest.LambdaAsset(t),
		Description: "unpacks uploads",
		Timeout:     5 * time.Minute,
		Environment: map[string]string{"TABLE": "t"},
	})
	tmpl := cdktest.Template(t, stack)
	cdktest.Must(t, func() {
		tmpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), obj{
			"Runtime":       "provided.al2023",
			"Architectures": arr{"arm64"},
			"Handler":       "bootstrap",
			"Timeout":       300,
			"MemorySize":    function.DefaultMemoryMB,
			"Environment":   obj{"Variables": obj{"TABLE": "t"}},
			"LoggingConfig": obj{
				"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "WARN",
				"LogGroup": obj{"Ref": assertions.Match_StringLikeRegexp(jsii.String("^IngestLogs"))},
			},
			"FunctionName": assertions.Match_Absent(),
		})
		tmpl.HasResource(jsii.String("AWS::Logs::LogGroup"), obj{
			"Properties":     obj{"RetentionInDays": 30},
			"DeletionPolicy": "Retain",
		})
		// The role may write its own log group and nothing else until something is granted:
		// no AWS managed policy, whose log permissions span the account.
		tmpl.HasResourceProperties(jsii.String("AWS::IAM::Role"), obj{
			"ManagedPolicyArns": assertions.Match_Absent(),
		})
		tmpl.ResourceCountIs(jsii.String("AWS::IAM::Policy"), jsii.Number(1))
		tmpl.HasResourceProperties(jsii.String("AWS::IAM::Policy"), obj{
			"PolicyDocument": obj{"Statement": arr{obj{
				"Effect":   "Allow",
				"Action":   arr{"logs:CreateLogStream", "logs:PutLogEvents"},
				"Resource": obj{"Fn::GetAtt": arr{assertions.Match_StringLikeRegexp(jsii.String("^IngestLogs")), "Arn"}},
			}}},
		})
	})
}

func TestConsume(t *testing.T) {
	for _, spec := range resources.Queues() {
		t.Run(spec.Name, func(t *testing.T) {
			stack := newStack(t)
			q := queues.New(stack, "Work", spec)
			fn := function.New(stack, "Consumer", &function.Props{AssetDir: cdktest.LambdaAsset(t), Timeout: spec.ConsumerTimeout})
			fn.Consume(q)
			tmpl := cdktest.Template(t, stack)
			window := any(assertions.Match_Absent())
			if spec.MaxBatchingWindow > 0 {
				window = spec.MaxBatchingWindow.Seconds()
			}
			cdktest.Must(t, func() {
				tmpl.HasResourceProperties(jsii.String("AWS::Lambda::EventSourceMapping"), obj{
					"EventSourceArn":                 obj{"Fn::GetAtt": arr{assertions.Match_StringLikeRegexp(jsii.String("^WorkQueue")), "Arn"}},
					"BatchSize":                      spec.BatchSize,
					"MaximumBatchingWindowInSeconds": window,
					"ScalingConfig":                  obj{"MaximumConcurrency": spec.MaxConcurrency},
					"FunctionResponseTypes":          arr{"ReportBatchItemFailures"},
				})
				// Consuming is granted on this queue only, with named actions.
				tmpl.HasResourceProperties(jsii.String("AWS::IAM::Policy"), obj{
					"PolicyDocument": obj{"Statement": assertions.Match_ArrayWith(&arr{obj{
						"Effect": "Allow",
						"Action": arr{
							"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
							"sqs:GetQueueUrl", "sqs:ReceiveMessage",
						},
						"Resource": obj{"Fn::GetAtt": arr{assertions.Match_StringLikeRegexp(jsii.String("^WorkQueue")), "Arn"}},
					}})},
				})
			})
		})
	}
}

func TestConsumeRefusesAMismatchedTimeout(t *testing.T) {
	stack := newStack(t)
	q := queues.New(stack, "Work", resources.Ingest)
	fn := function.New(stack, "Consumer", &function.Props{AssetDir: cdktest.LambdaAsset(t), Timeout: 14 * time.Minute})
	msg := cdktest.Panics(t, func() { fn.Consume(q) })
	if !strings.Contains(msg, "sized for a consumer timeout of 5m0s") {
		t.Errorf("panic %q: want it to name the queue's consumer timeout", msg)
	}
}

func TestInvalidProps(t *testing.T) {
	tests := []struct {
		name  string
		props function.Props
		want  string
	}{
		{"no binary", function.Props{AssetDir: t.TempDir(), Timeout: time.Minute}, "run `make lambdas`"},
		{"no timeout", function.Props{AssetDir: cdktest.LambdaAsset(t)}, "timeout 0s"},
		{"timeout past 15 minutes", function.Props{AssetDir: cdktest.LambdaAsset(t), Timeout: 16 * time.Minute}, "timeout 16m0s"},
		{"too little memory", function.Props{AssetDir: cdktest.LambdaAsset(t), Timeout: time.Minute, MemoryMB: 64}, "memory 64 MB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := cdktest.Panics(t, func() { function.New(newStack(t), "Fn", &tt.props) })
			if !strings.Contains(msg, tt.want) {
				t.Errorf("panic %q: want %q", msg, tt.want)
			}
		})
	}
}

// TestConsumerPassesPolicies runs the project's template rules over a watched consumer: its
// grants have no wildcards, its mapping reports partial failures and its queue's visibility
// covers its timeout.
func TestConsumerPassesPolicies(t *testing.T) {
	stack := newStack(t)
	q := queues.New(stack, "Work", resources.Ingest)
	fn := function.New(stack, "Consumer", &function.Props{AssetDir: cdktest.LambdaAsset(t), Timeout: resources.Ingest.ConsumerTimeout})
	fn.Consume(q)
	mon := monitoring.New(stack, "Monitoring", nil)
	mon.WatchQueue("work", q)
	mon.WatchFunction("consumer", fn.Function())
	findings, err := policy.Check(cdktest.JSON(t, cdktest.Template(t, stack)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Error(f)
	}
}

// TestAllow: grants are the named actions on the named resources, with conditions when given.
func TestAllow(t *testing.T) {
	stack := newStack(t)
	fn := function.New(stack, "Fn", &function.Props{AssetDir: cdktest.LambdaAsset(t), Timeout: time.Minute})
	fn.Allow([]string{"dynamodb:GetItem"}, jsii.String("arn:aws:dynamodb:eu-central-1:111111111111:table/t"))
	fn.AllowIf(map[string]any{"StringLike": map[string]any{"s3:prefix": []string{"uploads/*"}}},
		[]string{"s3:ListBucket"}, jsii.String("arn:aws:s3:::b"))
	tmpl := cdktest.Template(t, stack)
	cdktest.Must(t, func() {
		tmpl.HasResourceProperties(jsii.String("AWS::IAM::Policy"), obj{
			"PolicyDocument": obj{"Statement": assertions.Match_ArrayWith(&arr{
				obj{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "arn:aws:dynamodb:eu-central-1:111111111111:table/t"},
				obj{
					"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
					"Condition": obj{"StringLike": obj{"s3:prefix": arr{"uploads/*"}}},
				},
			})},
		})
	})
	if msg := cdktest.Panics(t, func() { fn.Allow(nil, jsii.String("arn:aws:s3:::b")) }); !strings.Contains(msg, "needs actions") {
		t.Errorf("Allow without actions: panic %q", msg)
	}
}
