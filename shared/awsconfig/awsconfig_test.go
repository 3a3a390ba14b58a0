package awsconfig

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// awsEnv lists every variable that can change how the SDK picks an
// endpoint, region or credentials, so each case starts from nothing.
var awsEnv = []string{
	"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_DYNAMODB",
	"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
	"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
}

// isolate clears the AWS environment for the test and points the shared
// config files at a temporary file holding sharedConfig, so the developer's
// ~/.aws never leaks into a case.
func isolate(t *testing.T, sharedConfig string) {
	t.Helper()
	for _, k := range awsEnv {
		t.Setenv(k, "") // registers the restore
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config")
	if err := os.WriteFile(cfgFile, []byte(sharedConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", cfgFile)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
}

func TestNewS3PathStyle(t *testing.T) {
	const local = "http://127.0.0.1:5000"
	tests := []struct {
		name         string
		env          map[string]string
		sharedConfig string
		wantPath     bool
		wantEndpoint string
	}{
		{
			name:     "real AWS: no endpoint settings",
			env:      map[string]string{"AWS_REGION": "eu-west-1"},
			wantPath: false,
		},
		{
			name:         "global endpoint",
			env:          map[string]string{"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": local},
			wantPath:     true,
			wantEndpoint: local,
		},
		{
			name:         "S3 endpoint only",
			env:          map[string]string{"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": local},
			wantPath:     true,
			wantEndpoint: local,
		},
		{
			name: "S3 endpoint wins over the global one",
			env: map[string]string{
				"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
				"AWS_ENDPOINT_URL_S3": local,
			},
			wantPath:     true,
			wantEndpoint: local,
		},
		{
			name:     "another service's endpoint does not touch S3",
			env:      map[string]string{"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_SQS": local},
			wantPath: false,
		},
		{
			name:     "empty global endpoint is no endpoint",
			env:      map[string]string{"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": ""},
			wantPath: false,
		},
		{
			name: "ignore configured endpoints, global",
			env: map[string]string{
				"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": local,
				"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
			},
			wantPath: false,
		},
		{
			name: "ignore configured endpoints, S3",
			env: map[string]string{
				"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": local,
				"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
			},
			wantPath: false,
		},
		{
			name:         "shared config endpoint_url",
			env:          map[string]string{"AWS_REGION": "us-east-1"},
			sharedConfig: "[default]\nendpoint_url = " + local + "\n",
			wantPath:     true,
			wantEndpoint: local,
		},
		{
			name: "shared config services section for S3",
			env:  map[string]string{"AWS_REGION": "us-east-1"},
			sharedConfig: "[default]\nservices = emu\n\n[services emu]\ns3 =\n  endpoint_url = " +
				local + "\n",
			wantPath:     true,
			wantEndpoint: local,
		},
		{
			name: "shared config ignore_configured_endpoint_urls",
			env:  map[string]string{"AWS_REGION": "us-east-1"},
			sharedConfig: "[default]\nendpoint_url = " + local +
				"\nignore_configured_endpoint_urls = true\n",
			wantPath: false,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t, tc.sharedConfig)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := Load(t.Context())
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			opts := NewS3(cfg).Options()
			if opts.UsePathStyle != tc.wantPath {
				t.Errorf("UsePathStyle = %v, want %v", opts.UsePathStyle, tc.wantPath)
			}
			var got string
			if opts.BaseEndpoint != nil {
				got = *opts.BaseEndpoint
			}
			if got != tc.wantEndpoint {
				t.Errorf("BaseEndpoint = %q, want %q", got, tc.wantEndpoint)
			}
		})
	}
}

// TestServiceEndpoints checks that the per-service settings reach the SQS and
// DynamoDB clients built here, the way the emulator harness relies on.
func TestServiceEndpoints(t *testing.T) {
	isolate(t, "")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:2")
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:3")
	cfg, err := Load(t.Context())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := NewSQS(cfg).Options().BaseEndpoint; got == nil || *got != "http://127.0.0.1:2" {
		t.Errorf("SQS BaseEndpoint = %v, want http://127.0.0.1:2", deref(got))
	}
	if got := NewDynamoDB(cfg).Options().BaseEndpoint; got == nil || *got != "http://127.0.0.1:3" {
		t.Errorf("DynamoDB BaseEndpoint = %v, want http://127.0.0.1:3", deref(got))
	}
}

func TestNewS3CallerOptionsSeeDecision(t *testing.T) {
	isolate(t, "")
	t.Setenv("AWS_REGION", "us-east-1")
	cfg, err := Load(t.Context())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	endpoint := "http://127.0.0.1:4566"
	c := NewS3(cfg, func(o *s3.Options) { o.BaseEndpoint = &endpoint })
	if !c.Options().UsePathStyle {
		t.Error("UsePathStyle = false for an endpoint set by a caller option, want true")
	}
}

func TestLoadRequiresRegion(t *testing.T) {
	isolate(t, "")
	if _, err := Load(t.Context()); err == nil {
		t.Fatal("Load without a region: got nil error")
	}
}

func TestLoadRetryPolicy(t *testing.T) {
	tests := []struct {
		name         string
		env          map[string]string
		sharedConfig string
		optFns       []func(*config.LoadOptions) error
		wantAttempts int
		wantAdaptive bool
	}{
		{name: "project default", wantAttempts: maxAttempts},
		{name: "AWS_MAX_ATTEMPTS", env: map[string]string{"AWS_MAX_ATTEMPTS": "2"}, wantAttempts: 2},
		{name: "shared config max_attempts", sharedConfig: "[default]\nmax_attempts = 7\n", wantAttempts: 7},
		{name: "AWS_RETRY_MODE=standard", env: map[string]string{"AWS_RETRY_MODE": "standard"}, wantAttempts: maxAttempts},
		{
			name: "AWS_RETRY_MODE=adaptive", env: map[string]string{"AWS_RETRY_MODE": "adaptive"},
			wantAttempts: maxAttempts, wantAdaptive: true,
		},
		{
			name: "caller's retryer",
			optFns: []func(*config.LoadOptions) error{config.WithRetryer(func() aws.Retryer {
				return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 9 })
			})},
			wantAttempts: 9,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolate(t, tc.sharedConfig)
			t.Setenv("AWS_REGION", "us-east-1")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := Load(t.Context(), tc.optFns...)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			// What a client built here will actually do.
			r := NewSQS(cfg).Options().Retryer
			if got := r.MaxAttempts(); got != tc.wantAttempts {
				t.Errorf("MaxAttempts = %d, want %d", got, tc.wantAttempts)
			}
			// Adaptive mode is left to the client, which builds its own
			// retryer from RetryMode.
			adaptive := cfg.Retryer == nil && NewSQS(cfg).Options().RetryMode == aws.RetryModeAdaptive
			if adaptive != tc.wantAdaptive {
				t.Errorf("adaptive retries = %v, want %v", adaptive, tc.wantAdaptive)
			}
		})
	}
}

// TestRetryerPerClient checks each client gets its own retryer: they hold
// per-client state.
func TestRetryerPerClient(t *testing.T) {
	isolate(t, "")
	t.Setenv("AWS_REGION", "us-east-1")
	cfg, err := Load(t.Context())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Retryer == nil || cfg.Retryer() == cfg.Retryer() {
		t.Error("Retryer returns a shared instance, want one per client")
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
