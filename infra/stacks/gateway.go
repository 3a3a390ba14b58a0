// Package stacks assembles the gateway's constructs into deployable stacks, and maps the stage
// chosen in the CDK context (StageContextKey) to the settings that differ between dev and prod.
package stacks

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/satellite-gateway/gateway/infra/constructs/storage"
)

// GatewayStackProps configures NewGatewayStack. The stage is not a field: it comes from the
// context, so that the same code deploys dev and prod.
type GatewayStackProps struct {
	awscdk.StackProps
}

// NewGatewayStack defines the gateway backend: for now its storage. It reads the stage from
// scope's context and panics if that is invalid (callers that want a clean error check
// StageFromContext first, as ./infra does). TerminationProtection and Description, when not set
// in props, come from the stage.
func NewGatewayStack(scope constructs.Construct, id string, props *GatewayStackProps) awscdk.Stack {
	stage, err := StageFromContext(scope)
	if err != nil {
		panic(fmt.Sprintf("stack %s: %v", id, err))
	}
	settings := stage.Settings()

	var sprops awscdk.StackProps
	if props != nil {
		sprops = props.StackProps
	}
	if sprops.TerminationProtection == nil {
		sprops.TerminationProtection = jsii.Bool(settings.TerminationProtection)
	}
	if sprops.Description == nil {
		sprops.Description = jsii.String(fmt.Sprintf("Satellite gateway backend (%s)", stage))
	}
	stack := awscdk.NewStack(scope, jsii.String(id), &sprops)
	// Tags reach every taggable resource: cost reports and console filters by project and stage.
	awscdk.Tags_Of(stack).Add(jsii.String("project"), jsii.String("satellite-gateway"), nil)
	awscdk.Tags_Of(stack).Add(jsii.String("stage"), jsii.String(string(stage)), nil)

	store := storage.New(stack, "Storage", &storage.Props{
		RemovalPolicy:     settings.RemovalPolicy,
		AutoDeleteObjects: settings.AutoDeleteObjects,
	})

	// The platform team and local scripts find the bucket through the stack's outputs, since
	// its name is generated.
	awscdk.NewCfnOutput(stack, jsii.String("BucketName"), &awscdk.CfnOutputProps{
		Description: jsii.String("Bucket for satellite uploads and updates"),
		Value:       store.Bucket().BucketName(),
	})
	return stack
}
