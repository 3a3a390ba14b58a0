package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"

	"github.com/satellite-gateway/gateway/infra/cdkapp"
	"github.com/satellite-gateway/gateway/infra/internal/cdktest"
	"github.com/satellite-gateway/gateway/infra/internal/policy"
	"github.com/satellite-gateway/gateway/infra/stacks"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

// env fakes os.Getenv.
func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestEnvironment(t *testing.T) {
	str := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	tests := []struct {
		name            string
		vars            map[string]string
		account, region string // "<nil>" when unset; ignored when agnostic
		agnostic        bool
	}{
		{name: "nothing set: environment-agnostic", agnostic: true},
		{name: "empty values count as unset", vars: map[string]string{"CDK_DEFAULT_ACCOUNT": ""}, agnostic: true},
		{
			name:    "CLI defaults",
			vars:    map[string]string{"CDK_DEFAULT_ACCOUNT": "111111111111", "CDK_DEFAULT_REGION": "eu-central-1"},
			account: "111111111111", region: "eu-central-1",
		},
		{
			name: "deploy variables win",
			vars: map[string]string{
				"CDK_DEFAULT_ACCOUNT": "111111111111", "CDK_DEFAULT_REGION": "eu-central-1",
				"CDK_DEPLOY_ACCOUNT": "222222222222", "CDK_DEPLOY_REGION": "us-east-1",
			},
			account: "222222222222", region: "us-east-1",
		},
		{name: "region only", vars: map[string]string{"CDK_DEFAULT_REGION": "eu-west-1"}, account: "<nil>", region: "eu-west-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := environment(env(tt.vars))
			if tt.agnostic {
				if e != nil {
					t.Errorf("environment = {%s %s}, want nil", str(e.Account), str(e.Region))
				}
				return
			}
			if e == nil {
				t.Fatal("environment = nil")
			}
			if str(e.Account) != tt.account || str(e.Region) != tt.region {
				t.Errorf("environment = {%s %s}, want {%s %s}", str(e.Account), str(e.Region), tt.account, tt.region)
			}
		})
	}
}

// synthStage synthesizes the app as main does, into a temporary CDK_OUTDIR, and returns its one
// stack.
func synthStage(t *testing.T, vars map[string]string, stage stacks.Stage) cxapi.CloudFormationStackArtifact {
	t.Helper()
	outdir := t.TempDir()
	vars["CDK_OUTDIR"] = outdir
	vars["GATEWAY_LAMBDA_DIR"] = cdktest.LambdaDir(t)
	var asm cxapi.CloudAssembly
	cdktest.Must(t, func() {
		var err error
		asm, err = synth(env(vars), cdktest.StageContext(stage))
		if err != nil {
			t.Fatal(err)
		}
	})
	if got := *asm.Directory(); got != outdir {
		t.Errorf("assembly written to %s, want CDK_OUTDIR %s", got, outdir)
	}
	all := *asm.Stacks()
	if len(all) != 1 {
		t.Fatalf("%d stacks, want 1", len(all))
	}
	return all[0]
}

func TestSynth(t *testing.T) {
	for _, stage := range []stacks.Stage{stacks.StageDev, stacks.StageProd} {
		t.Run(string(stage), func(t *testing.T) {
			st := synthStage(t, map[string]string{
				"CDK_DEFAULT_ACCOUNT": "111111111111", "CDK_DEFAULT_REGION": "eu-central-1",
			}, stage)

			if got, want := *st.StackName(), "SatelliteGateway-"+string(stage); got != want {
				t.Errorf("stack name %q, want %q", got, want)
			}
			if e := st.Environment(); *e.Account != "111111111111" || *e.Region != "eu-central-1" {
				t.Errorf("stack environment %s/%s, want the CDK_DEFAULT_* values", *e.Account, *e.Region)
			}
			// Warnings (deprecated APIs, flags) go unseen in a `go run`; make them fail here.
			for _, m := range *st.Messages() {
				if m.Level != cxapi.SynthesisMessageLevel_INFO {
					t.Errorf("synth %s at %s: %v", m.Level, *m.Id, m.Entry.Data)
				}
			}

			tmpl, err := os.ReadFile(*st.TemplateFullPath())
			if err != nil {
				t.Fatal(err)
			}
			findings, err := policy.Check(tmpl)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range findings {
				t.Error(f)
			}
		})
	}
}

func TestUnknownStageFailsCleanly(t *testing.T) {
	_, err := synth(env(map[string]string{"CDK_OUTDIR": t.TempDir()}), map[string]any{stacks.StageContextKey: "staging"})
	if err == nil || !strings.Contains(err.Error(), `unknown stage "staging"`) {
		t.Errorf("synth with env=staging: err = %v, want unknown stage", err)
	}
}

// TestCdkJSON keeps cdk.json and the Go side in step. The CLI feeds cdk.json's context to the app
// above cdkapp's, so a flag set differently there would make `cdk deploy` ship a template that no
// test has seen.
func TestCdkJSON(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "cdk.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		App     string         `json:"app"`
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("cdk.json: %v", err)
	}
	// The CLI builds the functions first, so `cdk deploy` never ships stale or missing binaries.
	if want := "make --no-print-directory -s lambdas >&2 && go run ./infra"; cfg.App != want {
		t.Errorf("cdk.json app = %q, want %q", cfg.App, want)
	}
	if got := cfg.Context[stacks.StageContextKey]; got != string(stacks.DefaultStage) {
		t.Errorf("cdk.json context %q = %v, want the code's default %q", stacks.StageContextKey, got, stacks.DefaultStage)
	}
	// Compare through JSON so that []string and []any holding the same strings are equal.
	flags := map[string]any{}
	fb, _ := json.Marshal(cdkapp.FeatureFlags())
	if err := json.Unmarshal(fb, &flags); err != nil {
		t.Fatal(err)
	}
	for k, v := range cfg.Context {
		if k == stacks.StageContextKey {
			continue
		}
		want, ok := flags[k]
		if !ok {
			t.Errorf("cdk.json context %q: not in cdkapp.FeatureFlags; set flags there, where tests see them", k)
		} else if !reflect.DeepEqual(v, want) {
			t.Errorf("cdk.json context %q = %v, cdkapp.FeatureFlags says %v", k, v, want)
		}
	}
}

// TestCfnLint runs cfn-lint (installed into .venv by `make moto`, or named by CFN_LINT) over a
// fresh template of every stage, with the project's settings in cfn-lint.yaml.
func TestCfnLint(t *testing.T) {
	lint := os.Getenv("CFN_LINT")
	if lint == "" {
		lint = filepath.Join("..", ".venv", "bin", "cfn-lint")
		if _, err := os.Stat(lint); err != nil {
			if lint, err = exec.LookPath("cfn-lint"); err != nil {
				t.Fatal("cfn-lint not found: run `make moto` (it installs cfn-lint into .venv) or set CFN_LINT")
			}
		}
	}
	args := []string{"--config-file", "cfn-lint.yaml", "--"}
	for _, stage := range []stacks.Stage{stacks.StageDev, stacks.StageProd} {
		args = append(args, *synthStage(t, map[string]string{}, stage).TemplateFullPath())
	}
	out, err := exec.Command(lint, args...).CombinedOutput()
	if err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("run %s: %v", lint, err)
		}
		t.Errorf("cfn-lint found problems (exit %d):\n%s", exit.ExitCode(), out)
	}
}
