package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The fixtures are real go test output:
//   - testdata/bench.txt: this module's five benchmark packages,
//     -benchmem -benchtime 1x (all pass);
//   - testdata/buildfailed.txt: `go test -bench . ./...` of this module
//     while shared/lambdalocal did not compile (a real vet error);
//   - testdata/failures.txt: the module in testdata/failing (benchmarks
//     that fail, fail on their second run, panic, and print between their
//     name and their figures):
//     cd testdata/failing && go test -run '^$' -bench . -benchmem -benchtime 3x ./... > ../failures.txt
const module = "github.com/satellite-gateway/gateway"

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func parseFile(t *testing.T, name string) *Run {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	run, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func find(t *testing.T, run *Run, name string) Result {
	t.Helper()
	for _, r := range run.Results {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no result %s in %d results", name, len(run.Results))
	return Result{}
}

func metric(t *testing.T, r Result, unit string) Metric {
	t.Helper()
	for _, m := range r.Metrics {
		if m.Unit == unit {
			return m
		}
	}
	t.Fatalf("%s: no %s in %+v", r.Name, unit, r.Metrics)
	return Metric{}
}

func TestParseBench(t *testing.T) {
	run := parseFile(t, "bench.txt")
	if len(run.Failures) != 0 {
		t.Errorf("failures: %+v", run.Failures)
	}
	var names []string
	for _, r := range run.Results {
		names = append(names, r.Name)
	}
	want := []string{"BenchmarkReader", "BenchmarkIngestMoto", "BenchmarkIngestCPU",
		"BenchmarkUpdatesNotModified/warm", "BenchmarkUpdatesNotModified/cold", "BenchmarkUpdatesNotModified/in-memory",
		"BenchmarkAssemble", "BenchmarkAppend", "BenchmarkBytesPerEvent"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("results %q, want %q", names, want)
	}
	if run.CPU != "AMD EPYC" || run.GOOS != "linux" || run.GOARCH != "amd64" {
		t.Errorf("headers: %q %q %q", run.CPU, run.GOOS, run.GOARCH)
	}

	reader := find(t, run, "BenchmarkReader")
	if reader.Pkg != module+"/shared/wire/uplink" || reader.Procs != 2 || reader.Iters != 1 {
		t.Errorf("reader: %+v", reader)
	}
	// The value as printed, and parsed; ns/op is absent (reported as 0).
	if m := metric(t, reader, "x-baseline"); m.Text != "29.51" || m.Value != 29.51 {
		t.Errorf("x-baseline: %+v", m)
	}
	if got := len(reader.Metrics); got != 7 {
		t.Errorf("reader: %d metrics, want 7 (5 reported, B/op, allocs/op)", got)
	}
	if m := metric(t, find(t, run, "BenchmarkIngestMoto"), "writereqs/1000ev"); m.Value != 94 {
		t.Errorf("writereqs: %+v", m)
	}
	cold := find(t, run, "BenchmarkUpdatesNotModified/cold")
	if cold.Pkg != module+"/shared/api" || metric(t, cold, "ddb-reads/op").Value != 3 {
		t.Errorf("cold: %+v", cold)
	}
	if m := metric(t, find(t, run, "BenchmarkAppend"), "p99-µs"); m.Value != 13583 {
		t.Errorf("p99: %+v", m)
	}
}

func TestParseBuildFailed(t *testing.T) {
	run := parseFile(t, "buildfailed.txt")
	if len(run.Results) != 9 {
		t.Errorf("%d results, want 9", len(run.Results))
	}
	if len(run.Failures) != 1 {
		t.Fatalf("failures: %+v", run.Failures)
	}
	f := run.Failures[0]
	if f.Pkg != module+"/shared/lambdalocal" || f.What != "[build failed]" ||
		len(f.Detail) != 1 || !strings.Contains(f.Detail[0], "unknown field Redeliver") {
		t.Errorf("failure: %+v", f)
	}
	// A package that prints between results does not break the ones after.
	if r := find(t, run, "BenchmarkIngestCPU"); r.Pkg != module+"/shared/ingest" {
		t.Errorf("ingest: %+v", r)
	}
}

func TestParseFailures(t *testing.T) {
	run := parseFile(t, "failures.txt")
	// The figures of a benchmark that printed after its name arrive on the
	// next line.
	chatty := find(t, run, "BenchmarkChattyN")
	if chatty.Iters != 3 || chatty.Pkg != "example.com/failing/chatty" || metric(t, chatty, "writereqs/1000ev").Value != 94 {
		t.Errorf("chatty: %+v", chatty)
	}
	if len(run.Results) != 2 {
		t.Errorf("%d results, want 2: %+v", len(run.Results), run.Results)
	}
	bad, panics := "example.com/failing/bad", "example.com/failing/panics"
	want := []Failure{
		{bad, "--- FAIL: BenchmarkFails", []string{"bad_test.go:12: moto: connection refused"}},
		{bad, "--- FAIL: BenchmarkErrors", []string{"bad_test.go:18: 1 of 4000 appends failed"}},
		{bad, "--- FAIL: BenchmarkFailsLate-2", []string{"bad_test.go:25: throttled on the second run"}},
		{bad, "package failed after ", nil},
		{panics, "package failed after ", []string{"panic: assignment to entry in nil map"}},
	}
	if len(run.Failures) != len(want) {
		t.Fatalf("failures: %+v", run.Failures)
	}
	for i, f := range run.Failures {
		w := want[i]
		if f.Pkg != w.Pkg || !strings.HasPrefix(f.What, w.What) || !reflect.DeepEqual(f.Detail, w.Detail) {
			t.Errorf("failure %d: %+v, want %+v", i, f, w)
		}
	}
}

func TestParseEdgeCases(t *testing.T) {
	in := strings.Join([]string{
		"pkg: example.com/p",
		"Benchmark results below are from a log line, not a result",
		"BenchmarkOdd-8 \t 10 5 ns/op 7",           // odd field count: not a result
		"BenchmarkNaN-8 \t 10 fast ns/op",          // not a number
		"BenchmarkX/size-3 \t 100 5.0 ns/op",       // -3 is GOMAXPROCS, as go test prints it
		"BenchmarkY-4 \t 100 5.0 ns/op 1.5 x-raw",  // first run
		"BenchmarkY-4 \t 100 6.0 ns/op 1.75 x-raw", // -count 2
		"ok  \texample.com/p\t0.1s",
		"BenchmarkZ \t 1 1 ns/op", // after the package ended: no package
	}, "\n")
	run, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range run.Results {
		got = append(got, r.Pkg+" "+r.Name)
	}
	want := []string{"example.com/p BenchmarkX/size", "example.com/p BenchmarkY", "example.com/p BenchmarkY", " BenchmarkZ"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("results %q, want %q", got, want)
	}
	var out bytes.Buffer
	if err := Render(&out, run, "example.com"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Y #2") {
		t.Errorf("a repeated run is not numbered:\n%s", out.String())
	}
}

// TestRender compares the table of testdata/bench.txt with
// testdata/bench.golden (go test -run TestRender -update rewrites it), and
// checks the rows the issue asks for.
func TestRender(t *testing.T) {
	var out bytes.Buffer
	if err := Render(&out, parseFile(t, "bench.txt"), module); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "bench.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Errorf("table differs from %s (-update to rewrite):\n%s", golden, out.String())
	}
	for _, fig := range []string{
		"29.51  x-baseline              reader time ÷ raw gunzip+scan (ratio)",
		"94.00  writereqs/1000ev        ingest write requests per 1000 events",
		"2.350  x-floor                 computed: write requests ÷ floor (ratio)",
		"13583  p99-µs                  spool append p99",
		"5.739  group-commit-x          spool rate ÷ raw write+fsync rate (ratio)",
		"29.69  x-raw-fsync             computed: spool p99 ÷ one raw write+fsync (ratio)", // 13583 µs × 2186/s
		"3.000  ddb-reads/op            304 path: DynamoDB reads per request",
		"4.511  ms/assembly             assembly time",
		"21.59  bytes/event             uplink bytes per event",
	} {
		if !strings.Contains(out.String(), fig) {
			t.Errorf("no row %q", fig)
		}
	}
}

func TestRunExitStatus(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		input   string
		status  int
		stdout  string
	}{
		{fixture: "bench.txt", status: 0, stdout: "shared/wire/uplink  Reader"},
		{fixture: "failures.txt", status: 1, stdout: "FAIL  example.com/failing/panics  package failed after"},
		{fixture: "buildfailed.txt", status: 1, stdout: "FAIL  shared/lambdalocal  [build failed]"},
		{input: "PASS\nok  \texample.com/p\t0.1s\n", status: 1},
		{input: "", status: 1},
	} {
		in := tc.input
		if tc.fixture != "" {
			b, err := os.ReadFile(filepath.Join("testdata", tc.fixture))
			if err != nil {
				t.Fatal(err)
			}
			in = string(b)
		}
		var stdout, stderr bytes.Buffer
		if got := run(strings.NewReader(in), &stdout, &stderr, module); got != tc.status {
			t.Errorf("%s%q: status %d, want %d (stderr %q)", tc.fixture, tc.input, got, tc.status, stderr.String())
		}
		if !strings.Contains(stdout.String(), tc.stdout) {
			t.Errorf("%s: stdout lacks %q:\n%s", tc.fixture, tc.stdout, stdout.String())
		}
	}
}

func TestFormat(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 2.35: "2.350", 29.69: "29.69", 0.01234: "0.01234", 13583.4: "13583", 123.45: "123.5"} {
		if got := format(v); got != want {
			t.Errorf("format(%v) = %q, want %q", v, got, want)
		}
	}
}
