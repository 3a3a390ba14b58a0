package awstest

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

func TestFindMotoServer(t *testing.T) {
	// A module with `make moto` done, one without, and a stray executable.
	installed := t.TempDir()
	venvBin := filepath.Join(installed, ".venv", "bin", "moto_server")
	bare := t.TempDir()
	other := t.TempDir()
	explicit := filepath.Join(other, "moto_server")
	plain := filepath.Join(other, "not-executable")
	for path, content := range map[string]string{
		filepath.Join(installed, "go.mod"): "module x\n",
		filepath.Join(bare, "go.mod"):      "module y\n",
		venvBin:                            "#!/bin/sh\n",
		explicit:                           "#!/bin/sh\n",
		plain:                              "",
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o755)
		if path == plain || strings.HasSuffix(path, "go.mod") {
			mode = 0o644
		}
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	pkgDir := filepath.Join(installed, "shared", "awstest")
	if err := os.MkdirAll(pkgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "MOTO_SERVER" {
				return v
			}
			return ""
		}
	}
	const pathBin = "/usr/local/bin/moto_server"
	onPath := func(string) (string, error) { return pathBin, nil }
	notOnPath := func(string) (string, error) { return "", errors.New("not found") }

	tests := []struct {
		name     string
		env      string
		wd       string
		lookPath func(string) (string, error)
		want     string // "" means an error saying to run make moto
	}{
		{"MOTO_SERVER wins", explicit, pkgDir, onPath, explicit},
		{"MOTO_SERVER not executable: no fallback", plain, pkgDir, onPath, ""},
		{"MOTO_SERVER missing: no fallback", filepath.Join(other, "missing"), pkgDir, onPath, ""},
		{"virtualenv of the enclosing module", "", pkgDir, onPath, venvBin},
		{"PATH when the module has no virtualenv", "", bare, onPath, pathBin},
		{"nothing installed", "", bare, notOnPath, ""},
	}
	for _, tc := range tests {
		got, err := findMotoServer(env(tc.env), tc.wd, tc.lookPath)
		switch {
		case tc.want == "" && (err == nil || !strings.Contains(err.Error(), "make moto")):
			t.Errorf("%s: got %q, %v; want an error saying to run make moto", tc.name, got, err)
		case tc.want != "" && (err != nil || got != tc.want):
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestModuleRoot(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, ok := moduleRoot(deep); !ok || got != root {
		t.Errorf("moduleRoot(%s) = %q, %v; want %q", deep, got, ok, root)
	}
}

// TestStartFailureShowsOutput runs a stand-in that dies at once: Start must
// fail quickly with what the process printed, not wait out its timeout.
func TestStartFailureShowsOutput(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "moto_server")
	script := "#!/bin/sh\necho 'ImportError: no module named moto' >&2\nexit 3\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MOTO_SERVER", fake)
	start := time.Now()
	s, err := Start()
	if err == nil {
		s.Close()
		t.Fatal("Start with a dying server: no error")
	}
	if !strings.Contains(err.Error(), "ImportError: no module named moto") {
		t.Errorf("error does not carry the server's output: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Start took %s to notice the exit", d)
	}
}

// TestStartIgnoresInheritedProfile guards against moto inheriting the
// caller's AWS settings: with AWS_PROFILE naming a profile that does not
// exist, moto's embedded boto3 answered every first request to a service
// with a 500 (ProfileNotFound).
func TestStartIgnoresInheritedProfile(t *testing.T) {
	t.Setenv("AWS_PROFILE", "no-such-profile")
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A client that reads nothing from the environment.
	api := sqs.New(sqs.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint()),
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
	})
	if _, err := api.ListQueues(t.Context(), &sqs.ListQueuesInput{}); err != nil {
		t.Fatalf("ListQueues: %v\nmoto output:\n%s", err, s.Output())
	}
}

func TestEnviron(t *testing.T) {
	t.Setenv("AWS_PROFILE", "production")
	t.Setenv("AWS_ENDPOINT_URL_S3", "https://elsewhere.example")
	t.Setenv("AWS_SESSION_TOKEN", "secret")
	t.Setenv("AWSTEST_UNRELATED", "kept")
	s := &Server{endpoint: "http://127.0.0.1:1234"}
	env := s.Environ()
	for _, kv := range env {
		for _, banned := range []string{"AWS_PROFILE=", "AWS_ENDPOINT_URL_S3=", "AWS_SESSION_TOKEN="} {
			if strings.HasPrefix(kv, banned) {
				t.Errorf("Environ keeps %s", kv)
			}
		}
	}
	for _, want := range []string{
		"AWS_ENDPOINT_URL=http://127.0.0.1:1234", "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWSTEST_UNRELATED=kept",
	} {
		if !slices.Contains(env, want) {
			t.Errorf("Environ lacks %s", want)
		}
	}
}

func TestUniqueName(t *testing.T) {
	a, b := UniqueName(t, 63), UniqueName(t, 63)
	if a == b {
		t.Errorf("two calls gave the same name %q", a)
	}
	if !strings.HasPrefix(a, "testuniquename-") {
		t.Errorf("name %q does not show its test", a)
	}
	t.Run("Long/Sub Test_With.Odd+Chars", func(t *testing.T) {
		for _, maxLen := range []int{20, 63} {
			n := uniqueName(t, "Hint!", maxLen)
			if len(n) > maxLen {
				t.Errorf("uniqueName(max %d) = %q: too long", maxLen, n)
			}
			for _, r := range n {
				if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
					t.Errorf("uniqueName = %q: invalid character %q", n, r)
				}
			}
			if strings.Contains(n, "--") || strings.HasPrefix(n, "-") {
				t.Errorf("uniqueName = %q: stray dashes", n)
			}
		}
	})
}

func TestTailBuffer(t *testing.T) {
	b := newTailBuffer(8)
	for _, s := range []string{"hello ", "world", "!"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := b.String(); got != "o world!"[len("o world!")-8:] {
		t.Errorf("tail = %q, want %q", got, "o world!")
	}
}
