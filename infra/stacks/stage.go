package stacks

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
)

// StageContextKey is the CDK context key that selects the stage, so the platform team switches
// settings with `cdk deploy -c env=prod` (or cdk.json) instead of editing code.
const StageContextKey = "env"

// Stage is a deployment stage: the settings that differ between a throw-away and a real
// deployment hang off it.
type Stage string

// The stages the app knows. Anything else in the context is an error, not a silent dev: a typo in
// `-c env=prdo` must not deploy prod with dev's DESTROY policies.
const (
	StageDev  Stage = "dev"
	StageProd Stage = "prod"
)

// DefaultStage is used when the context does not name one; dev, because its settings fail safe
// for money and clutter, and prod must be asked for on purpose.
const DefaultStage = StageDev

// StageFromContext reads StageContextKey from scope's context (the App's, when called with it).
func StageFromContext(scope constructs.Construct) (Stage, error) {
	s, err := stringFromContext(scope, StageContextKey)
	if err != nil {
		return "", err
	}
	switch st := Stage(s); st {
	case StageDev, StageProd:
		return st, nil
	case "":
		return DefaultStage, nil
	default:
		return "", fmt.Errorf("context %q: unknown stage %q (want dev or prod)", StageContextKey, s)
	}
}

// Settings are the knobs a Stage turns. Keep the differences here, in one table, so a reviewer
// sees at a glance what prod does that dev does not.
type Settings struct {
	// RemovalPolicy applies to stateful resources: the bucket and the table.
	RemovalPolicy awscdk.RemovalPolicy
	// AutoDeleteObjects empties buckets on stack deletion, so a dev stack can be destroyed
	// without manual clean-up. Only meaningful with RemovalPolicy DESTROY.
	AutoDeleteObjects bool
	// TerminationProtection guards the stack itself against `cdk destroy`.
	TerminationProtection bool
	// TableDeletionProtection makes DynamoDB itself refuse to delete the table.
	TableDeletionProtection bool
	// LogRetention of log groups: a week of dev noise, a quarter of prod for incidents that are
	// noticed late.
	LogRetention awslogs.RetentionDays
}

// Settings returns the settings of s. An unknown stage gets prod's, the safe side.
func (s Stage) Settings() Settings {
	if s == StageDev {
		return Settings{
			RemovalPolicy:     awscdk.RemovalPolicy_DESTROY,
			AutoDeleteObjects: true,
			LogRetention:      awslogs.RetentionDays_ONE_WEEK,
		}
	}
	return Settings{
		RemovalPolicy:           awscdk.RemovalPolicy_RETAIN,
		TerminationProtection:   true,
		TableDeletionProtection: true,
		LogRetention:            awslogs.RetentionDays_THREE_MONTHS,
	}
}
