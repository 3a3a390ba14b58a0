// Package monitoring is the gateway's operations view: CloudWatch alarms that notify one SNS
// topic, and one dashboard that shows the same signals.
//
// The other constructs do not create alarms themselves: the stack hands each watched resource to
// Monitoring, so every alarm goes to the same topic and appears on the same dashboard, and a
// template test can check that nothing watched was forgotten.
package monitoring

import (
	"fmt"
	"net/mail"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/satellite-gateway/gateway/infra/constructs/queues"
)

// Props configures Monitoring. The zero value is valid: alarms go to a topic nobody subscribes
// to yet (subscribe a pager or chat integration to AlarmTopic later).
type Props struct {
	// AlarmEmails are subscribed to the alarm topic. Each address must confirm the subscription
	// from the mail AWS sends it.
	AlarmEmails []string
}

// Monitoring owns the alarm topic and the dashboard.
type Monitoring struct {
	constructs.Construct
	topic     awssns.Topic
	action    awscloudwatch.IAlarmAction
	dashboard awscloudwatch.Dashboard
}

// New adds the topic and the dashboard under scope. It panics on an invalid e-mail address: the
// mistake is in the deploy's context and shows at synth time.
func New(scope constructs.Construct, id string, props *Props) *Monitoring {
	var p Props
	if props != nil {
		p = *props
	}
	for _, e := range p.AlarmEmails {
		if a, err := mail.ParseAddress(e); err != nil || a.Address != e {
			panic(fmt.Sprintf("monitoring %s: alarm e-mail %q: want a bare address such as ops@example.com", id, e))
		}
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	// Not encrypted with KMS: CloudWatch can only publish to a KMS-encrypted topic through a
	// customer key whose policy trusts it, and alarm texts hold nothing secret.
	topic := awssns.NewTopic(c, jsii.String("Alarms"), &awssns.TopicProps{
		DisplayName: jsii.String("Satellite gateway alarms"),
		EnforceSSL:  jsii.Bool(true),
	})
	for _, e := range p.AlarmEmails {
		topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(e), nil))
	}
	dashboard := awscloudwatch.NewDashboard(c, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		DefaultInterval: awscdk.Duration_Hours(jsii.Number(24)),
	})
	return &Monitoring{
		Construct: c,
		topic:     topic,
		action:    awscloudwatchactions.NewSnsAction(topic),
		dashboard: dashboard,
	}
}

// AlarmTopic is the SNS topic every alarm notifies, on alarm and on recovery.
func (m *Monitoring) AlarmTopic() awssns.ITopic { return m.topic }

// Dashboard is the gateway's CloudWatch dashboard.
func (m *Monitoring) Dashboard() awscloudwatch.Dashboard { return m.dashboard }

// WatchQueue alarms when anything reaches w's dead-letter queue (a message the consumer could
// not handle in MaxReceiveCount tries: always worth a look) and when w's oldest message is older
// than its spec's AgeAlarm (the consumer is falling behind or failing), and adds a row of graphs
// for both to the dashboard. name labels the alarms and graphs ("ingest").
func (m *Monitoring) WatchQueue(name string, w *queues.WorkQueue) {
	spec := w.Spec()
	minute := awscdk.Duration_Minutes(jsii.Number(1))

	dead := w.DLQ().MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{
		Period: minute, Statistic: jsii.String("Maximum"),
	})
	m.alarm(name+"-dead-letters", &awscloudwatch.AlarmProps{
		AlarmDescription: jsii.String(fmt.Sprintf(
			"%s: messages in the dead-letter queue. See docs/operations.md, \"A dead-letter queue is not empty\".", name)),
		Metric:             dead,
		Threshold:          jsii.Number(0),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(1),
		// SQS stops reporting an idle queue's metrics: no data means nothing arrived.
		TreatMissingData: awscloudwatch.TreatMissingData_NOT_BREACHING,
	})

	age := w.Queue().MetricApproximateAgeOfOldestMessage(&awscloudwatch.MetricOptions{
		Period: minute, Statistic: jsii.String("Maximum"),
	})
	m.alarm(name+"-oldest-message", &awscloudwatch.AlarmProps{
		AlarmDescription: jsii.String(fmt.Sprintf(
			"%s: oldest message older than %v; the consumer is behind or failing. See docs/operations.md, \"A queue is falling behind\".",
			name, spec.AgeAlarm)),
		Metric:             age,
		Threshold:          jsii.Number(spec.AgeAlarm.Seconds()),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		// Five minutes in a row: one slow batch is not an incident.
		EvaluationPeriods: jsii.Number(5),
		TreatMissingData:  awscloudwatch.TreatMissingData_NOT_BREACHING,
	})

	visible := w.Queue().MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{
		Period: minute, Statistic: jsii.String("Maximum"),
	})
	m.dashboard.AddWidgets(
		awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
			Title: jsii.String(name + " queue: waiting messages and age of the oldest (s)"),
			Left:  &[]awscloudwatch.IMetric{visible}, Right: &[]awscloudwatch.IMetric{age},
			Width: jsii.Number(12),
		}),
		awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
			Title: jsii.String(name + " dead-letter queue: messages"),
			Left:  &[]awscloudwatch.IMetric{dead},
			Width: jsii.Number(12),
		}),
	)
}

// WatchFunction alarms when fn fails invocations (Errors: a handler error, a crash or a
// timeout; a partial batch failure the handler reports is not one) and when Lambda throttles it
// (the account's concurrency is exhausted, so queues back up and the API answers 5xx), and adds a
// row of graphs for invocations, errors, throttles and duration. name labels them ("ingest").
func (m *Monitoring) WatchFunction(name string, fn awslambda.IFunction) {
	fiveMinutes := awscdk.Duration_Minutes(jsii.Number(5))
	sum := func(metric func(*awscloudwatch.MetricOptions) awscloudwatch.Metric) awscloudwatch.Metric {
		return metric(&awscloudwatch.MetricOptions{Period: fiveMinutes, Statistic: jsii.String("Sum")})
	}
	errs, throttles := sum(fn.MetricErrors), sum(fn.MetricThrottles)
	m.alarm(name+"-errors", &awscloudwatch.AlarmProps{
		AlarmDescription: jsii.String(fmt.Sprintf(
			"%s function: failed invocations. See docs/operations.md, \"A function fails\".", name)),
		Metric:             errs,
		Threshold:          jsii.Number(0),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(1),
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	m.alarm(name+"-throttles", &awscloudwatch.AlarmProps{
		AlarmDescription: jsii.String(fmt.Sprintf(
			"%s function: throttled invocations. See docs/operations.md, \"A function fails\".", name)),
		Metric:             throttles,
		Threshold:          jsii.Number(0),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(1),
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	duration := fn.MetricDuration(&awscloudwatch.MetricOptions{Period: fiveMinutes, Statistic: jsii.String("p99")})
	m.dashboard.AddWidgets(
		awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
			Title: jsii.String(name + " function: invocations, errors, throttles"),
			Left:  &[]awscloudwatch.IMetric{sum(fn.MetricInvocations), errs, throttles},
			Width: jsii.Number(12),
		}),
		awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
			Title: jsii.String(name + " function: duration p99 (ms)"),
			Left:  &[]awscloudwatch.IMetric{duration},
			Width: jsii.Number(12),
		}),
	)
}

// WatchAPI alarms when api answers with server errors (5xx: a function failing or timing out,
// or API Gateway itself) in two five-minute periods in a row, and graphs requests, 4xx, 5xx and
// latency. A burst of 4xx is not alarmed: refused certificates and unknown satellites are the
// API doing its job. name labels them ("api").
func (m *Monitoring) WatchAPI(name string, api awsapigatewayv2.IHttpApi) {
	fiveMinutes := awscdk.Duration_Minutes(jsii.Number(5))
	opts := func(stat string) *awscloudwatch.MetricOptions {
		return &awscloudwatch.MetricOptions{Period: fiveMinutes, Statistic: jsii.String(stat)}
	}
	serverErrors := api.MetricServerError(opts("Sum"))
	m.alarm(name+"-5xx", &awscloudwatch.AlarmProps{
		AlarmDescription: jsii.String(fmt.Sprintf(
			"%s: 5xx responses. See docs/operations.md, \"A function fails\".", name)),
		Metric:             serverErrors,
		Threshold:          jsii.Number(0),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(2),
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	m.dashboard.AddWidgets(
		awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
			Title: jsii.String(name + ": requests, 4xx, 5xx"),
			Left:  &[]awscloudwatch.IMetric{api.MetricCount(opts("Sum")), api.MetricClientError(opts("Sum")), serverErrors},
			Width: jsii.Number(12),
		}),
		awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
			Title: jsii.String(name + ": latency p99 (ms)"),
			Left:  &[]awscloudwatch.IMetric{api.MetricLatency(opts("p99"))},
			Width: jsii.Number(12),
		}),
	)
}

// alarm creates an alarm that notifies the topic when it fires and when it clears. Alarms live
// under Monitoring, not under what they watch, so all of them are found in one place.
func (m *Monitoring) alarm(id string, props *awscloudwatch.AlarmProps) awscloudwatch.Alarm {
	a := awscloudwatch.NewAlarm(m.Construct, jsii.String(id), props)
	a.AddAlarmAction(m.action)
	a.AddOkAction(m.action)
	return a
}
