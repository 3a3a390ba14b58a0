// Package queues is the gateway's work queue: an SQS queue with its dead-letter queue, both
// encrypted and reachable only over TLS, with the settings of one shared/resources.Queue.
//
// The settings (visibility, redrive, retention) come from shared/resources and nowhere else, so
// the queue deployed here behaves like the one the tests create on the moto server
// (shared/localaws). The consumer side of the same spec (batch size, concurrency) is for the
// function constructs that subscribe to Queue.
package queues

import (
	"fmt"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/satellite-gateway/gateway/shared/resources"
)

// WorkQueue is a queue, its dead-letter queue and the spec they were made from.
type WorkQueue struct {
	constructs.Construct
	spec  resources.Queue
	queue awssqs.Queue
	dlq   awssqs.Queue
}

// New adds spec's queue and DLQ under scope. It panics on an invalid spec, as CDK constructs do:
// the mistake is in code and shows at synth time.
func New(scope constructs.Construct, id string, spec resources.Queue) *WorkQueue {
	if err := spec.Validate(); err != nil {
		panic(fmt.Sprintf("queues %s: %v", id, err))
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	// No QueueName on either: CloudFormation names them, so stages share an account and a
	// replacement never collides with the old queue.
	dlq := awssqs.NewQueue(c, jsii.String("DeadLetters"), &awssqs.QueueProps{
		// SQS-managed keys rather than KMS: a customer key would have to trust S3 (notifications)
		// and the OTA service's account (cross-account publish) in its key policy, and adds a KMS
		// call per message, for messages that hold object keys and config the API serves anyway.
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: seconds(resources.DLQRetention),
	})
	queue := awssqs.NewQueue(c, jsii.String("Queue"), &awssqs.QueueProps{
		Encryption:        awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:        jsii.Bool(true),
		VisibilityTimeout: seconds(spec.VisibilityTimeout),
		RetentionPeriod:   seconds(spec.Retention),
		// Long polling by default: a consumer that forgets WaitTimeSeconds still does not pay
		// for empty receives.
		ReceiveMessageWaitTime: awscdk.Duration_Seconds(jsii.Number(20)),
		DeadLetterQueue: &awssqs.DeadLetterQueue{
			Queue:           dlq,
			MaxReceiveCount: jsii.Number(float64(spec.MaxReceiveCount)),
		},
	})
	return &WorkQueue{Construct: c, spec: spec, queue: queue, dlq: dlq}
}

// seconds converts a spec duration (whole seconds, as Validate checks) to a CDK duration.
func seconds(d time.Duration) awscdk.Duration {
	return awscdk.Duration_Seconds(jsii.Number(d.Seconds()))
}

// Spec is the resources.Queue the queue was made from, for the consumer's event source mapping
// and for alarms.
func (w *WorkQueue) Spec() resources.Queue { return w.spec }

// Queue is the work queue.
func (w *WorkQueue) Queue() awssqs.IQueue { return w.queue }

// DLQ is the dead-letter queue that takes a message after Spec().MaxReceiveCount receives.
func (w *WorkQueue) DLQ() awssqs.IQueue { return w.dlq }

// AllowSendFromAccounts lets principals of the given AWS accounts send messages to the queue
// (and look it up), through its resource policy. The other account must still grant its own
// principals sqs:SendMessage on this queue's ARN: cross-account access needs both sides. An
// empty list adds nothing.
func (w *WorkQueue) AllowSendFromAccounts(accounts []string) {
	if len(accounts) == 0 {
		return
	}
	principals := make([]awsiam.IPrincipal, len(accounts))
	for i, a := range accounts {
		principals[i] = awsiam.NewAccountPrincipal(jsii.String(a))
	}
	w.queue.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CrossAccountPublish"),
		Principals: &principals,
		Actions:    jsii.Strings("sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"),
		Resources:  &[]*string{w.queue.QueueArn()},
	}))
}
