package stacks

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/satellite-gateway/gateway/infra/constructs/api"
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

// Context keys of the API's custom domain with mutual TLS (see api.MTLS). They come together:
// with apiDomain set, the certificate and truststore are required, and prod requires all three.
const (
	APIDomainContextKey         = "apiDomain"
	APICertificateContextKey    = "apiCertificateArn"
	TruststoreURIContextKey     = "truststoreUri"
	TruststoreVersionContextKey = "truststoreVersion"
)

// Options are the deploy-time choices read from the CDK context, so one codebase deploys every
// environment without edits.
type Options struct {
	Stage       Stage
	OTAAccounts []string
	AlarmEmails []string
	// MTLS is nil when no apiDomain is given (dev only).
	MTLS *api.MTLS
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
	mtls, err := mtlsFromContext(scope, stage)
	if err != nil {
		return Options{}, err
	}
	return Options{Stage: stage, OTAAccounts: accounts, AlarmEmails: emails, MTLS: mtls}, nil
}

// mtlsFromContext reads the custom-domain keys. prod refuses to go without them: satellites can
// only authenticate through mTLS, so a prod API without it could serve nobody.
func mtlsFromContext(scope constructs.Construct, stage Stage) (*api.MTLS, error) {
	var m api.MTLS
	for key, dst := range map[string]*string{
		APIDomainContextKey:         &m.DomainName,
		APICertificateContextKey:    &m.CertificateArn,
		TruststoreURIContextKey:     &m.TruststoreURI,
		TruststoreVersionContextKey: &m.TruststoreVersion,
	} {
		v, err := stringFromContext(scope, key)
		if err != nil {
			return nil, err
		}
		*dst = strings.TrimSpace(v)
	}
	if m == (api.MTLS{}) {
		if stage == StageProd {
			return nil, fmt.Errorf("stage prod needs the API's mTLS domain: context %q, %q and %q",
				APIDomainContextKey, APICertificateContextKey, TruststoreURIContextKey)
		}
		return nil, nil
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("context %q, %q, %q: %w",
			APIDomainContextKey, APICertificateContextKey, TruststoreURIContextKey, err)
	}
	return &m, nil
}

// stringFromContext reads key as a string; absent means "".
func stringFromContext(scope constructs.Construct, key string) (string, error) {
	switch v := scope.Node().TryGetContext(jsii.String(key)).(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	default:
		return "", fmt.Errorf("context %q: want a string, got %T", key, v)
	}
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
