package policy

import (
	"strings"
	"testing"
)

// The rules run on hand-written templates here, so each one is seen to fail; the stacks' tests run
// them on the real templates, where they must pass.

const goodBucket = `{
	"Type": "AWS::S3::Bucket",
	"Properties": {
		"BucketEncryption": {"ServerSideEncryptionConfiguration": [
			{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
		"PublicAccessBlockConfiguration": {"BlockPublicAcls": true, "BlockPublicPolicy": true,
			"IgnorePublicAcls": true, "RestrictPublicBuckets": true}
	}
}`

func template(resources ...string) []byte {
	var b strings.Builder
	b.WriteString(`{"Resources": {`)
	for i, r := range resources {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(r)
	}
	b.WriteString("}}")
	return []byte(b.String())
}

// tlsPolicy is a resource policy of typ that denies requests without TLS to the resources ids,
// listed under field, as CDK writes it for EnforceSSL.
func tlsPolicy(typ, field string, ids ...string) string {
	var refs []string
	for _, id := range ids {
		refs = append(refs, `{"Ref": "`+id+`"}`)
	}
	return `{"Type": "` + typ + `", "Properties": {"` + field + `": [` + strings.Join(refs, ",") + `],
		"PolicyDocument": {"Statement": [{"Effect": "Deny", "Action": "*", "Principal": {"AWS": "*"},
			"Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}}}`
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name      string
		resources []string
		want      []string // Finding.String() of each finding, in order
	}{
		{
			name:      "compliant bucket",
			resources: []string{`"Good": ` + goodBucket},
		},
		{
			name:      "types without rules pass",
			resources: []string{`"Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {}}`},
		},
		{
			name: "compliant queue, its dead-letter queue and their TLS policy",
			resources: []string{
				`"Work": {"Type": "AWS::SQS::Queue", "Properties": {"SqsManagedSseEnabled": true,
					"RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["Dead", "Arn"]}, "maxReceiveCount": 5}}}`,
				`"Dead": {"Type": "AWS::SQS::Queue", "Properties": {"KmsMasterKeyId": "alias/aws/sqs"}}`,
				`"WorkPolicy": ` + tlsPolicy("AWS::SQS::QueuePolicy", "Queues", "Work", "Dead"),
			},
		},
		{
			name: "queue without encryption, dead-letter queue or TLS policy",
			resources: []string{
				`"Bare": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "fixed"}}`,
				// A policy that names the queue but does not deny plain HTTP does not count.
				`"Open": {"Type": "AWS::SQS::QueuePolicy", "Properties": {"Queues": [{"Ref": "Bare"}],
					"PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage"}]}}}`,
			},
			want: []string{
				`Bare (AWS::SQS::Queue): no-physical-name: hard-coded QueueName "fixed"`,
				"Bare (AWS::SQS::Queue): sqs-dead-letter-queue: no RedrivePolicy, and no other queue uses it as its dead-letter queue",
				"Bare (AWS::SQS::Queue): sqs-enforce-ssl: no AWS::SQS::QueuePolicy denies requests without TLS (aws:SecureTransport false)",
				"Bare (AWS::SQS::Queue): sqs-queue-encryption: no encryption at rest (SqsManagedSseEnabled or KmsMasterKeyId)",
			},
		},
		{
			name: "topic with and without a TLS policy",
			resources: []string{
				`"Good": {"Type": "AWS::SNS::Topic", "Properties": {}}`,
				`"Plain": {"Type": "AWS::SNS::Topic", "Properties": {}}`,
				`"GoodPolicy": ` + tlsPolicy("AWS::SNS::TopicPolicy", "Topics", "Good"),
			},
			want: []string{
				"Plain (AWS::SNS::Topic): sns-enforce-ssl: no AWS::SNS::TopicPolicy denies requests without TLS (aws:SecureTransport false)",
			},
		},
		{
			name: "table without point-in-time recovery, and with a name",
			resources: []string{
				`"Good": {"Type": "AWS::DynamoDB::Table", "Properties": {
					"PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": true}}}`,
				`"Risky": {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": "gateway"}}`,
			},
			want: []string{
				"Risky (AWS::DynamoDB::Table): dynamodb-point-in-time-recovery: point-in-time recovery off",
				`Risky (AWS::DynamoDB::Table): no-physical-name: hard-coded TableName "gateway"`,
			},
		},
		{
			name: "functions: ours need an Errors alarm, CDK's own providers do not",
			resources: []string{
				`"Watched": {"Type": "AWS::Lambda::Function", "Properties": {"Timeout": 30}}`,
				`"Silent": {"Type": "AWS::Lambda::Function", "Properties": {"Timeout": 30}}`,
				`"CustomS3AutoDeleteObjectsCustomResourceProviderHandler1": {"Type": "AWS::Lambda::Function", "Properties": {}}`,
				`"WatchedErrors": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Namespace": "AWS/Lambda",
					"MetricName": "Errors", "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": "Watched"}}]}}`,
				// An alarm on another metric does not count.
				`"SilentThrottles": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Namespace": "AWS/Lambda",
					"MetricName": "Throttles", "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": "Silent"}}]}}`,
			},
			want: []string{
				"Silent (AWS::Lambda::Function): lambda-errors-alarm: no alarm on its Errors metric",
			},
		},
		{
			name: "queue consumers: partial batch failures and visibility against the function timeout",
			resources: []string{
				`"Work": {"Type": "AWS::SQS::Queue", "Properties": {"SqsManagedSseEnabled": true, "VisibilityTimeout": 180,
					"RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["Dead", "Arn"]}}}}`,
				`"Dead": {"Type": "AWS::SQS::Queue", "Properties": {"SqsManagedSseEnabled": true}}`,
				`"Policy": ` + tlsPolicy("AWS::SQS::QueuePolicy", "Queues", "Work", "Dead"),
				`"Fast": {"Type": "AWS::Lambda::Function", "Properties": {"Timeout": 30}}`,
				`"Slow": {"Type": "AWS::Lambda::Function", "Properties": {"Timeout": 60}}`,
				`"FastErrors": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Namespace": "AWS/Lambda",
					"MetricName": "Errors", "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": "Fast"}}]}}`,
				`"SlowErrors": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Namespace": "AWS/Lambda",
					"MetricName": "Errors", "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": "Slow"}}]}}`,
				`"Good": {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {"EventSourceArn": {"Fn::GetAtt": ["Work", "Arn"]},
					"FunctionName": {"Ref": "Fast"}, "FunctionResponseTypes": ["ReportBatchItemFailures"]}}`,
				`"Bad": {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {"EventSourceArn": {"Fn::GetAtt": ["Work", "Arn"]},
					"FunctionName": {"Ref": "Slow"}}}`,
			},
			want: []string{
				"Bad (AWS::Lambda::EventSourceMapping): sqs-consumer: does not report partial batch failures (FunctionResponseTypes ReportBatchItemFailures)",
				"Bad (AWS::Lambda::EventSourceMapping): sqs-consumer: queue visibility timeout 180s is under 6x the function timeout 60s",
			},
		},
		{
			name: "API: the execute-api endpoint must be off once an mTLS domain exists",
			resources: []string{
				`"Domain": {"Type": "AWS::ApiGatewayV2::DomainName", "Properties": {"MutualTlsAuthentication": {"TruststoreUri": "s3://b/k"}}}`,
				`"Closed": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"DisableExecuteApiEndpoint": true}}`,
				`"Open": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"DisableExecuteApiEndpoint": false}}`,
			},
			want: []string{
				"Open (AWS::ApiGatewayV2::Api): api-mtls-bypass: execute-api endpoint enabled beside an mTLS domain: it bypasses the client-certificate check",
			},
		},
		{
			name:      "API: without an mTLS domain the endpoint may stay (dev)",
			resources: []string{`"Open": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {}}`},
		},
		{
			name: "IAM: named actions on named resources and key prefixes pass; Deny may use wildcards",
			resources: []string{`"Fine": {"Type": "AWS::IAM::Policy", "Properties": {"PolicyDocument": {"Statement": [
				{"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
					"Resource": {"Fn::Join": ["", [{"Fn::GetAtt": ["B", "Arn"]}, "/uploads/*"]]}},
				{"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": "arn:aws:dynamodb:eu-west-1:111111111111:table/t"},
				{"Effect": "Deny", "Action": "*", "Resource": "*"}]}}}`},
		},
		{
			name: "IAM: wildcard actions and resources, in a policy and in a role's inline policy",
			resources: []string{
				`"Greedy": {"Type": "AWS::IAM::Policy", "Properties": {"PolicyDocument": {"Statement": [
					{"Effect": "Allow", "Action": ["s3:GetObject*", "sqs:*"], "Resource": ["*", {"Ref": "Q"}]}]}}}`,
				`"Role": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [{"PolicyName": "p",
					"PolicyDocument": {"Statement": {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b"}}}]}}`,
			},
			want: []string{
				"Greedy (AWS::IAM::Policy): iam-no-wildcard: wildcard in an Allow: action s3:GetObject*, action sqs:*, resource *",
				"Role (AWS::IAM::Role): iam-no-wildcard: wildcard in an Allow: action *",
			},
		},
		{
			name:      "bucket without properties",
			resources: []string{`"Bare": {"Type": "AWS::S3::Bucket"}`},
			want: []string{
				"Bare (AWS::S3::Bucket): s3-bucket-encryption: no default server-side encryption (BucketEncryption)",
				"Bare (AWS::S3::Bucket): s3-bucket-public-access-block: no PublicAccessBlockConfiguration",
			},
		},
		{
			name: "public access block partly off or missing",
			resources: []string{`"Leaky": {"Type": "AWS::S3::Bucket", "Properties": {
				"BucketEncryption": {"ServerSideEncryptionConfiguration": [
					{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]},
				"PublicAccessBlockConfiguration": {"BlockPublicAcls": true, "BlockPublicPolicy": false,
					"IgnorePublicAcls": true}}}`},
			want: []string{
				"Leaky (AWS::S3::Bucket): s3-bucket-public-access-block: public access block not fully on: BlockPublicPolicy, RestrictPublicBuckets",
			},
		},
		{
			name: "encryption configured without an algorithm",
			resources: []string{`"Half": {"Type": "AWS::S3::Bucket", "Properties": {
				"BucketEncryption": {"ServerSideEncryptionConfiguration": [{"BucketKeyEnabled": true}]},
				"PublicAccessBlockConfiguration": {"BlockPublicAcls": true, "BlockPublicPolicy": true,
					"IgnorePublicAcls": true, "RestrictPublicBuckets": true}}}`},
			want: []string{
				"Half (AWS::S3::Bucket): s3-bucket-encryption: no default server-side encryption (BucketEncryption)",
			},
		},
		{
			name: "hard-coded name, ordered after an earlier logical id",
			resources: []string{
				`"Zed": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "my-bucket",
					"BucketEncryption": {"ServerSideEncryptionConfiguration": [
						{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
					"PublicAccessBlockConfiguration": {"BlockPublicAcls": true, "BlockPublicPolicy": true,
						"IgnorePublicAcls": true, "RestrictPublicBuckets": true}}}`,
				`"Alpha": {"Type": "AWS::S3::Bucket", "Properties": {}}`,
			},
			want: []string{
				"Alpha (AWS::S3::Bucket): s3-bucket-encryption: no default server-side encryption (BucketEncryption)",
				"Alpha (AWS::S3::Bucket): s3-bucket-public-access-block: no PublicAccessBlockConfiguration",
				`Zed (AWS::S3::Bucket): no-physical-name: hard-coded BucketName "my-bucket"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			findings, err := Check(template(tt.resources...))
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			var got []string
			for _, f := range findings {
				got = append(got, f.String())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestCheckRejectsBadInput(t *testing.T) {
	for name, tmpl := range map[string]string{
		"not JSON":             `{"Resources":`,
		"properties not a map": `{"Resources": {"B": {"Type": "AWS::S3::Bucket", "Properties": [1]}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Check([]byte(tmpl)); err == nil {
				t.Error("Check: want an error")
			}
		})
	}
}
