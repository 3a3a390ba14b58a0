// Package api is the gateway's HTTP API (API Gateway v2) that satellites call: optionally behind
// a custom domain with mutual TLS, throttled, with JSON access logs that record each caller's
// certificate.
//
// With mTLS on, API Gateway checks the client certificate against the truststore (the factory
// CAs, a PEM bundle in S3) before any function runs, and passes the verified certificate to the
// function in the request context; the function then maps it to (factory, satellite). The default
// execute-api endpoint is disabled in that case: it does not ask for client certificates, so
// leaving it on would let anyone skip the check.
package api

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2integrations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Default throttling of the whole stage. A satellite polls every few minutes and uploads a batch
// every few minutes, so even 10k satellites stay far below this; the limit is there to bound the
// cost and the load a runaway client can cause.
const (
	DefaultRateLimit  = 200 // requests per second, steady
	DefaultBurstLimit = 400
)

// MTLS is the custom domain with mutual TLS. All fields but TruststoreVersion are required.
type MTLS struct {
	// DomainName satellites call, e.g. gateway.example.com. Its DNS record (a CNAME or alias to
	// the API's regional domain name, output as ApiRegionalDomainName) is the platform team's.
	DomainName string
	// CertificateArn is an ACM certificate for DomainName in the stack's region.
	CertificateArn string
	// TruststoreURI is s3://bucket/key of the PEM bundle of the factory CAs.
	TruststoreURI string
	// TruststoreVersion pins an S3 object version of the bundle, so updating the bundle is a
	// deliberate deploy rather than something API Gateway picks up on its own. Optional.
	TruststoreVersion string
}

// Props configures API. The zero value is valid: the execute-api endpoint, no mTLS, default
// throttling (a dev stack, where the API function refuses every request for lack of a client
// certificate).
type Props struct {
	MTLS       *MTLS
	RateLimit  float64 // zero means DefaultRateLimit
	BurstLimit float64 // zero means DefaultBurstLimit
	// LogRetention of the access logs. Empty means one month.
	LogRetention awslogs.RetentionDays
	// LogRemovalPolicy of the access log group. Empty means RETAIN.
	LogRemovalPolicy awscdk.RemovalPolicy
}

// API is the HTTP API and, with mTLS, its custom domain.
type API struct {
	constructs.Construct
	api    awsapigatewayv2.HttpApi
	domain awsapigatewayv2.DomainName // nil without mTLS
}

var (
	certificateArn = regexp.MustCompile(`^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[A-Za-z0-9-]+$`)
	// A DNS name of at least two labels, lower case.
	domainName = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)
	// An S3 bucket name: 3 to 63 lower-case letters, digits, dots and hyphens, starting and
	// ending with a letter or digit. Checked here so that a typo is a message naming the
	// truststore, not a CDK validation panic deep in a stack trace.
	bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
)

// Validate reports what is missing or malformed in m.
func (m MTLS) Validate() error {
	if !domainName.MatchString(m.DomainName) {
		return fmt.Errorf("domain name %q: want a lower-case DNS name such as gateway.example.com", m.DomainName)
	}
	if !certificateArn.MatchString(m.CertificateArn) {
		return fmt.Errorf("certificate ARN %q: want arn:aws:acm:REGION:ACCOUNT:certificate/ID", m.CertificateArn)
	}
	if _, _, err := m.truststore(); err != nil {
		return err
	}
	return nil
}

// truststore splits TruststoreURI into bucket and key.
func (m MTLS) truststore() (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(m.TruststoreURI, "s3://")
	bucket, key, _ = strings.Cut(rest, "/")
	if !ok || !bucketName.MatchString(bucket) || key == "" || strings.HasSuffix(key, "/") {
		return "", "", fmt.Errorf("truststore %q: want s3://BUCKET/KEY of a PEM bundle", m.TruststoreURI)
	}
	return bucket, key, nil
}

// New adds the API under scope. It panics on invalid props, as CDK constructs do.
func New(scope constructs.Construct, id string, props *Props) *API {
	var p Props
	if props != nil {
		p = *props
	}
	if p.MTLS != nil {
		if err := p.MTLS.Validate(); err != nil {
			panic(fmt.Sprintf("api %s: mTLS: %v", id, err))
		}
	}
	if p.RateLimit == 0 {
		p.RateLimit = DefaultRateLimit
	}
	if p.BurstLimit == 0 {
		p.BurstLimit = DefaultBurstLimit
	}
	if p.LogRetention == "" {
		p.LogRetention = awslogs.RetentionDays_ONE_MONTH
	}
	if p.LogRemovalPolicy == "" {
		p.LogRemovalPolicy = awscdk.RemovalPolicy_RETAIN
	}
	c := constructs.NewConstruct(scope, jsii.String(id))

	a := &API{Construct: c}
	a.api = awsapigatewayv2.NewHttpApi(c, jsii.String("Api"), &awsapigatewayv2.HttpApiProps{
		Description:               jsii.String("Satellite gateway API"),
		DisableExecuteApiEndpoint: jsii.Bool(p.MTLS != nil),
	})
	if m := p.MTLS; m != nil {
		bucket, key, _ := m.truststore()
		mtls := &awsapigatewayv2.MTLSConfig{
			Bucket: awss3.Bucket_FromBucketName(c, jsii.String("Truststore"), jsii.String(bucket)),
			Key:    jsii.String(key),
		}
		if m.TruststoreVersion != "" {
			mtls.Version = jsii.String(m.TruststoreVersion)
		}
		a.domain = awsapigatewayv2.NewDomainName(c, jsii.String("Domain"), &awsapigatewayv2.DomainNameProps{
			DomainName:  jsii.String(m.DomainName),
			Certificate: awscertificatemanager.Certificate_FromCertificateArn(c, jsii.String("Certificate"), jsii.String(m.CertificateArn)),
			Mtls:        mtls,
			// mTLS needs a regional endpoint and TLS 1.2.
			EndpointType:   awsapigatewayv2.EndpointType_REGIONAL,
			SecurityPolicy: awsapigatewayv2.SecurityPolicy_TLS_1_2,
		})
		awsapigatewayv2.NewApiMapping(c, jsii.String("Mapping"), &awsapigatewayv2.ApiMappingProps{
			Api:        a.api,
			DomainName: a.domain,
			Stage:      a.api.DefaultStage(),
		})
	}

	logs := awslogs.NewLogGroup(c, jsii.String("AccessLogs"), &awslogs.LogGroupProps{
		Retention:     p.LogRetention,
		RemovalPolicy: p.LogRemovalPolicy,
	})
	stage := a.api.DefaultStage().Node().DefaultChild().(awsapigatewayv2.CfnStage)
	stage.SetAccessLogSettings(&awsapigatewayv2.CfnStage_AccessLogSettingsProperty{
		DestinationArn: logs.LogGroupArn(),
		Format:         jsii.String(accessLogFormat),
	})
	stage.SetDefaultRouteSettings(&awsapigatewayv2.CfnStage_RouteSettingsProperty{
		ThrottlingRateLimit:  jsii.Number(p.RateLimit),
		ThrottlingBurstLimit: jsii.Number(p.BurstLimit),
	})
	return a
}

// accessLogFormat is one JSON object per request. The client certificate's subject and serial
// say which satellite called, even for requests refused before the function ran.
var accessLogFormat = `{` + strings.Join([]string{
	`"requestId":"$context.requestId"`,
	`"time":"$context.requestTime"`,
	`"ip":"$context.identity.sourceIp"`,
	`"route":"$context.routeKey"`,
	`"status":"$context.status"`,
	`"bytes":"$context.responseLength"`,
	`"latencyMs":"$context.responseLatency"`,
	`"integrationError":"$context.integrationErrorMessage"`,
	`"certSubject":"$context.identity.clientCert.subjectDN"`,
	`"certSerial":"$context.identity.clientCert.serialNumber"`,
}, ",") + `}`

// HTTPAPI is the API, for metrics and outputs.
func (a *API) HTTPAPI() awsapigatewayv2.HttpApi { return a.api }

// Domain is the custom domain, or nil without mTLS.
func (a *API) Domain() awsapigatewayv2.DomainName { return a.domain }

// Route sends method requests for path (API Gateway syntax: /updates/uploads/{batch}) to fn,
// with the version 2.0 payload the API function is written against. API Gateway gets permission
// to invoke fn for this route only.
func (a *API) Route(method awsapigatewayv2.HttpMethod, path string, fn awslambda.IFunction) {
	id := strings.NewReplacer("/", "-", "{", "", "}", "").Replace(string(method) + path)
	a.api.AddRoutes(&awsapigatewayv2.AddRoutesOptions{
		Path:    jsii.String(path),
		Methods: &[]awsapigatewayv2.HttpMethod{method},
		Integration: awsapigatewayv2integrations.NewHttpLambdaIntegration(jsii.String(id), fn,
			&awsapigatewayv2integrations.HttpLambdaIntegrationProps{
				PayloadFormatVersion: awsapigatewayv2.PayloadFormatVersion_VERSION_2_0(),
			}),
	})
}
