// Package table is the gateway's DynamoDB table: one table for every item type (devices, events,
// batch ledgers, config state), keyed and expired as shared/resources says.
//
// On-demand billing, because the load is bursts of ingest after a site comes back online and
// near-idle otherwise, which provisioned capacity would either throttle or pay for idle.
// Point-in-time recovery on, because the table is the only copy of device state and events once
// the uploads expire.
package table

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/satellite-gateway/gateway/shared/resources"
)

// Props configures Table. The zero value is valid: RETAIN, no deletion protection.
type Props struct {
	// RemovalPolicy of the table. Empty means RETAIN: losing data must be asked for.
	RemovalPolicy awscdk.RemovalPolicy
	// DeletionProtection makes DynamoDB refuse DeleteTable, whoever asks (a stack update that
	// replaces the table included) until it is turned off.
	DeletionProtection bool
}

// Table is the gateway table.
type Table struct {
	constructs.Construct
	table awsdynamodb.Table
}

// New adds the table under scope.
func New(scope constructs.Construct, id string, props *Props) *Table {
	var p Props
	if props != nil {
		p = *props
	}
	if p.RemovalPolicy == "" {
		p.RemovalPolicy = awscdk.RemovalPolicy_RETAIN
	}
	c := constructs.NewConstruct(scope, jsii.String(id))
	str := func(name string) *awsdynamodb.Attribute {
		return &awsdynamodb.Attribute{Name: jsii.String(name), Type: awsdynamodb.AttributeType_STRING}
	}
	t := awsdynamodb.NewTable(c, jsii.String("Table"), &awsdynamodb.TableProps{
		// No TableName: generated names let stages share an account and allow replacement.
		PartitionKey: str(resources.PartitionKey),
		SortKey:      str(resources.SortKey),
		BillingMode:  awsdynamodb.BillingMode_PAY_PER_REQUEST,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		TimeToLiveAttribute: jsii.String(resources.TTLAttribute),
		// DynamoDB encrypts every table at rest; the AWS-owned key costs nothing per request
		// and has no key policy to keep. A customer key would only pay off for key-level audit.
		Encryption:         awsdynamodb.TableEncryption_DEFAULT,
		DeletionProtection: jsii.Bool(p.DeletionProtection),
		RemovalPolicy:      p.RemovalPolicy,
	})
	for _, ix := range resources.Indexes() {
		t.AddGlobalSecondaryIndex(&awsdynamodb.GlobalSecondaryIndexProps{
			IndexName:        jsii.String(ix.Name),
			PartitionKey:     str(ix.PartitionKey),
			SortKey:          str(ix.SortKey),
			ProjectionType:   awsdynamodb.ProjectionType_INCLUDE,
			NonKeyAttributes: jsii.Strings(ix.Include...),
		})
	}
	return &Table{Construct: c, table: t}
}

// Table is the DynamoDB table, for grants and outputs.
func (t *Table) Table() awsdynamodb.ITable { return t.table }
