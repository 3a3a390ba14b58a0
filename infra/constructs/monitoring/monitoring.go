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
	"time"

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
	maximum := options(time.Minute, "Maximum")
	dead := w.DLQ().MetricApproximateNumberOfMessagesVisible(maximum)
	m.alarmAbove(name+"-dead-letters",
		fmt.Sprintf("%s: messages in the dead-letter queue. See docs/operations.md, \"A dead-letter queue is not empty\".", name),
		dead, 0, 1)
	age := w.Queue().MetricApproximateAgeOfOldestMessage(maximum)
	// Five minutes in a row: one slow batch is not an incident.
	m.alarmAbove(name+"-oldest-message",
		fmt.Sprintf("%s: oldest message older than %v; the consumer is behind or failing. See docs/operations.md, \"A queue is falling behind\".",
			name, spec.AgeAlarm),
		age, spec.AgeAlarm.Seconds(), 5)
	visible := w.Queue().MetricApproximateNumberOfMessagesVisible(maximum)
	m.dashboard.AddWidgets(
		graph(name+" queue: waiting messages and age of the oldest (s)", []awscloudwatch.IMetric{visible}, age),
		graph(name+" dead-letter queue: messages", []awscloudwatch.IMetric{dead}, nil),
	)
}

// WatchFunction alarms when fn fails invocations (Errors: a handler error, a crash or a
// timeout; a partial batch failure the handler reports is not one) and when Lambda throttles it
// (the account's concurrency is exhausted, so queues back up and the API answers 5xx), and adds a
// row of graphs for invocations, errors, throttles and duration. name labels them ("ingest").
func (m *Monitoring) WatchFunction(name string, fn awslambda.IFunction) {
	sum := options(5*time.Minute, "Sum")
	errs, throttles := fn.MetricErrors(sum), fn.MetricThrottles(sum)
	m.alarmAbove(name+"-errors",
		fmt.Sprintf("%s function: failed invocations. See docs/operations.md, \"A function fails\".", name),
		errs, 0, 1)
	m.alarmAbove(name+"-throttles",
		fmt.Sprintf("%s function: throttled invocations. See docs/operations.md, \"A function fails\".", name),
		throttles, 0, 1)
	m.dashboard.AddWidgets(
		graph(name+" function: invocations, errors, throttles",
			[]awscloudwatch.IMetric{fn.MetricInvocations(sum), errs, throttles}, nil),
		graph(name+" function: duration p99 (ms)",
			[]awscloudwatch.IMetric{fn.MetricDuration(options(5*time.Minute, "p99"))}, nil),
	)
}

// WatchAPI alarms when api answers with server errors (5xx: a function failing or timing out,
// or API Gateway itself) in two five-minute periods in a row, and graphs requests, 4xx, 5xx and
// latency. A burst of 4xx is not alarmed: refused certificates and unknown satellites are the
// API doing its job. name labels them ("api").
func (m *Monitoring) WatchAPI(name string, api awsapigatewayv2.IHttpApi) {
	sum := options(5*time.Minute, "Sum")
	serverErrors := api.MetricServerError(sum)
	m.alarmAbove(name+"-5xx",
		fmt.Sprintf("%s: 5xx responses. See docs/operations.md, \"A function fails\".", name),
		serverErrors, 0, 2)
	m.dashboard.AddWidgets(
		graph(name+": requests, 4xx, 5xx",
			[]awscloudwatch.IMetric{api.MetricCount(sum), api.MetricClientError(sum), serverErrors}, nil),
		graph(name+": latency p99 (ms)",
			[]awscloudwatch.IMetric{api.MetricLatency(options(5*time.Minute, "p99"))}, nil),
	)
}

// alarmAbove creates an alarm on metric exceeding threshold for periods periods in a row, that
// notifies the topic when it fires and when it clears. Missing data counts as fine: SQS, Lambda
// and API Gateway stop reporting what is idle, and idle is not a failure. Alarms live under
// Monitoring, not under what they watch, so all of them are found in one place.
func (m *Monitoring) alarmAbove(id, description string, metric awscloudwatch.IMetric, threshold float64, periods int) {
	a := awscloudwatch.NewAlarm(m.Construct, jsii.String(id), &awscloudwatch.AlarmProps{
		AlarmDescription:   jsii.String(description),
		Metric:             metric,
		Threshold:          jsii.Number(threshold),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(float64(periods)),
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	a.AddAlarmAction(m.action)
	a.AddOkAction(m.action)
}

// options are the metric options of one statistic over period.
func options(period time.Duration, statistic string) *awscloudwatch.MetricOptions {
	return &awscloudwatch.MetricOptions{
		Period:    awscdk.Duration_Seconds(jsii.Number(period.Seconds())),
		Statistic: jsii.String(statistic),
	}
}

// graph is a half-width dashboard graph of left, and of right on the right axis when not nil.
func graph(title string, left []awscloudwatch.IMetric, right awscloudwatch.IMetric) awscloudwatch.GraphWidget {
	props := &awscloudwatch.GraphWidgetProps{
		Title: jsii.String(title),
		Left:  &left,
		Width: jsii.Number(12),
	}
	if right != nil {
		props.Right = &[]awscloudwatch.IMetric{right}
	}
	return awscloudwatch.NewGraphWidget(props)
}
