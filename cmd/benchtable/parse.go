package main

import (
	"bufio"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Run is what one `go test -bench` output holds.
type Run struct {
	CPU, GOOS, GOARCH string
	Results           []Result
	Failures          []Failure
}

// Result is one benchmark result line.
type Result struct {
	Pkg     string // import path, from the preceding "pkg:" line
	Name    string // "BenchmarkX/sub", without the -GOMAXPROCS suffix
	Procs   int    // the GOMAXPROCS suffix; 0 when absent (GOMAXPROCS=1)
	Iters   int64
	Metrics []Metric // in printed order, ns/op, B/op and allocs/op included
}

// Metric is one "value unit" pair. Text keeps the value as printed, so the
// table shows exactly what the benchmark reported.
type Metric struct {
	Value float64
	Text  string
	Unit  string
}

// Failure is a failed benchmark ("--- FAIL: BenchmarkX") or package
// ("FAIL\tpkg ...") with the lines that explain it.
type Failure struct {
	Pkg    string
	What   string // "--- FAIL: BenchmarkX-2", "[build failed]", "0.006s"
	Detail []string
}

// maxDetail bounds the lines kept per failure: the raw output is printed
// beside the table, this is only the summary.
const maxDetail = 12

var procsSuffix = regexp.MustCompile(`-([0-9]+)$`)

// Parse reads `go test -bench` output. It understands the standard
// benchmark line ("BenchmarkName-N <iterations> <value> <unit> ..."), the
// "goos:", "goarch:", "cpu:" and "pkg:" headers, a result split in two by
// output the benchmark printed after its name, and the ways go test reports
// failure (--- FAIL, FAIL <pkg>, panics, build errors). Other lines (logs,
// PASS, ok) are skipped.
func Parse(r io.Reader) (*Run, error) {
	p := parser{run: &Run{}, builds: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		p.line(sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	// Benchmark failures whose package never printed a FAIL line (cut-off
	// input) keep what they have.
	return p.run, nil
}

type parser struct {
	run *Run
	pkg string
	// pending is a benchmark name whose result went to the next line
	// because the benchmark printed something after go test wrote its name.
	pending string
	// detail collects indented lines under the last --- FAIL.
	detail *Failure
	// unowned are benchmark failures seen before their package's name.
	unowned []int
	// panic is the last "panic:" line of the current package.
	panic string
	// builds maps an import path to its compiler or vet errors ("# pkg").
	builds map[string][]string
	build  string
}

func (p *parser) line(s string) {
	if p.detail != nil {
		if strings.HasPrefix(s, "    ") {
			if len(p.detail.Detail) < maxDetail {
				p.detail.Detail = append(p.detail.Detail, strings.TrimSpace(s))
			}
			return
		}
		p.detail = nil
	}
	if p.build != "" {
		if strings.HasPrefix(s, "# [") {
			return // "# [pkg_test]": the same package, named again
		}
		if s != "" && !strings.HasPrefix(s, "FAIL") && !strings.HasPrefix(s, "ok ") && !strings.HasPrefix(s, "# ") {
			if len(p.builds[p.build]) < maxDetail {
				p.builds[p.build] = append(p.builds[p.build], s)
			}
			return
		}
		p.build = ""
	}
	switch {
	case strings.HasPrefix(s, "goos: "):
		p.run.GOOS = strings.TrimPrefix(s, "goos: ")
	case strings.HasPrefix(s, "goarch: "):
		p.run.GOARCH = strings.TrimPrefix(s, "goarch: ")
	case strings.HasPrefix(s, "cpu: "):
		p.run.CPU = strings.TrimPrefix(s, "cpu: ")
	case strings.HasPrefix(s, "pkg: "):
		p.pkg = strings.TrimPrefix(s, "pkg: ")
	case strings.HasPrefix(s, "Benchmark"):
		p.benchmark(s)
	case strings.HasPrefix(s, "--- FAIL: "):
		p.fail(s)
	case strings.HasPrefix(s, "FAIL\t"):
		p.pkgFail(strings.TrimPrefix(s, "FAIL\t"))
	case strings.HasPrefix(s, "ok  \t"):
		p.endPkg()
	case strings.HasPrefix(s, "panic: "):
		if p.panic == "" {
			p.panic = s
		}
	case strings.HasPrefix(s, "# ") && !strings.HasPrefix(s, "# ["):
		// "# example.com/x [example.com/x.test]" or "# example.com/x_test".
		name := strings.Fields(strings.TrimPrefix(s, "# "))[0]
		p.build = strings.TrimSuffix(name, "_test")
	default:
		if p.pending != "" {
			if res, ok := parseFigures(p.pending, s); ok {
				p.add(res)
			}
		}
	}
}

// benchmark handles a line starting with a benchmark name.
func (p *parser) benchmark(s string) {
	name, rest, _ := strings.Cut(s, "\t")
	name = strings.TrimSpace(name)
	if strings.ContainsAny(name, " ") {
		// A log line that happens to start with "Benchmark", not a result.
		return
	}
	if i := strings.Index(rest, "--- FAIL: "); i >= 0 {
		p.pending = ""
		p.fail(rest[i:])
		return
	}
	if res, ok := parseFigures(name, rest); ok {
		p.add(res)
		return
	}
	// The name alone, or followed by what the benchmark printed: the
	// figures come on a later line.
	p.pending = name
}

func (p *parser) add(res Result) {
	res.Pkg = p.pkg
	p.run.Results = append(p.run.Results, res)
	p.pending = ""
}

func (p *parser) fail(s string) {
	p.pending = ""
	p.run.Failures = append(p.run.Failures, Failure{Pkg: p.pkg, What: s})
	if p.pkg == "" {
		p.unowned = append(p.unowned, len(p.run.Failures)-1)
	}
	p.detail = &p.run.Failures[len(p.run.Failures)-1]
}

// pkgFail handles "FAIL\t<pkg>\t<time>" and "FAIL\t<pkg> [build failed]".
func (p *parser) pkgFail(rest string) {
	pkg, what, _ := strings.Cut(rest, "\t")
	if pkg2, reason, ok := strings.Cut(rest, " "); ok && !strings.Contains(pkg2, "\t") {
		pkg, what = pkg2, reason
	}
	what = strings.TrimSpace(what)
	switch {
	case what == "":
		what = "package failed"
	case !strings.HasPrefix(what, "["): // the elapsed time
		what = "package failed after " + what
	}
	f := Failure{Pkg: pkg, What: what}
	if p.panic != "" {
		f.Detail = append(f.Detail, p.panic)
	}
	f.Detail = append(f.Detail, p.builds[pkg]...)
	for _, i := range p.unowned {
		p.run.Failures[i].Pkg = pkg
	}
	p.run.Failures = append(p.run.Failures, f)
	p.endPkg()
}

func (p *parser) endPkg() {
	p.pkg, p.pending, p.panic, p.unowned = "", "", "", nil
}

// parseFigures parses "<iterations> <value> <unit> ..." for the benchmark
// name (with its -N suffix).
func parseFigures(name, s string) (Result, bool) {
	f := strings.Fields(s)
	if len(f) < 3 || len(f)%2 != 1 {
		return Result{}, false
	}
	iters, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || iters < 0 {
		return Result{}, false
	}
	res := Result{Name: name, Iters: iters}
	if m := procsSuffix.FindStringSubmatch(name); m != nil {
		res.Procs, _ = strconv.Atoi(m[1])
		res.Name = strings.TrimSuffix(name, m[0])
	}
	for i := 1; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return Result{}, false
		}
		res.Metrics = append(res.Metrics, Metric{Value: v, Text: f[i], Unit: f[i+1]})
	}
	return res, true
}
