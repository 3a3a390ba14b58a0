package awstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Timeouts for the emulator process. Importing moto and its dependencies
// takes a few seconds on a cold cache; a server that is not answering after
// startTimeout is broken, not slow.
const (
	startTimeout = 60 * time.Second
	stopTimeout  = 10 * time.Second
	// startAttempts bounds the retries when the free port we picked was taken
	// by someone else before moto bound it.
	startAttempts = 3
)

// Region and credentials the emulator environment uses. moto accepts any
// region and any key; fixed values keep generated ARNs and samples stable.
const (
	Region          = "us-east-1"
	AccessKeyID     = "testing"
	SecretAccessKey = "testing"
)

// Server is a running moto server process on a loopback port.
type Server struct {
	endpoint string
	cmd      *exec.Cmd
	output   *tailBuffer
	exited   chan struct{} // closed once the process has been reaped
	waitErr  error         // set before exited is closed

	closeOnce sync.Once
	closeErr  error
}

// Start starts a moto server on a free loopback port and waits until it
// answers HTTP. The binary is, in order: $MOTO_SERVER, the project's
// virtualenv (<module root>/.venv/bin/moto_server), moto_server on $PATH.
// When none exists the error says to run `make moto`: integration tests fail
// loudly rather than skip, so a missing emulator is never mistaken for green.
//
// The caller must Close the server.
func Start() (*Server, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("start moto server: %w", err)
	}
	bin, err := findMotoServer(os.Getenv, wd, exec.LookPath)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("start moto server: %w", err)
		}
		s, err := startOn(bin, port)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortInUse) || attempt == startAttempts {
			return nil, err
		}
	}
}

// errPortInUse marks a start that lost the race for its port.
var errPortInUse = errors.New("port already in use")

func startOn(bin string, port int) (*Server, error) {
	s := &Server{
		endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		output:   newTailBuffer(16 << 10),
		exited:   make(chan struct{}),
	}
	// The process lives until Close, not for the span of a context.
	s.cmd = exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port)) //nolint:noctx // see above
	s.cmd.Stdout = s.output
	s.cmd.Stderr = s.output
	s.cmd.SysProcAttr = procAttr()
	s.cmd.Env = motoEnviron(os.Environ())
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto server %s: %w", bin, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(startTimeout); err != nil {
		_ = s.Close()
		out := s.output.String()
		if strings.Contains(out, "Address already in use") {
			err = fmt.Errorf("%w: %w", err, errPortInUse)
		}
		return nil, fmt.Errorf("start moto server %s on %s: %w\nmoto output:\n%s", bin, s.endpoint, err, out)
	}
	return s, nil
}

// waitReady polls the server until any HTTP response comes back, the process
// exits, or timeout passes.
func (s *Server) waitReady(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.endpoint+"/moto-api/", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("process exited before answering: %w", s.exitErr())
		case <-ctx.Done():
			return fmt.Errorf("no answer after %s: %w", timeout, err)
		case <-tick.C:
		}
	}
}

// exitErr says how the process ended; call it only once exited is closed.
func (s *Server) exitErr() error {
	if s.waitErr == nil {
		return errors.New("exit status 0")
	}
	return s.waitErr
}

// Endpoint is the server's base URL, e.g. http://127.0.0.1:40123: the value
// for AWS_ENDPOINT_URL.
func (s *Server) Endpoint() string { return s.endpoint }

// Done is closed when the server process has exited, on Close or on its own
// (a crash), so a long-running caller can notice the emulator is gone.
func (s *Server) Done() <-chan struct{} { return s.exited }

// Output returns the tail of the server's combined stdout and stderr (its
// request log and tracebacks), for diagnosing a failed test.
func (s *Server) Output() string { return s.output.String() }

// Close stops the server's whole process group (SIGTERM, then SIGKILL after
// a grace period) and waits for it, so no emulator outlives its test binary.
// It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		select {
		case <-s.exited:
			// Already gone on its own: that is a crash, report it.
			s.closeErr = fmt.Errorf("moto server exited early: %w\n%s", s.exitErr(), s.output.String())
			return
		default:
		}
		terminate(s.cmd.Process)
		select {
		case <-s.exited:
		case <-time.After(stopTimeout):
			kill(s.cmd.Process)
			<-s.exited
		}
	})
	return s.closeErr
}

// Environ returns the current process environment with every AWS_* variable
// replaced by settings that point the standard SDK configuration at this
// server. Pass it as exec.Cmd.Env so a subprocess (a real binary in an
// end-to-end test, the aws CLI) talks to the emulator exactly as it would to
// AWS.
func (s *Server) Environ() []string {
	return append(withoutAWS(os.Environ()), s.Settings()...)
}

// Settings returns the environment variables, as NAME=value, that point the
// SDK and the aws CLI at this server. Anything else starting with AWS_ must
// be unset: a developer's AWS_PROFILE, AWS_ENDPOINT_URL_S3 or session token
// would otherwise win over these, or send requests to a real account.
func (s *Server) Settings() []string {
	return append([]string{
		"AWS_ENDPOINT_URL=" + s.endpoint,
		"AWS_REGION=" + Region,
		"AWS_DEFAULT_REGION=" + Region, // the aws CLI reads this one
		"AWS_ACCESS_KEY_ID=" + AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + SecretAccessKey,
	}, isolation()...)
}

// isolation hides what could override the settings or reach a real
// account: shared config files (endpoints, regions, profiles) and instance
// metadata (credentials).
func isolation() []string {
	return []string{
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// SetProcessEnv makes the current process environment match Environ, so that
// everything in this process that builds clients through shared/awsconfig
// reaches the server. [Main] calls it for tests; a local tool that runs the
// functions in-process calls it once at start-up, before any client exists.
func (s *Server) SetProcessEnv() error {
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "AWS_") {
			if err := os.Unsetenv(name); err != nil {
				return fmt.Errorf("unset %s: %w", name, err)
			}
		}
	}
	for _, kv := range s.Settings() {
		name, value, _ := strings.Cut(kv, "=")
		if err := os.Setenv(name, value); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
	}
	return nil
}

// motoEnviron is env without AWS settings, for the moto process itself: moto
// runs boto3 internally, which reads them too, and fails every request to a
// new service with ProfileNotFound when it inherits a developer's
// AWS_PROFILE. Shared config files are hidden from it for the same reason.
func motoEnviron(env []string) []string {
	return append(withoutAWS(env), isolation()...)
}

// withoutAWS returns env without its AWS_* variables.
func withoutAWS(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "AWS_") {
			out = append(out, kv)
		}
	}
	return out
}

// findMotoServer locates the moto_server executable, searching the module
// that contains wd. getenv, wd and lookPath are parameters so the search
// order can be tested without touching the process.
func findMotoServer(getenv func(string) string, wd string, lookPath func(string) (string, error)) (string, error) {
	const hint = "run `make moto` to install it into .venv, or set MOTO_SERVER to its path"
	if p := getenv("MOTO_SERVER"); p != "" {
		// An explicit setting that is wrong must not silently fall back to
		// some other moto.
		if !isExecutable(p) {
			return "", fmt.Errorf("moto server: MOTO_SERVER=%s is not an executable file; %s", p, hint)
		}
		return p, nil
	}
	if root, ok := moduleRoot(wd); ok {
		p := filepath.Join(root, ".venv", "bin", "moto_server")
		if isExecutable(p) {
			return p, nil
		}
	}
	if p, err := lookPath("moto_server"); err == nil {
		return p, nil
	}
	return "", errors.New("moto server: moto_server not found (MOTO_SERVER unset, no .venv/bin/moto_server in the module root, none on PATH); " + hint)
}

// moduleRoot walks up from dir to the nearest directory holding go.mod.
func moduleRoot(dir string) (string, bool) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	for {
		if fi, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && !fi.IsDir() {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// freePort asks the kernel for a free loopback port. The port is released
// before moto binds it, so another process can take it in between; Start
// retries when that happens.
func freePort() (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last max bytes written to it. moto logs every
// request, so an unbounded buffer would grow for the life of a test binary;
// only the tail matters when explaining a failure.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTailBuffer(limit int) *tailBuffer { return &tailBuffer{max: limit} }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
