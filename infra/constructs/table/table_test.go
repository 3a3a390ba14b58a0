package table_test

import (
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/satellite-gateway/gateway/infra/constructs/table"
	"github.com/satellite-gateway/gateway/infra/internal/cdktest"
	"github.com/satellite-gateway/gateway/shared/resources"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

type obj = map[string]any

func synth(t *testing.T, props *table.Props) assertions.Template {
	t.Helper()
	stack := awscdk.NewStack(cdktest.NewApp(t, nil), jsii.String("Test"), nil)
	table.New(stack, "Data", props)
	return cdktest.Template(t, stack)
}

// TestTableMatchesResources checks keys, TTL, billing and recovery: the keys and TTL attribute
// are the ones shared/localaws creates locally.
func TestTableMatchesResources(t *testing.T) {
	tmpl := synth(t, nil)
	cdktest.Must(t, func() {
		tmpl.ResourceCountIs(jsii.String("AWS::DynamoDB::Table"), jsii.Number(1))
		tmpl.HasResourceProperties(jsii.String("AWS::DynamoDB::Table"), obj{
			"KeySchema": []any{
				obj{"AttributeName": resources.PartitionKey, "KeyType": "HASH"},
				obj{"AttributeName": resources.SortKey, "KeyType": "RANGE"},
			},
			"AttributeDefinitions": assertions.Match_ArrayWith(&[]any{
				obj{"AttributeName": resources.PartitionKey, "AttributeType": "S"},
				obj{"AttributeName": resources.SortKey, "AttributeType": "S"},
				obj{"AttributeName": resources.BySatellite.PartitionKey, "AttributeType": "S"},
				obj{"AttributeName": resources.BySatellite.SortKey, "AttributeType": "S"},
			}),
			"GlobalSecondaryIndexes": []any{obj{
				"IndexName": resources.BySatellite.Name,
				"KeySchema": []any{
					obj{"AttributeName": resources.BySatellite.PartitionKey, "KeyType": "HASH"},
					obj{"AttributeName": resources.BySatellite.SortKey, "KeyType": "RANGE"},
				},
				"Projection": obj{"ProjectionType": "INCLUDE", "NonKeyAttributes": []any{"enabled"}},
			}},
			"BillingMode":                      "PAY_PER_REQUEST",
			"PointInTimeRecoverySpecification": obj{"PointInTimeRecoveryEnabled": true},
			"TimeToLiveSpecification":          obj{"AttributeName": resources.TTLAttribute, "Enabled": true},
			"TableName":                        assertions.Match_Absent(),
		})
	})
}

func TestRemovalAndDeletionProtection(t *testing.T) {
	tests := []struct {
		name      string
		props     *table.Props
		policy    string
		protected bool
	}{
		{"zero value retains", nil, "Retain", false},
		{"dev", &table.Props{RemovalPolicy: awscdk.RemovalPolicy_DESTROY}, "Delete", false},
		{"prod", &table.Props{DeletionProtection: true}, "Retain", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl := synth(t, tt.props)
			cdktest.Must(t, func() {
				tmpl.HasResource(jsii.String("AWS::DynamoDB::Table"), obj{
					"DeletionPolicy":      tt.policy,
					"UpdateReplacePolicy": tt.policy,
					"Properties":          obj{"DeletionProtectionEnabled": tt.protected},
				})
			})
		})
	}
}
