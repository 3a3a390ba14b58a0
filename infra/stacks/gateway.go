// Package stacks assembles the gateway's constructs into deployable stacks, and maps the stage
// chosen in the CDK context (StageContextKey) to the settings that differ between dev and prod.
package stacks

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/satellite-gateway/gateway/infra/constructs/api"
	"github.com/satellite-gateway/gateway/infra/constructs/monitoring"
	"github.com/satellite-gateway/gateway/infra/constructs/queues"
	"github.com/satellite-gateway/gateway/infra/constructs/storage"
	"github.com/satellite-gateway/gateway/infra/constructs/table"
	"github.com/satellite-gateway/gateway/shared/resources"
)

// GatewayStackProps configures NewGatewayStack. The stage is not a field: it comes from the
// context, so that the same code deploys dev and prod.
type GatewayStackProps struct {
	awscdk.StackProps
	// LambdaDir holds one folder per function (see Functions) with its `bootstrap` binary.
	// Empty means DefaultLambdaDir.
	LambdaDir string
}

// NewGatewayStack defines the gateway backend: the bucket, the table, the work queues (ingest fed
// by upload notifications, config changes open to the OTA service's accounts, assembly), the
// HTTP API (with its mTLS domain when configured), the four functions with their triggers and
// grants, and their alarms and dashboard. It reads its options from scope's context (OptionsFromContext) and
// panics if they are invalid (callers that want a clean error check OptionsFromContext first, as
// ./infra does). TerminationProtection and Description, when not set in props, come from the
// stage.
func NewGatewayStack(scope constructs.Construct, id string, props *GatewayStackProps) awscdk.Stack {
	opts, err := OptionsFromContext(scope)
	if err != nil {
		panic(fmt.Sprintf("stack %s: %v", id, err))
	}
	stage := opts.Stage
	settings := stage.Settings()

	var sprops awscdk.StackProps
	lambdaDir := DefaultLambdaDir
	if props != nil {
		sprops = props.StackProps
		if props.LambdaDir != "" {
			lambdaDir = props.LambdaDir
		}
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
	tbl := table.New(stack, "Data", &table.Props{
		RemovalPolicy:      settings.RemovalPolicy,
		DeletionProtection: settings.TableDeletionProtection,
	})
	ingest := queues.New(stack, "Ingest", resources.Ingest)
	store.NotifyUploads(ingest.Queue())
	changes := queues.New(stack, "ConfigChanges", resources.ConfigChanges)
	changes.AllowSendFromAccounts(opts.OTAAccounts)
	assembly := queues.New(stack, "Assembly", resources.Assembly)

	gw := api.New(stack, "Api", &api.Props{
		MTLS:             opts.MTLS,
		LogRetention:     settings.LogRetention,
		LogRemovalPolicy: settings.RemovalPolicy,
	})

	mon := monitoring.New(stack, "Monitoring", &monitoring.Props{AlarmEmails: opts.AlarmEmails})
	for _, q := range []*queues.WorkQueue{ingest, changes, assembly} {
		mon.WatchQueue(q.Spec().Name, q)
	}
	mon.WatchAPI("api", gw.HTTPAPI())
	backend{
		scope: stack, lambdaDir: lambdaDir, settings: settings,
		bucket: store.Bucket(), table: tbl.Table(),
		ingest: ingest, changes: changes, assembly: assembly,
		api: gw, mon: mon,
	}.addFunctions()

	// Names are generated, so the platform team, the OTA service and local scripts find the
	// resources through the stack's outputs.
	output := func(id, description string, value *string) {
		awscdk.NewCfnOutput(stack, jsii.String(id), &awscdk.CfnOutputProps{
			Description: jsii.String(description), Value: value,
		})
	}
	output("BucketName", "Bucket for satellite uploads and updates", store.Bucket().BucketName())
	output("TableName", "DynamoDB table of devices, events and config state", tbl.Table().TableName())
	output("IngestQueueUrl", "Queue of upload notifications (S3 -> ingest)", ingest.Queue().QueueUrl())
	output("ConfigChangeQueueUrl", "Queue the OTA service sends change events to", changes.Queue().QueueUrl())
	output("ConfigChangeQueueArn", "ARN of the config-change queue, for the OTA account's IAM policy",
		changes.Queue().QueueArn())
	output("AssemblyQueueUrl", "Queue of per-satellite assembly requests", assembly.Queue().QueueUrl())
	if d := gw.Domain(); d != nil {
		output("ApiUrl", "What satellites call (mTLS)", jsii.String("https://"+opts.MTLS.DomainName))
		output("ApiRegionalDomainName", "Point the API domain's DNS record (CNAME or alias) here",
			d.RegionalDomainName())
	} else {
		output("ApiUrl", "The API's execute-api endpoint (no mTLS: every request is refused)", gw.HTTPAPI().ApiEndpoint())
	}
	output("AlarmTopicArn", "SNS topic every alarm notifies", mon.AlarmTopic().TopicArn())
	output("DashboardName", "CloudWatch dashboard of the gateway", mon.Dashboard().DashboardName())
	return stack
}
