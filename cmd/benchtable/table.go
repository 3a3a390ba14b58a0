package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// issueFigures are the reported units that answer the figures issue 7 asks
// `make bench` for, in the order the table lists them within a benchmark.
// A unit, not a benchmark name, is the key: any benchmark reporting it is
// answering the same question.
var issueFigures = []struct{ unit, label string }{
	{"x-baseline", "reader time ÷ raw gunzip+scan (ratio)"},
	{"writereqs/1000ev", "ingest write requests per 1000 events"},
	{"items/1000ev", "ingest item writes (WRUs) per 1000 events"},
	{"p99-µs", "spool append p99"},
	{"group-commit-x", "spool rate ÷ raw write+fsync rate (ratio)"},
	{"ddb-reads/op", "304 path: DynamoDB reads per request"},
	{"ms/assembly", "assembly time"},
	{"bytes/event", "uplink bytes per event"},
}

// derivations are ratios the benchmarks do not report, computed from two
// figures of the same result line (so of the same run). Only ratios whose
// meaning is plain from the two units are here.
var derivations = []struct {
	unit, label string
	a, b        string
	f           func(a, b float64) float64
}{
	{
		unit: "x-floor", label: "computed: write requests ÷ floor (ratio)",
		a: "writereqs/1000ev", b: "floor-writereqs/1000ev",
		f: func(a, b float64) float64 { return a / b },
	},
	{
		// One raw write+fsync lasts 1e6/rate µs.
		unit: "x-raw-fsync", label: "computed: spool p99 ÷ one raw write+fsync (ratio)",
		a: "p99-µs", b: "raw-write+fsync/s",
		f: func(a, b float64) float64 { return a * b / 1e6 },
	},
}

// row is one figure of one benchmark.
type row struct {
	pkg, bench, value, unit, figure string
}

// rows lists every result's figures: the issue's first, then the computed
// ratios, then everything else in the order the benchmark reported it.
func rows(run *Run, module string) []row {
	var out []row
	seen := map[string]int{}
	for _, res := range run.Results {
		pkg := strings.TrimPrefix(strings.TrimPrefix(res.Pkg, module), "/")
		bench := strings.TrimPrefix(res.Name, "Benchmark")
		key := res.Pkg + " " + res.Name
		if seen[key]++; seen[key] > 1 { // -count > 1: keep every run, numbered
			bench += " #" + strconv.Itoa(seen[key])
		}
		byUnit := map[string]Metric{}
		for _, m := range res.Metrics {
			byUnit[m.Unit] = m
		}
		done := map[string]bool{}
		for _, fig := range issueFigures {
			if m, ok := byUnit[fig.unit]; ok {
				out = append(out, row{pkg, bench, m.Text, m.Unit, fig.label})
				done[m.Unit] = true
			}
		}
		for _, d := range derivations {
			a, okA := byUnit[d.a]
			b, okB := byUnit[d.b]
			if okA && okB && b.Value != 0 {
				out = append(out, row{pkg, bench, format(d.f(a.Value, b.Value)), d.unit, d.label})
			}
		}
		for _, m := range res.Metrics {
			if !done[m.Unit] {
				out = append(out, row{pkg, bench, m.Text, m.Unit, ""})
			}
		}
	}
	return out
}

// format prints a computed value with four significant digits, as go test
// prints its own.
func format(v float64) string {
	if v == 0 || math.Abs(v) >= 1000 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	digits := 3 - int(math.Floor(math.Log10(math.Abs(v))))
	return strconv.FormatFloat(v, 'f', max(digits, 0), 64)
}

// Render writes the table, then the failures. module is trimmed from
// package paths.
func Render(w io.Writer, run *Run, module string) error {
	var b strings.Builder
	var env []string
	if run.CPU != "" {
		env = append(env, "cpu: "+run.CPU)
	}
	if run.GOOS != "" {
		env = append(env, run.GOOS+"/"+run.GOARCH)
	}
	fmt.Fprintf(&b, "benchmark figures (%d results", len(run.Results))
	if len(env) > 0 {
		fmt.Fprintf(&b, "; %s", strings.Join(env, ", "))
	}
	b.WriteString(")\n\n")

	rs := append([]row{{"PACKAGE", "BENCHMARK", "VALUE", "UNIT", "FIGURE (issue 7)"}}, rows(run, module)...)
	var wp, wb, wv, wu int
	for _, r := range rs {
		wp, wb = max(wp, width(r.pkg)), max(wb, width(r.bench))
		wv, wu = max(wv, width(r.value)), max(wu, width(r.unit))
	}
	var last row
	for i, r := range rs {
		pkg, bench := r.pkg, r.bench
		if i > 1 && r.pkg == last.pkg && r.bench == last.bench {
			pkg, bench = "", "" // the same benchmark: ditto
		} else if i > 1 && r.pkg == last.pkg {
			pkg = ""
		}
		last = r
		line := pad(pkg, wp) + "  " + pad(bench, wb) + "  " +
			strings.Repeat(" ", wv-width(r.value)) + r.value + "  " + pad(r.unit, wu) + "  " + r.figure
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}

	if len(run.Failures) > 0 {
		fmt.Fprintf(&b, "\nFAILED (%d):\n", len(run.Failures))
		for _, f := range run.Failures {
			pkg := strings.TrimPrefix(strings.TrimPrefix(f.Pkg, module), "/")
			if pkg == "" {
				pkg = "?"
			}
			fmt.Fprintf(&b, "FAIL  %s  %s\n", pkg, f.What)
			for _, d := range f.Detail {
				fmt.Fprintf(&b, "      %s\n", d)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func width(s string) int { return utf8.RuneCountInString(s) }

func pad(s string, n int) string { return s + strings.Repeat(" ", n-width(s)) }
