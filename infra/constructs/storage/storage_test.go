package storage_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"

	"github.com/satellite-gateway/gateway/infra/constructs/storage"
	"github.com/satellite-gateway/gateway/infra/internal/cdktest"
	"github.com/satellite-gateway/gateway/shared/s3keys"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

// synth puts one Storage in a fresh stack and returns its template.
func synth(t *testing.T, props *storage.Props) (*storage.Storage, assertions.Template) {
	t.Helper()
	stack := awscdk.NewStack(cdktest.NewApp(t, nil), jsii.String("Test"), nil)
	s := storage.New(stack, "Storage", props)
	return s, cdktest.Template(t, stack)
}

type obj = map[string]any
type arr = []any

func TestBucketSecurity(t *testing.T) {
	_, tmpl := synth(t, nil)
	cdktest.Must(t, func() {
		tmpl.ResourceCountIs(jsii.String("AWS::S3::Bucket"), jsii.Number(1))
		tmpl.HasResourceProperties(jsii.String("AWS::S3::Bucket"), obj{
			"BucketEncryption": obj{"ServerSideEncryptionConfiguration": arr{
				obj{"ServerSideEncryptionByDefault": obj{"SSEAlgorithm": "AES256"}},
			}},
			"PublicAccessBlockConfiguration": obj{
				"BlockPublicAcls": true, "BlockPublicPolicy": true,
				"IgnorePublicAcls": true, "RestrictPublicBuckets": true,
			},
			"VersioningConfiguration": obj{"Status": "Enabled"},
			"OwnershipControls":       obj{"Rules": arr{obj{"ObjectOwnership": "BucketOwnerEnforced"}}},
			// No physical name: generated names let stages share an account.
			"BucketName": assertions.Match_Absent(),
		})
	})
}

func TestBucketPolicyDeniesInsecureTransport(t *testing.T) {
	_, tmpl := synth(t, nil)
	deny := func(condition obj) obj {
		return obj{
			"Effect": "Deny", "Action": "s3:*", "Principal": obj{"AWS": "*"},
			"Condition": condition,
			// Both the bucket and its objects: a statement on only one leaves the other open.
			"Resource": arr{
				obj{"Fn::GetAtt": arr{assertions.Match_AnyValue(), "Arn"}},
				obj{"Fn::Join": arr{"", arr{obj{"Fn::GetAtt": arr{assertions.Match_AnyValue(), "Arn"}}, "/*"}}},
			},
		}
	}
	cdktest.Must(t, func() {
		tmpl.HasResourceProperties(jsii.String("AWS::S3::BucketPolicy"), obj{
			"PolicyDocument": obj{"Statement": assertions.Match_ArrayWith(&arr{
				deny(obj{"Bool": obj{"aws:SecureTransport": "false"}}),
				deny(obj{"NumericLessThan": obj{"s3:TlsVersion": 1.2}}),
			})},
		})
	})
}

func TestLifecycleRules(t *testing.T) {
	tests := []struct {
		name                    string
		props                   *storage.Props
		uploadDays, quarantDays int
	}{
		{"defaults", nil, storage.DefaultUploadRetentionDays, storage.DefaultQuarantineRetentionDays},
		{"configured", &storage.Props{UploadRetentionDays: 7, QuarantineRetentionDays: 60}, 7, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, tmpl := synth(t, tt.props)
			cdktest.Must(t, func() {
				tmpl.HasResourceProperties(jsii.String("AWS::S3::Bucket"), obj{
					"LifecycleConfiguration": obj{"Rules": assertions.Match_ArrayEquals(&arr{
						obj{
							"Id":                             "abort-incomplete-multipart-uploads",
							"Status":                         "Enabled",
							"AbortIncompleteMultipartUpload": obj{"DaysAfterInitiation": 1},
							"ExpiredObjectDeleteMarker":      true,
							// Whole bucket: a half-finished upload is waste under any prefix.
							"Prefix": assertions.Match_Absent(),
						},
						obj{
							"Id": "expire-uploads", "Status": "Enabled", "Prefix": s3keys.UploadsPrefix,
							"ExpirationInDays":            tt.uploadDays,
							"NoncurrentVersionExpiration": obj{"NoncurrentDays": 1},
						},
						obj{
							"Id": "expire-quarantine", "Status": "Enabled", "Prefix": s3keys.QuarantinePrefix,
							"ExpirationInDays":            tt.quarantDays,
							"NoncurrentVersionExpiration": obj{"NoncurrentDays": 1},
						},
						obj{
							"Id": "expire-noncurrent-updates", "Status": "Enabled", "Prefix": s3keys.UpdatesPrefix,
							// The current update tarball must never expire.
							"ExpirationInDays":            assertions.Match_Absent(),
							"NoncurrentVersionExpiration": obj{"NoncurrentDays": 7},
						},
						// Only device files ingest tagged superseded expire under files/.
						obj{
							"Id": "expire-superseded-files-objects", "Status": "Enabled", "Prefix": s3keys.FilesPrefix,
							"TagFilters":                  arr{obj{"Key": s3keys.SupersededTagKey, "Value": s3keys.SupersededTagValue}},
							"ExpirationInDays":            7,
							"NoncurrentVersionExpiration": obj{"NoncurrentDays": 1},
						},
					})},
				})
			})
		})
	}
}

func TestRemovalPolicy(t *testing.T) {
	t.Run("retained by default", func(t *testing.T) {
		_, tmpl := synth(t, nil)
		cdktest.Must(t, func() {
			tmpl.HasResource(jsii.String("AWS::S3::Bucket"), obj{
				"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
			})
			tmpl.ResourceCountIs(jsii.String("Custom::S3AutoDeleteObjects"), jsii.Number(0))
		})
	})
	t.Run("destroyed and emptied when asked", func(t *testing.T) {
		_, tmpl := synth(t, &storage.Props{
			RemovalPolicy: awscdk.RemovalPolicy_DESTROY, AutoDeleteObjects: true,
		})
		cdktest.Must(t, func() {
			tmpl.HasResource(jsii.String("AWS::S3::Bucket"), obj{
				"DeletionPolicy": "Delete", "UpdateReplacePolicy": "Delete",
			})
			tmpl.ResourceCountIs(jsii.String("Custom::S3AutoDeleteObjects"), jsii.Number(1))
		})
	})
}

func TestInvalidProps(t *testing.T) {
	tests := []struct {
		name  string
		props storage.Props
		want  string
	}{
		{"negative upload retention", storage.Props{UploadRetentionDays: -1}, "upload retention -1 days"},
		{"quarantine not longer", storage.Props{UploadRetentionDays: 30, QuarantineRetentionDays: 30}, "quarantine retention 30 days"},
		{"quarantine shorter than default uploads", storage.Props{QuarantineRetentionDays: 10}, "quarantine retention 10 days"},
		{"auto-delete without destroy", storage.Props{AutoDeleteObjects: true}, "needs removal policy DESTROY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stack := awscdk.NewStack(cdktest.NewApp(t, nil), jsii.String("Test"), nil)
			msg := cdktest.Panics(t, func() { storage.New(stack, "Storage", &tt.props) })
			if !strings.Contains(msg, tt.want) {
				t.Errorf("panic %q: want it to mention %q", msg, tt.want)
			}
		})
	}
}

func TestBucketIsExposed(t *testing.T) {
	s, _ := synth(t, nil)
	// Later constructs grant and notify through Bucket(); it must be the bucket in the template,
	// not a look-up or a copy.
	if got := *s.Bucket().Node().Path(); got != "Test/Storage/Bucket" {
		t.Errorf("Bucket() path = %q, want Test/Storage/Bucket", got)
	}
}

func TestNotifyUploads(t *testing.T) {
	stack := awscdk.NewStack(cdktest.NewApp(t, nil), jsii.String("Test"), nil)
	s := storage.New(stack, "Storage", nil)
	q := awssqs.NewQueue(stack, jsii.String("Ingest"), nil)
	s.NotifyUploads(q)
	tmpl := cdktest.Template(t, stack)
	queueArn := obj{"Fn::GetAtt": arr{assertions.Match_StringLikeRegexp(jsii.String("^Ingest")), "Arn"}}
	cdktest.Must(t, func() {
		// Only object creation under uploads/: quarantine moves and assembled updates must not
		// start an ingest.
		tmpl.HasResourceProperties(jsii.String("AWS::S3::Bucket"), obj{
			"NotificationConfiguration": obj{"QueueConfigurations": arr{obj{
				"Event":  "s3:ObjectCreated:*",
				"Queue":  queueArn,
				"Filter": obj{"S3Key": obj{"Rules": arr{obj{"Name": "prefix", "Value": s3keys.UploadsPrefix}}}},
			}}},
		})
		// S3 may send, for this account only, and the bucket waits for that permission: S3
		// checks it when the notification is configured.
		tmpl.HasResourceProperties(jsii.String("AWS::SQS::QueuePolicy"), obj{
			"PolicyDocument": obj{"Statement": arr{obj{
				"Sid": "S3UploadNotifications", "Effect": "Allow", "Action": "sqs:SendMessage",
				"Principal": obj{"Service": "s3.amazonaws.com"},
				"Resource":  queueArn,
				"Condition": obj{"StringEquals": obj{"aws:SourceAccount": obj{"Ref": "AWS::AccountId"}}},
			}}},
		})
		tmpl.HasResource(jsii.String("AWS::S3::Bucket"), obj{
			"DependsOn": arr{assertions.Match_StringLikeRegexp(jsii.String("^IngestPolicy"))},
		})
		// No custom-resource Lambda (and its s3:PutBucketNotification on "*") for notifications.
		tmpl.ResourceCountIs(jsii.String("Custom::S3BucketNotifications"), jsii.Number(0))
		tmpl.ResourceCountIs(jsii.String("AWS::Lambda::Function"), jsii.Number(0))
	})
}
