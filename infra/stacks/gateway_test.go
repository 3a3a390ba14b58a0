package stacks_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/satellite-gateway/gateway/infra/internal/cdktest"
	"github.com/satellite-gateway/gateway/infra/internal/policy"
	"github.com/satellite-gateway/gateway/infra/stacks"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

type obj = map[string]any

// synth builds the gateway stack in an app with the given context, as `cdk synth -c` would.
func synth(t *testing.T, context map[string]any) (awscdk.Stack, assertions.Template) {
	t.Helper()
	app := cdktest.NewApp(t, context)
	var stack awscdk.Stack
	lambdas := cdktest.LambdaDir(t)
	cdktest.Must(t, func() {
		stack = stacks.NewGatewayStack(app, "Gateway", &stacks.GatewayStackProps{LambdaDir: lambdas})
	})
	return stack, cdktest.Template(t, stack)
}

func TestStageSettings(t *testing.T) {
	tests := []struct {
		name       string
		context    map[string]any
		deletion   string // the bucket's DeletionPolicy and UpdateReplacePolicy
		autoDelete int    // Custom::S3AutoDeleteObjects resources
		protected  bool   // stack termination protection
		stageTag   string
	}{
		{"no context means dev", nil, "Delete", 1, false, "dev"},
		{"dev", obj{stacks.StageContextKey: "dev"}, "Delete", 1, false, "dev"},
		{"prod", cdktest.StageContext(stacks.StageProd), "Retain", 0, true, "prod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stack, tmpl := synth(t, tt.context)
			cdktest.Must(t, func() {
				tmpl.HasResource(jsii.String("AWS::S3::Bucket"), obj{
					"DeletionPolicy":      tt.deletion,
					"UpdateReplacePolicy": tt.deletion,
					"Properties": obj{"Tags": assertions.Match_ArrayWith(&[]any{
						obj{"Key": "stage", "Value": tt.stageTag},
					})},
				})
				tmpl.ResourceCountIs(jsii.String("Custom::S3AutoDeleteObjects"), jsii.Number(tt.autoDelete))
				tmpl.HasResource(jsii.String("AWS::DynamoDB::Table"), obj{
					"DeletionPolicy": tt.deletion,
					"Properties":     obj{"DeletionProtectionEnabled": tt.protected},
				})
				tmpl.HasOutput(jsii.String("BucketName"), obj{"Value": obj{"Ref": assertions.Match_AnyValue()}})
			})
			if got := *stack.TerminationProtection(); got != tt.protected {
				t.Errorf("TerminationProtection = %v, want %v", got, tt.protected)
			}
		})
	}
}

func TestExplicitStackPropsWin(t *testing.T) {
	app := cdktest.NewApp(t, cdktest.StageContext(stacks.StageProd))
	var stack awscdk.Stack
	cdktest.Must(t, func() {
		stack = stacks.NewGatewayStack(app, "Gateway", &stacks.GatewayStackProps{
			LambdaDir:  cdktest.LambdaDir(t),
			StackProps: awscdk.StackProps{TerminationProtection: jsii.Bool(false)},
		})
	})
	if *stack.TerminationProtection() {
		t.Error("TerminationProtection: the caller's false was overridden by the stage")
	}
}

func TestUnknownStageIsRefused(t *testing.T) {
	for name, value := range map[string]any{"typo": "prdo", "not a string": true} {
		t.Run(name, func(t *testing.T) {
			app := cdktest.NewApp(t, obj{stacks.StageContextKey: value})
			if _, err := stacks.StageFromContext(app); err == nil {
				t.Errorf("StageFromContext(%v): want an error", value)
			}
			msg := cdktest.Panics(t, func() { stacks.NewGatewayStack(app, "Gateway", nil) })
			if !strings.Contains(msg, `context "env"`) {
				t.Errorf("panic %q: want it to name the context key", msg)
			}
		})
	}
}

// TestPolicies runs the project's template rules over every stage's template. It walks the whole
// template, so it also covers resources that no construct test knows about (a later construct's,
// or one CDK adds itself). The cross-account statement is on, since it adds a principal.
func TestPolicies(t *testing.T) {
	for _, stage := range []stacks.Stage{stacks.StageDev, stacks.StageProd} {
		t.Run(string(stage), func(t *testing.T) {
			ctx := cdktest.StageContext(stage)
			ctx[stacks.OTAAccountsContextKey] = "111111111111"
			_, tmpl := synth(t, ctx)
			findings, err := policy.Check(cdktest.JSON(t, tmpl))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range findings {
				t.Error(f)
			}
			// Guard against a vacuous pass, e.g. if the template came back empty.
			for _, typ := range []string{"AWS::S3::Bucket", "AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::SNS::Topic"} {
				var n int
				cdktest.Must(t, func() { n = len(*tmpl.FindResources(jsii.String(typ), nil)) })
				if n == 0 {
					t.Errorf("no %s in the template: its rules checked nothing", typ)
				}
			}
		})
	}
}

// TestEveryQueueIsWatched checks that each work queue has an age alarm and each dead-letter queue
// an alarm, whatever construct made them, and that every alarm notifies the alarm topic.
func TestEveryQueueIsWatched(t *testing.T) {
	_, tmpl := synth(t, nil)
	var queues, alarms map[string]*map[string]any
	cdktest.Must(t, func() {
		queues = *tmpl.FindResources(jsii.String("AWS::SQS::Queue"), nil)
		alarms = *tmpl.FindResources(jsii.String("AWS::CloudWatch::Alarm"), nil)
	})
	// watched[queue logical id] = the metrics alarmed on.
	watched := map[string][]string{}
	for id, a := range alarms {
		p := (*a)["Properties"].(map[string]any)
		dims, _ := p["Dimensions"].([]any)
		for _, d := range dims {
			v, _ := d.(map[string]any)["Value"].(map[string]any)
			if ga, ok := v["Fn::GetAtt"].([]any); ok {
				watched[ga[0].(string)] = append(watched[ga[0].(string)], p["MetricName"].(string))
			}
		}
		actions, _ := p["AlarmActions"].([]any)
		if len(actions) != 1 || !strings.HasPrefix(fmt.Sprint(actions[0]), "map[Ref:MonitoringAlarms") {
			t.Errorf("alarm %s: actions %v, want the alarm topic", id, actions)
		}
	}
	if len(queues) != 6 {
		t.Errorf("%d queues, want 3 work queues and their 3 dead-letter queues", len(queues))
	}
	for id, q := range queues {
		p, _ := (*q)["Properties"].(map[string]any)
		want := "ApproximateNumberOfMessagesVisible" // a dead-letter queue: alarm on any message
		if _, isWork := p["RedrivePolicy"]; isWork {
			want = "ApproximateAgeOfOldestMessage"
		}
		if !slices.Contains(watched[id], want) {
			t.Errorf("queue %s: no %s alarm (alarms on it: %v)", id, want, watched[id])
		}
	}
}

func TestOutputs(t *testing.T) {
	_, tmpl := synth(t, nil)
	cdktest.Must(t, func() {
		for _, name := range []string{
			"BucketName", "TableName", "IngestQueueUrl", "ConfigChangeQueueUrl", "ConfigChangeQueueArn",
			"AssemblyQueueUrl", "AlarmTopicArn", "DashboardName", "ApiUrl",
		} {
			tmpl.HasOutput(jsii.String(name), obj{"Value": assertions.Match_AnyValue()})
		}
	})
}

func TestOTAAccountsContext(t *testing.T) {
	statement := func() obj {
		return obj{"PolicyDocument": obj{"Statement": assertions.Match_ArrayWith(&[]any{
			assertions.Match_ObjectLike(&obj{"Sid": "CrossAccountPublish"}),
		})}}
	}
	tests := []struct {
		name  string
		value any
		want  int // CrossAccountPublish statements
	}{
		{"absent: the queue stays in-account", nil, 0},
		{"comma-separated, as from -c", "111111111111, 222222222222", 1},
		{"JSON array, as from cdk.json", []any{"111111111111"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := obj{}
			if tt.value != nil {
				ctx[stacks.OTAAccountsContextKey] = tt.value
			}
			_, tmpl := synth(t, ctx)
			cdktest.Must(t, func() {
				tmpl.ResourcePropertiesCountIs(jsii.String("AWS::SQS::QueuePolicy"), statement(), jsii.Number(tt.want))
				if tt.want > 0 {
					// On the config-change queue, and nowhere else.
					tmpl.HasResourceProperties(jsii.String("AWS::SQS::QueuePolicy"), obj{
						"Queues":         []any{obj{"Ref": assertions.Match_StringLikeRegexp(jsii.String("^ConfigChangesQueue"))}},
						"PolicyDocument": statement()["PolicyDocument"],
					})
				}
			})
		})
	}
}

func TestBadContextIsRefused(t *testing.T) {
	tests := []struct {
		name string
		ctx  obj
		want string
	}{
		{"account id too short", obj{stacks.OTAAccountsContextKey: "12345"}, `"12345" is not a 12-digit AWS account id`},
		{"account id not a string", obj{stacks.OTAAccountsContextKey: []any{111111111111.0}}, "want strings"},
		{"list of the wrong type", obj{stacks.AlarmEmailsContextKey: true}, "want a list"},
		{"bad e-mail", obj{stacks.AlarmEmailsContextKey: "ops"}, `alarm e-mail "ops"`},
		{"prod without the mTLS keys", obj{stacks.StageContextKey: "prod"}, "stage prod needs the API's mTLS domain"},
		{"an mTLS domain without a certificate", obj{
			stacks.APIDomainContextKey: "gateway.example.com", stacks.TruststoreURIContextKey: "s3://trust-store/k.pem",
		}, "certificate ARN"},
		{"a certificate ARN that is a number", obj{stacks.APICertificateContextKey: 42.0}, "want a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := cdktest.NewApp(t, tt.ctx)
			msg := cdktest.Panics(t, func() { stacks.NewGatewayStack(app, "Gateway", nil) })
			if !strings.Contains(msg, tt.want) {
				t.Errorf("panic %q: want %q", msg, tt.want)
			}
		})
	}
}

func TestMTLSContext(t *testing.T) {
	t.Run("prod with the domain keys: mTLS domain, execute-api off, URL output", func(t *testing.T) {
		_, tmpl := synth(t, cdktest.StageContext(stacks.StageProd))
		cdktest.Must(t, func() {
			tmpl.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::DomainName"), obj{
				"DomainName":              "gateway.example.com",
				"MutualTlsAuthentication": obj{"TruststoreUri": "s3://example-truststore/factories.pem"},
			})
			tmpl.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Api"), obj{"DisableExecuteApiEndpoint": true})
			tmpl.HasOutput(jsii.String("ApiUrl"), obj{"Value": "https://gateway.example.com"})
			tmpl.HasOutput(jsii.String("ApiRegionalDomainName"), obj{"Value": assertions.Match_AnyValue()})
		})
	})
	t.Run("dev without them: the execute-api endpoint", func(t *testing.T) {
		_, tmpl := synth(t, nil)
		cdktest.Must(t, func() {
			tmpl.ResourceCountIs(jsii.String("AWS::ApiGatewayV2::DomainName"), jsii.Number(0))
			tmpl.HasOutput(jsii.String("ApiUrl"), obj{"Value": assertions.Match_AnyValue()})
		})
	})
}
