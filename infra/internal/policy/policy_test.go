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
			name:      "other types are not bucket rules' business",
			resources: []string{`"Queue": {"Type": "AWS::SQS::Queue", "Properties": {}}`},
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
