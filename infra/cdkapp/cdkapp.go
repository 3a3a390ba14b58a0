// Package cdkapp builds the CDK App the same way for every caller: `go run ./infra`, `cdk synth`
// (which runs the former) and the template tests. The feature flags live here, in Go, rather than
// in cdk.json, because only the CDK CLI reads cdk.json: flags kept there would make the tests and a
// plain `go run ./infra` synthesize a different template from the one `cdk deploy` ships.
package cdkapp

import (
	"maps"

	"github.com/aws/aws-cdk-go/awscdk/v2"
)

// FeatureFlags returns the CDK feature flags the app is written against: the set aws-cdk-lib
// 2.224.0 recommends for new projects (its recommended-feature-flags.json, which is what
// `cdk init` writes into a new cdk.json). When the awscdk pin moves, review the new release's
// list and move these on purpose: a flag flip can replace resources.
func FeatureFlags() map[string]any {
	return map[string]any{
		"@aws-cdk-containers/ecs-service-extensions:enableDefaultLogDriver":                          true,
		"@aws-cdk/aws-apigateway:authorizerChangeDeploymentLogicalId":                                true,
		"@aws-cdk/aws-apigateway:disableCloudWatchRole":                                              true,
		"@aws-cdk/aws-apigateway:requestValidatorUniqueId":                                           true,
		"@aws-cdk/aws-appsync:appSyncGraphQLAPIScopeLambdaPermission":                                true,
		"@aws-cdk/aws-appsync:useArnForSourceApiAssociationIdentifier":                               true,
		"@aws-cdk/aws-autoscaling:generateLaunchTemplateInsteadOfLaunchConfig":                       true,
		"@aws-cdk/aws-cloudwatch-actions:changeLambdaPermissionLogicalIdForLambdaAction":             true,
		"@aws-cdk/aws-codedeploy:removeAlarmsFromDeploymentGroup":                                    true,
		"@aws-cdk/aws-codepipeline-actions:useNewDefaultBranchForCodeCommitSource":                   true,
		"@aws-cdk/aws-codepipeline:crossAccountKeyAliasStackSafeResourceName":                        true,
		"@aws-cdk/aws-codepipeline:crossAccountKeysDefaultValueToFalse":                              true,
		"@aws-cdk/aws-codepipeline:defaultPipelineTypeToV2":                                          true,
		"@aws-cdk/aws-dynamodb:resourcePolicyPerReplica":                                             true,
		"@aws-cdk/aws-dynamodb:retainTableReplica":                                                   true,
		"@aws-cdk/aws-ec2:bastionHostUseAmazonLinux2023ByDefault":                                    true,
		"@aws-cdk/aws-ec2:ebsDefaultGp3Volume":                                                       true,
		"@aws-cdk/aws-ec2:ec2SumTImeoutEnabled":                                                      true,
		"@aws-cdk/aws-ec2:launchTemplateDefaultUserData":                                             true,
		"@aws-cdk/aws-ec2:requirePrivateSubnetsForEgressOnlyInternetGateway":                         true,
		"@aws-cdk/aws-ec2:restrictDefaultSecurityGroup":                                              true,
		"@aws-cdk/aws-ec2:uniqueImdsv2TemplateName":                                                  true,
		"@aws-cdk/aws-ecs-patterns:secGroupsDisablesImplicitOpenListener":                            true,
		"@aws-cdk/aws-ecs-patterns:uniqueTargetGroupId":                                              true,
		"@aws-cdk/aws-ecs:arnFormatIncludesClusterName":                                              true,
		"@aws-cdk/aws-ecs:disableEcsImdsBlocking":                                                    true,
		"@aws-cdk/aws-ecs:disableExplicitDeploymentControllerForCircuitBreaker":                      true,
		"@aws-cdk/aws-ecs:enableImdsBlockingDeprecatedFeature":                                       false,
		"@aws-cdk/aws-ecs:reduceEc2FargateCloudWatchPermissions":                                     true,
		"@aws-cdk/aws-ecs:removeDefaultDeploymentAlarm":                                              true,
		"@aws-cdk/aws-efs:denyAnonymousAccess":                                                       true,
		"@aws-cdk/aws-efs:mountTargetOrderInsensitiveLogicalId":                                      true,
		"@aws-cdk/aws-eks:nodegroupNameAttribute":                                                    true,
		"@aws-cdk/aws-elasticloadbalancingV2:albDualstackWithoutPublicIpv4SecurityGroupRulesDefault": true,
		"@aws-cdk/aws-elasticloadbalancingv2:networkLoadBalancerWithSecurityGroupByDefault":          true,
		"@aws-cdk/aws-events:eventsTargetQueueSameAccount":                                           true,
		"@aws-cdk/aws-events:requireEventBusPolicySid":                                               true,
		"@aws-cdk/aws-iam:importedRoleStackSafeDefaultPolicyName":                                    true,
		"@aws-cdk/aws-iam:minimizePolicies":                                                          true,
		"@aws-cdk/aws-iam:oidcRejectUnauthorizedConnections":                                         true,
		"@aws-cdk/aws-kms:aliasNameRef":                                                              true,
		"@aws-cdk/aws-kms:applyImportedAliasPermissionsToPrincipal":                                  true,
		"@aws-cdk/aws-kms:reduceCrossAccountRegionPolicyScope":                                       true,
		"@aws-cdk/aws-lambda-nodejs:sdkV3ExcludeSmithyPackages":                                      true,
		"@aws-cdk/aws-lambda-nodejs:useLatestRuntimeVersion":                                         true,
		"@aws-cdk/aws-lambda:createNewPoliciesWithAddToRolePolicy":                                   false,
		"@aws-cdk/aws-lambda:recognizeLayerVersion":                                                  true,
		"@aws-cdk/aws-lambda:useCdkManagedLogGroup":                                                  true,
		"@aws-cdk/aws-opensearchservice:enableOpensearchMultiAzWithStandby":                          true,
		"@aws-cdk/aws-rds:auroraClusterChangeScopeOfInstanceParameterGroupWithEachParameters":        true,
		"@aws-cdk/aws-rds:databaseProxyUniqueResourceName":                                           true,
		"@aws-cdk/aws-rds:preventRenderingDeprecatedCredentials":                                     true,
		"@aws-cdk/aws-rds:setCorrectValueForDatabaseInstanceReadReplicaInstanceResourceId":           true,
		"@aws-cdk/aws-redshift:columnId":                                                             true,
		"@aws-cdk/aws-route53-patters:useCertificate":                                                true,
		"@aws-cdk/aws-route53-targets:userPoolDomainNameMethodWithoutCustomResource":                 true,
		"@aws-cdk/aws-s3:createDefaultLoggingPolicy":                                                 true,
		"@aws-cdk/aws-s3:keepNotificationInImportedBucket":                                           false,
		"@aws-cdk/aws-s3:publicAccessBlockedByDefault":                                               true,
		"@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy":                                            true,
		"@aws-cdk/aws-s3:setUniqueReplicationRoleName":                                               true,
		"@aws-cdk/aws-secretsmanager:useAttachedSecretResourcePolicyForSecretTargetAttachments":      true,
		"@aws-cdk/aws-signer:signingProfileNamePassedToCfn":                                          true,
		"@aws-cdk/aws-sns-subscriptions:restrictSqsDescryption":                                      true,
		"@aws-cdk/aws-stepfunctions-tasks:enableEmrServicePolicyV2":                                  true,
		"@aws-cdk/aws-stepfunctions-tasks:fixRunEcsTaskPolicy":                                       true,
		"@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2":                                 true,
		"@aws-cdk/core:aspectPrioritiesMutating":                                                     true,
		"@aws-cdk/core:cfnIncludeRejectComplexResourceUpdateCreatePolicyIntrinsics":                  true,
		"@aws-cdk/core:checkSecretUsage":                                                             true,
		"@aws-cdk/core:enableAdditionalMetadataCollection":                                           true,
		"@aws-cdk/core:enablePartitionLiterals":                                                      true,
		"@aws-cdk/core:explicitStackTags":                                                            true,
		"@aws-cdk/core:includePrefixInUniqueNameGeneration":                                          true,
		"@aws-cdk/core:target-partitions":                                                            []string{"aws", "aws-cn"},
		"@aws-cdk/core:validateSnapshotRemovalPolicy":                                                true,
		"@aws-cdk/custom-resources:logApiResponseDataPropertyTrueDefault":                            false,
		"@aws-cdk/customresources:installLatestAwsSdkDefault":                                        false,
		"@aws-cdk/s3-notifications:addS3TrustKeyPolicyForSnsSubscriptions":                           true,
	}
}

// New returns an App whose context holds FeatureFlags under any props.Context given. Both sit
// below the CLI's context (cdk.json, --context) in precedence, so `cdk synth -c env=prod` still
// wins; cdk.json must therefore not contradict the flags (a test in ./infra checks it).
func New(props *awscdk.AppProps) awscdk.App {
	var p awscdk.AppProps
	if props != nil {
		p = *props
	}
	ctx := FeatureFlags()
	if p.Context != nil {
		maps.Copy(ctx, *p.Context)
	}
	p.Context = &ctx
	return awscdk.NewApp(&p)
}
