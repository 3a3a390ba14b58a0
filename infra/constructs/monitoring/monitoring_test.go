package monitoring_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/satellite-gateway/gateway/infra/constructs/api"
	"github.com/satellite-gateway/gateway/infra/constructs/function"
	"github.com/satellite-gateway/gateway/infra/constructs/monitoring"
	"github.com/satellite-gateway/gateway/infra/constructs/queues"
	"github.com/satellite-gateway/gateway/infra/internal/cdktest"
	"github.com/satellite-gateway/gateway/shared/resources"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

type obj = map[string]any

func TestWatchQueue(t *testing.T) {
	stack := awscdk.NewStack(cdktest.NewApp(t, nil), jsii.String("Test"), nil)
	mon := monitoring.New(stack, "Monitoring", &monitoring.Props{AlarmEmails: []string{"ops@example.com"}})
	q := queues.New(stack, "Ingest", resources.Ingest)
	mon.WatchQueue("ingest", q)
	tmpl := cdktest.Template(t, stack)

	topic := obj{"Ref": assertions.Match_StringLikeRegexp(jsii.String("^MonitoringAlarms"))}
	cdktest.Must(t, func() {
		tmpl.ResourceCountIs(jsii.String("AWS::CloudWatch::Alarm"), jsii.Number(2))
		// Anything in the DLQ alarms at once, and the alarm clears (OK action) when it is drained.
		tmpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), obj{
			"MetricName":         "ApproximateNumberOfMessagesVisible",
			"Namespace":          "AWS/SQS",
			"Dimensions":         []any{obj{"Name": "QueueName", "Value": obj{"Fn::GetAtt": []any{assertions.Match_StringLikeRegexp(jsii.String("^IngestDeadLetters")), "QueueName"}}}},
			"ComparisonOperator": "GreaterThanThreshold",
			"Threshold":          0,
			"EvaluationPeriods":  1,
			"TreatMissingData":   "notBreaching",
			"AlarmActions":       []any{topic},
			"OKActions":          []any{topic},
		})
		// The age alarm's threshold is the spec's, in seconds.
		tmpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), obj{
			"MetricName":         "ApproximateAgeOfOldestMessage",
			"Dimensions":         []any{obj{"Name": "QueueName", "Value": obj{"Fn::GetAtt": []any{assertions.Match_StringLikeRegexp(jsii.String("^IngestQueue")), "QueueName"}}}},
			"ComparisonOperator": "GreaterThanThreshold",
			"Threshold":          resources.Ingest.AgeAlarm.Seconds(),
			"AlarmActions":       []any{topic},
		})
		tmpl.HasResourceProperties(jsii.String("AWS::SNS::Subscription"), obj{
			"Protocol": "email", "Endpoint": "ops@example.com", "TopicArn": topic,
		})
		tmpl.ResourceCountIs(jsii.String("AWS::CloudWatch::Dashboard"), jsii.Number(1))
		// The topic refuses plain HTTP, like every queue and the bucket.
		tmpl.HasResourceProperties(jsii.String("AWS::SNS::TopicPolicy"), obj{
			"PolicyDocument": obj{"Statement": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&obj{
				"Effect": "Deny", "Condition": obj{"Bool": obj{"aws:SecureTransport": "false"}},
			})})},
		})
	})
}

func TestBadEmailIsRefused(t *testing.T) {
	for _, e := range []string{"not-an-address", "Ops <ops@example.com>", ""} {
		stack := awscdk.NewStack(cdktest.NewApp(t, nil), jsii.String("Test"), nil)
		msg := cdktest.Panics(t, func() {
			monitoring.New(stack, "Monitoring", &monitoring.Props{AlarmEmails: []string{e}})
		})
		if !strings.Contains(msg, "alarm e-mail") {
			t.Errorf("%q: panic %q, want it to name the alarm e-mail", e, msg)
		}
	}
}

func TestWatchFunction(t *testing.T) {
	stack := awscdk.NewStack(cdktest.NewApp(t, nil), jsii.String("Test"), nil)
	mon := monitoring.New(stack, "Monitoring", nil)
	fn := function.New(stack, "Ingest", &function.Props{AssetDir: cdktest.LambdaAsset(t), Timeout: time.Minute})
	mon.WatchFunction("ingest", fn.Function())
	tmpl := cdktest.Template(t, stack)
	topic := obj{"Ref": assertions.Match_StringLikeRegexp(jsii.String("^MonitoringAlarms"))}
	cdktest.Must(t, func() {
		tmpl.ResourceCountIs(jsii.String("AWS::CloudWatch::Alarm"), jsii.Number(2))
		for _, metric := range []string{"Errors", "Throttles"} {
			tmpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), obj{
				"Namespace":          "AWS/Lambda",
				"MetricName":         metric,
				"Dimensions":         []any{obj{"Name": "FunctionName", "Value": obj{"Ref": assertions.Match_StringLikeRegexp(jsii.String("^IngestFunction"))}}},
				"Statistic":          "Sum",
				"ComparisonOperator": "GreaterThanThreshold",
				"Threshold":          0,
				"AlarmActions":       []any{topic},
				"OKActions":          []any{topic},
			})
		}
	})
}

func TestWatchAPI(t *testing.T) {
	stack := awscdk.NewStack(cdktest.NewApp(t, nil), jsii.String("Test"), nil)
	mon := monitoring.New(stack, "Monitoring", nil)
	gw := api.New(stack, "Api", nil)
	mon.WatchAPI("api", gw.HTTPAPI())
	tmpl := cdktest.Template(t, stack)
	cdktest.Must(t, func() {
		tmpl.ResourceCountIs(jsii.String("AWS::CloudWatch::Alarm"), jsii.Number(1))
		tmpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), obj{
			"Namespace":          "AWS/ApiGateway",
			"MetricName":         "5xx",
			"Dimensions":         []any{obj{"Name": "ApiId", "Value": obj{"Ref": assertions.Match_StringLikeRegexp(jsii.String("^Api"))}}},
			"Statistic":          "Sum",
			"ComparisonOperator": "GreaterThanThreshold",
			"Threshold":          0,
			"EvaluationPeriods":  2,
			"AlarmActions":       []any{obj{"Ref": assertions.Match_StringLikeRegexp(jsii.String("^MonitoringAlarms"))}},
		})
	})
}
