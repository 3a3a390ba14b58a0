package stacks

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Context keys besides StageContextKey. Each takes a list: a JSON array in cdk.json or
// CDK_CONTEXT_JSON, or a comma-separated string from `cdk deploy -c key=a,b`.
const (
	// OTAAccountsContextKey names the AWS accounts whose principals may send change events to
	// the config-change queue: the account the OTA service (ota-lite) runs in.
	OTAAccountsContextKey = "otaAccounts"
	// AlarmEmailsContextKey names e-mail addresses subscribed to the alarm topic.
	AlarmEmailsContextKey = "alarmEmails"
)

// Options are the deploy-time choices read from the CDK context, so one codebase deploys every
// environment without edits.
type Options struct {
	Stage       Stage
	OTAAccounts []string
	AlarmEmails []string
}

var accountID = regexp.MustCompile(`^[0-9]{12}$`)

// OptionsFromContext reads and checks every context key the stack uses.
func OptionsFromContext(scope constructs.Construct) (Options, error) {
	stage, err := StageFromContext(scope)
	if err != nil {
		return Options{}, err
	}
	accounts, err := listFromContext(scope, OTAAccountsContextKey)
	if err != nil {
		return Options{}, err
	}
	for _, a := range accounts {
		if !accountID.MatchString(a) {
			return Options{}, fmt.Errorf("context %q: %q is not a 12-digit AWS account id", OTAAccountsContextKey, a)
		}
	}
	emails, err := listFromContext(scope, AlarmEmailsContextKey)
	if err != nil {
		return Options{}, err
	}
	return Options{Stage: stage, OTAAccounts: accounts, AlarmEmails: emails}, nil
}

// listFromContext reads key as a list of non-empty strings; absent means empty.
func listFromContext(scope constructs.Construct, key string) ([]string, error) {
	var raw []string
	switch v := scope.Node().TryGetContext(jsii.String(key)).(type) {
	case nil:
		return nil, nil
	case string:
		raw = strings.Split(v, ",")
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("context %q: want strings, got %T", key, e)
			}
			raw = append(raw, s)
		}
	default:
		return nil, fmt.Errorf("context %q: want a list or a comma-separated string, got %T", key, v)
	}
	var out []string
	for _, s := range raw {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}
