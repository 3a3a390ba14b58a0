// Package storage is the gateway's object store: one S3 bucket that holds the satellites' uplink
// tarballs (uploads/), the downlink tarballs assembled for them (updates/) and the uploads the
// ingester rejected (quarantine/).
//
// One bucket, not three, because the three share every security setting and the ingest pipeline
// moves objects between prefixes; the prefixes carry the different retention. Later constructs
// (ingest, API) take what they need from Storage: the bucket, to grant access and wire
// notifications, and the prefix constants, to scope those grants and notifications.
package storage

import (
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/satellite-gateway/gateway/shared/s3keys"
)

// Key prefixes come from shared/s3keys, the one definition of the bucket layout that the
// presigning, ingest and assembly code use too; lifecycle rules and, later, grants and
// notifications are scoped by them:
//   - uploads/ holds uplink tarballs; they are only needed until ingested (and a while after,
//     to re-ingest after a bug fix), so they expire;
//   - updates/ holds each satellite's downlink tarballs; current versions never expire, since a
//     satellite may be offline for weeks and still needs its latest state;
//   - quarantine/ holds refused uploads, kept longer than uploads so that a refusal can still
//     be investigated after someone notices it.

// Defaults for Props' zero values.
const (
	DefaultUploadRetentionDays     = 30
	DefaultQuarantineRetentionDays = 180
	// updatesNoncurrentDays keeps overwritten downlink tarballs for a week: long enough to see
	// what a satellite was served before a bad change, short enough that versioning does not
	// keep every tarball of every satellite forever.
	updatesNoncurrentDays = 7
	// noncurrentDays drops the versions that expiry leaves behind after a day: the current
	// version's expiry already decided they are no longer wanted.
	noncurrentDays = 1
	// supersededDays keeps an object its writer marked superseded for a week: a satellite or
	// an operator that read the pointer just before the switch can still fetch it.
	supersededDays = 7
	// abortMultipartDays: a satellite's upload that died half-way is retried from scratch, so
	// its parts (billed, invisible in listings) are useless after a day.
	abortMultipartDays = 1
)

// Props configures Storage. The zero value is valid: default retention, RETAIN.
type Props struct {
	// UploadRetentionDays expires objects under s3keys.UploadsPrefix after this many days.
	// Zero means DefaultUploadRetentionDays.
	UploadRetentionDays int
	// QuarantineRetentionDays expires objects under s3keys.QuarantinePrefix after this many days; it
	// must exceed the upload retention. Zero means DefaultQuarantineRetentionDays.
	QuarantineRetentionDays int
	// RemovalPolicy of the bucket. Empty means RETAIN: losing data must be asked for.
	RemovalPolicy awscdk.RemovalPolicy
	// AutoDeleteObjects empties the bucket when the stack deletes it (adds a small
	// custom-resource Lambda). Requires RemovalPolicy DESTROY.
	AutoDeleteObjects bool
}

// Storage is the gateway's bucket and its key layout.
type Storage struct {
	constructs.Construct
	bucket awss3.Bucket
}

// New adds the bucket under scope. It panics on invalid props, as CDK constructs do: the mistake
// is in the app's code and shows up at synth time, before anything is deployed.
func New(scope constructs.Construct, id string, props *Props) *Storage {
	p := withDefaults(props)
	if err := p.validate(); err != nil {
		panic(fmt.Sprintf("storage %s: %v", id, err))
	}

	c := constructs.NewConstruct(scope, jsii.String(id))
	bucket := awss3.NewBucket(c, jsii.String("Bucket"), &awss3.BucketProps{
		// No BucketName: a physical name would block replacement and a second stage in the
		// same account, and bucket names are global.
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		// S3-managed keys: the objects are not more secret than the API that serves them, and
		// KMS would add a per-request cost and key-policy wiring to every reader and writer.
		Encryption: awss3.BucketEncryption_S3_MANAGED,
		// ACLs off: access is only through IAM and presigned URLs.
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		EnforceSSL:        jsii.Bool(true),
		MinimumTLSVersion: jsii.Number(1.2),
		// Versioning protects downlink tarballs against a bad overwrite and uploads against an
		// accidental delete; the lifecycle rules bound what it keeps.
		Versioned:         jsii.Bool(true),
		LifecycleRules:    lifecycleRules(p),
		RemovalPolicy:     p.RemovalPolicy,
		AutoDeleteObjects: jsii.Bool(p.AutoDeleteObjects),
	})
	return &Storage{Construct: c, bucket: bucket}
}

// Bucket is the gateway's bucket, for grants and notifications scoped by the prefix constants.
func (s *Storage) Bucket() awss3.IBucket { return s.bucket }

// NotifyUploads sends an s3:ObjectCreated:* notification to queue for every object created under
// s3keys.UploadsPrefix: what drives ingest.
//
// It writes the bucket's NotificationConfiguration directly instead of calling
// Bucket.AddEventNotification, which would add a custom-resource Lambda whose role may call
// s3:PutBucketNotification on every bucket ("Resource": "*"), against the no-wildcard IAM rule.
// Without it, S3 checks at bucket update time that it may send to the queue, so the queue policy
// must exist first and cannot name the bucket's ARN (that would be a cycle: the bucket would
// depend on a policy that depends on the bucket). The policy is therefore scoped to S3 acting for
// this account (aws:SourceAccount), the confused-deputy guard AWS documents; the ingest function
// still checks the bucket and key of every record. Call it once.
func (s *Storage) NotifyUploads(queue awssqs.IQueue) {
	res := queue.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("S3UploadNotifications"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("s3.amazonaws.com"), nil)},
		Actions:    jsii.Strings("sqs:SendMessage"),
		Resources:  &[]*string{queue.QueueArn()},
		Conditions: &map[string]any{
			"StringEquals": map[string]any{"aws:SourceAccount": awscdk.Aws_ACCOUNT_ID()},
		},
	}))
	cfn := s.bucket.Node().DefaultChild().(awss3.CfnBucket)
	cfn.SetNotificationConfiguration(&awss3.CfnBucket_NotificationConfigurationProperty{
		QueueConfigurations: &[]any{&awss3.CfnBucket_QueueConfigurationProperty{
			Event: jsii.String("s3:ObjectCreated:*"),
			Queue: queue.QueueArn(),
			Filter: &awss3.CfnBucket_NotificationFilterProperty{
				S3Key: &awss3.CfnBucket_S3KeyFilterProperty{
					Rules: &[]any{&awss3.CfnBucket_FilterRuleProperty{
						Name: jsii.String("prefix"), Value: jsii.String(s3keys.UploadsPrefix),
					}},
				},
			},
		}},
	})
	if dep := res.PolicyDependable; dep != nil {
		cfn.Node().AddDependency(dep)
	}
}

func withDefaults(props *Props) Props {
	var p Props
	if props != nil {
		p = *props
	}
	if p.UploadRetentionDays == 0 {
		p.UploadRetentionDays = DefaultUploadRetentionDays
	}
	if p.QuarantineRetentionDays == 0 {
		p.QuarantineRetentionDays = DefaultQuarantineRetentionDays
	}
	if p.RemovalPolicy == "" {
		p.RemovalPolicy = awscdk.RemovalPolicy_RETAIN
	}
	return p
}

func (p Props) validate() error {
	if p.UploadRetentionDays < 1 {
		return fmt.Errorf("upload retention %d days: want at least 1", p.UploadRetentionDays)
	}
	if p.QuarantineRetentionDays <= p.UploadRetentionDays {
		return fmt.Errorf("quarantine retention %d days: want more than the upload retention (%d days)",
			p.QuarantineRetentionDays, p.UploadRetentionDays)
	}
	if p.AutoDeleteObjects && p.RemovalPolicy != awscdk.RemovalPolicy_DESTROY {
		return fmt.Errorf("auto-delete objects needs removal policy DESTROY, not %s", p.RemovalPolicy)
	}
	return nil
}

func lifecycleRules(p Props) *[]*awss3.LifecycleRule {
	days := func(n int) awscdk.Duration { return awscdk.Duration_Days(jsii.Number(n)) }
	rules := []*awss3.LifecycleRule{
		{
			Id:                                  jsii.String("abort-incomplete-multipart-uploads"),
			AbortIncompleteMultipartUploadAfter: days(abortMultipartDays),
			// Once expiry has removed an object's last noncurrent version, its delete marker
			// is all that is left; drop it so listings stay cheap.
			ExpiredObjectDeleteMarker: jsii.Bool(true),
		},
		{
			Id:                          jsii.String("expire-uploads"),
			Prefix:                      jsii.String(s3keys.UploadsPrefix),
			Expiration:                  days(p.UploadRetentionDays),
			NoncurrentVersionExpiration: days(noncurrentDays),
		},
		{
			Id:                          jsii.String("expire-quarantine"),
			Prefix:                      jsii.String(s3keys.QuarantinePrefix),
			Expiration:                  days(p.QuarantineRetentionDays),
			NoncurrentVersionExpiration: days(noncurrentDays),
		},
		{
			Id:                          jsii.String("expire-noncurrent-updates"),
			Prefix:                      jsii.String(s3keys.UpdatesPrefix),
			NoncurrentVersionExpiration: days(updatesNoncurrentDays),
		},
	}
	// Large device files are content-addressed and never overwritten: ingest tags the object a
	// file item stopped pointing at, and this rule expires it after a grace period long enough
	// for a read that started before the switch. (Old downlink tarballs are not tagged: they
	// are a few KB per change, and a tag racing a satellite's return to an earlier state would
	// expire its current tarball.)
	for _, prefix := range []string{s3keys.FilesPrefix} {
		rules = append(rules, &awss3.LifecycleRule{
			Id:     jsii.String("expire-superseded-" + strings.TrimSuffix(prefix, "/") + "-objects"),
			Prefix: jsii.String(prefix),
			TagFilters: &map[string]any{
				s3keys.SupersededTagKey: s3keys.SupersededTagValue,
			},
			Expiration:                  days(supersededDays),
			NoncurrentVersionExpiration: days(noncurrentDays),
		})
	}
	return &rules
}
