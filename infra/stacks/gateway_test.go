package stacks_test

import (
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
	cdktest.Must(t, func() { stack = stacks.NewGatewayStack(app, "Gateway", nil) })
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
		{"prod", obj{stacks.StageContextKey: "prod"}, "Retain", 0, true, "prod"},
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
				tmpl.HasOutput(jsii.String("BucketName"), obj{"Value": obj{"Ref": assertions.Match_AnyValue()}})
			})
			if got := *stack.TerminationProtection(); got != tt.protected {
				t.Errorf("TerminationProtection = %v, want %v", got, tt.protected)
			}
		})
	}
}

func TestExplicitStackPropsWin(t *testing.T) {
	app := cdktest.NewApp(t, obj{stacks.StageContextKey: "prod"})
	var stack awscdk.Stack
	cdktest.Must(t, func() {
		stack = stacks.NewGatewayStack(app, "Gateway", &stacks.GatewayStackProps{
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
// template, so it also covers buckets that no construct test knows about (a later construct's, or
// one CDK adds itself).
func TestPolicies(t *testing.T) {
	for _, stage := range []stacks.Stage{stacks.StageDev, stacks.StageProd} {
		t.Run(string(stage), func(t *testing.T) {
			_, tmpl := synth(t, obj{stacks.StageContextKey: string(stage)})
			findings, err := policy.Check(cdktest.JSON(t, tmpl))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range findings {
				t.Error(f)
			}
			// Guard against a vacuous pass, e.g. if the template came back empty.
			var buckets int
			cdktest.Must(t, func() {
				buckets = len(*tmpl.FindResources(jsii.String("AWS::S3::Bucket"), nil))
			})
			if buckets == 0 {
				t.Error("no AWS::S3::Bucket in the template: the bucket rules checked nothing")
			}
		})
	}
}
