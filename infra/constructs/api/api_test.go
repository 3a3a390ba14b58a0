package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/jsii-runtime-go"

	"github.com/satellite-gateway/gateway/infra/constructs/api"
	"github.com/satellite-gateway/gateway/infra/constructs/function"
	"github.com/satellite-gateway/gateway/infra/internal/cdktest"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

type obj = map[string]any
type arr = []any

var goodMTLS = api.MTLS{
	DomainName:        "gateway.example.com",
	CertificateArn:    "arn:aws:acm:eu-central-1:111111111111:certificate/0b1e3b7a-7c55-4f2e-9e55-2a1b7f0c9d11",
	TruststoreURI:     "s3://truststore-bucket/factories/ca-bundle.pem",
	TruststoreVersion: "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
}

func synth(t *testing.T, props *api.Props) (*api.API, awscdk.Stack) {
	t.Helper()
	stack := awscdk.NewStack(cdktest.NewApp(t, nil), jsii.String("Test"), nil)
	var a *api.API
	cdktest.Must(t, func() { a = api.New(stack, "Api", props) })
	return a, stack
}

func TestMTLSDomainAndNoBypass(t *testing.T) {
	m := goodMTLS
	_, stack := synth(t, &api.Props{MTLS: &m})
	tmpl := cdktest.Template(t, stack)
	cdktest.Must(t, func() {
		// The execute-api endpoint asks for no client certificate: with mTLS it must be off.
		tmpl.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Api"), obj{
			"ProtocolType": "HTTP", "DisableExecuteApiEndpoint": true,
		})
		tmpl.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::DomainName"), obj{
			"DomainName": "gateway.example.com",
			"DomainNameConfigurations": arr{obj{
				"CertificateArn": m.CertificateArn, "EndpointType": "REGIONAL", "SecurityPolicy": "TLS_1_2",
			}},
			"MutualTlsAuthentication": obj{
				"TruststoreUri":     m.TruststoreURI,
				"TruststoreVersion": m.TruststoreVersion,
			},
		})
		tmpl.ResourceCountIs(jsii.String("AWS::ApiGatewayV2::ApiMapping"), jsii.Number(1))
	})
}

func TestWithoutMTLS(t *testing.T) {
	a, stack := synth(t, nil)
	tmpl := cdktest.Template(t, stack)
	cdktest.Must(t, func() {
		tmpl.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Api"), obj{"DisableExecuteApiEndpoint": false})
		tmpl.ResourceCountIs(jsii.String("AWS::ApiGatewayV2::DomainName"), jsii.Number(0))
	})
	if a.Domain() != nil {
		t.Error("Domain() without mTLS: want nil")
	}
}

func TestStageThrottlingAndAccessLogs(t *testing.T) {
	_, stack := synth(t, &api.Props{RateLimit: 50, BurstLimit: 100})
	tmpl := cdktest.Template(t, stack)
	cdktest.Must(t, func() {
		tmpl.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Stage"), obj{
			"StageName":            "$default",
			"AutoDeploy":           true,
			"DefaultRouteSettings": obj{"ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 100},
			"AccessLogSettings": obj{
				"DestinationArn": obj{"Fn::GetAtt": arr{assertions.Match_StringLikeRegexp(jsii.String("^ApiAccessLogs")), "Arn"}},
				// Who called: the verified certificate's subject, even for refused requests.
				"Format": assertions.Match_StringLikeRegexp(jsii.String(`clientCert\.subjectDN`)),
			},
		})
		tmpl.HasResourceProperties(jsii.String("AWS::Logs::LogGroup"), obj{"RetentionInDays": 30})
	})
}

func TestRoute(t *testing.T) {
	a, stack := synth(t, nil)
	fn := function.New(stack, "Handler", &function.Props{AssetDir: cdktest.LambdaAsset(t), Timeout: 10 * time.Second})
	a.Route(awsapigatewayv2.HttpMethod_GET, "/updates/uploads/{batch}", fn.Function())
	tmpl := cdktest.Template(t, stack)
	cdktest.Must(t, func() {
		tmpl.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Route"), obj{
			"RouteKey": "GET /updates/uploads/{batch}",
		})
		tmpl.HasResourceProperties(jsii.String("AWS::ApiGatewayV2::Integration"), obj{
			"IntegrationType": "AWS_PROXY", "PayloadFormatVersion": "2.0",
		})
		// Invocation is allowed from this route only, not from any API or route.
		tmpl.HasResourceProperties(jsii.String("AWS::Lambda::Permission"), obj{
			"Action":    "lambda:InvokeFunction",
			"Principal": "apigateway.amazonaws.com",
			"SourceArn": obj{"Fn::Join": arr{"", assertions.Match_ArrayWith(&arr{"/*/*/updates/uploads/{batch}"})}},
		})
	})
}

func TestInvalidMTLS(t *testing.T) {
	tests := []struct {
		name   string
		change func(m *api.MTLS)
		want   string
	}{
		{"domain with upper case", func(m *api.MTLS) { m.DomainName = "Gateway.Example.com" }, "domain name"},
		{"bare host", func(m *api.MTLS) { m.DomainName = "gateway" }, "domain name"},
		{"certificate not from ACM", func(m *api.MTLS) { m.CertificateArn = "arn:aws:iam::111111111111:server-certificate/x" }, "certificate ARN"},
		{"truststore not in S3", func(m *api.MTLS) { m.TruststoreURI = "https://example.com/ca.pem" }, "truststore"},
		{"truststore without a key", func(m *api.MTLS) { m.TruststoreURI = "s3://bucket/" }, "truststore"},
		{"truststore bucket name too short", func(m *api.MTLS) { m.TruststoreURI = "s3://t/ca.pem" }, "truststore"},
		{"truststore bucket name in upper case", func(m *api.MTLS) { m.TruststoreURI = "s3://Trust/ca.pem" }, "truststore"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := goodMTLS
			tt.change(&m)
			stack := awscdk.NewStack(cdktest.NewApp(t, nil), jsii.String("Test"), nil)
			msg := cdktest.Panics(t, func() { api.New(stack, "Api", &api.Props{MTLS: &m}) })
			if !strings.Contains(msg, tt.want) {
				t.Errorf("panic %q: want %q", msg, tt.want)
			}
		})
	}
}
