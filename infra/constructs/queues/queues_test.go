package queues_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/satellite-gateway/gateway/infra/constructs/queues"
	"github.com/satellite-gateway/gateway/infra/internal/cdktest"
	"github.com/satellite-gateway/gateway/shared/resources"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

type obj = map[string]any

// TestSettingsComeFromResources builds every gateway queue and checks the template carries the
// settings of shared/resources, the ones the local queues (shared/localaws) are made with.
func TestSettingsComeFromResources(t *testing.T) {
	for _, spec := range resources.Queues() {
		t.Run(spec.Name, func(t *testing.T) {
			stack := awscdk.NewStack(cdktest.NewApp(t, nil), jsii.String("Test"), nil)
			queues.New(stack, "Work", spec)
			tmpl := cdktest.Template(t, stack)
			cdktest.Must(t, func() {
				tmpl.ResourceCountIs(jsii.String("AWS::SQS::Queue"), jsii.Number(2))
				tmpl.HasResourceProperties(jsii.String("AWS::SQS::Queue"), obj{
					"VisibilityTimeout":             spec.VisibilityTimeout.Seconds(),
					"MessageRetentionPeriod":        spec.Retention.Seconds(),
					"ReceiveMessageWaitTimeSeconds": 20,
					"SqsManagedSseEnabled":          true,
					"QueueName":                     assertions.Match_Absent(),
					"RedrivePolicy": obj{
						"deadLetterTargetArn": obj{"Fn::GetAtt": []any{assertions.Match_StringLikeRegexp(jsii.String("^WorkDeadLetters")), "Arn"}},
						"maxReceiveCount":     spec.MaxReceiveCount,
					},
				})
				tmpl.HasResourceProperties(jsii.String("AWS::SQS::Queue"), obj{
					"MessageRetentionPeriod": resources.DLQRetention.Seconds(),
					"SqsManagedSseEnabled":   true,
					"RedrivePolicy":          assertions.Match_Absent(),
				})
				// EnforceSSL on both: one policy each, denying requests without TLS.
				tmpl.ResourcePropertiesCountIs(jsii.String("AWS::SQS::QueuePolicy"), obj{
					"PolicyDocument": obj{"Statement": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&obj{
						"Effect": "Deny", "Action": "sqs:*",
						"Condition": obj{"Bool": obj{"aws:SecureTransport": "false"}},
					})})},
				}, jsii.Number(2))
			})
		})
	}
}

func TestInvalidSpecIsRefused(t *testing.T) {
	stack := awscdk.NewStack(cdktest.NewApp(t, nil), jsii.String("Test"), nil)
	spec := resources.Ingest
	spec.VisibilityTimeout = spec.ConsumerTimeout // below 6x
	msg := cdktest.Panics(t, func() { queues.New(stack, "Work", spec) })
	if !strings.Contains(msg, "visibility timeout") {
		t.Errorf("panic %q: want it to name the visibility timeout", msg)
	}
}

func TestAllowSendFromAccounts(t *testing.T) {
	t.Run("accounts get send and lookup, nothing more", func(t *testing.T) {
		stack := awscdk.NewStack(cdktest.NewApp(t, nil), jsii.String("Test"), nil)
		q := queues.New(stack, "Work", resources.ConfigChanges)
		q.AllowSendFromAccounts([]string{"111111111111", "222222222222"})
		tmpl := cdktest.Template(t, stack)
		cdktest.Must(t, func() {
			tmpl.HasResourceProperties(jsii.String("AWS::SQS::QueuePolicy"), obj{
				"Queues": []any{obj{"Ref": assertions.Match_StringLikeRegexp(jsii.String("^WorkQueue"))}},
				"PolicyDocument": obj{"Statement": assertions.Match_ArrayWith(&[]any{obj{
					"Sid":    "CrossAccountPublish",
					"Effect": "Allow",
					"Action": []any{"sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"},
					"Principal": obj{"AWS": []any{
						obj{"Fn::Join": []any{"", []any{"arn:", obj{"Ref": "AWS::Partition"}, ":iam::111111111111:root"}}},
						obj{"Fn::Join": []any{"", []any{"arn:", obj{"Ref": "AWS::Partition"}, ":iam::222222222222:root"}}},
					}},
					"Resource": obj{"Fn::GetAtt": []any{assertions.Match_StringLikeRegexp(jsii.String("^WorkQueue")), "Arn"}},
				}})},
			})
		})
	})
	t.Run("no accounts, no statement", func(t *testing.T) {
		stack := awscdk.NewStack(cdktest.NewApp(t, nil), jsii.String("Test"), nil)
		queues.New(stack, "Work", resources.ConfigChanges).AllowSendFromAccounts(nil)
		tmpl := cdktest.Template(t, stack)
		cdktest.Must(t, func() {
			tmpl.ResourcePropertiesCountIs(jsii.String("AWS::SQS::QueuePolicy"), obj{
				"PolicyDocument": obj{"Statement": assertions.Match_ArrayWith(&[]any{
					assertions.Match_ObjectLike(&obj{"Sid": "CrossAccountPublish"}),
				})},
			}, jsii.Number(0))
		})
	})
}
