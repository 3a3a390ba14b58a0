// Command benchtable turns `go test -bench` output into one table of every
// benchmark's figures: what `make bench` prints after the raw output.
//
//	go test -run '^$' -bench . -benchmem ./... | tee bin/bench.txt
//	go run ./cmd/benchtable < bin/bench.txt
//
// Trigger: the bench target of the Makefile, or by hand on saved output.
// Input, on standard input: go test's text output (not -json), any number
// of packages; log lines between results are skipped. Output, on standard
// output: one row per figure (package, benchmark, value, unit), the figures
// issue 7 tracks (reader ÷ raw gunzip, ingest writes per 1000 events, spool
// p99 and ratio to a raw fsync, 304 path reads, assembly time, bytes per
// event) labelled and listed first, plus the ratios computed from two
// figures of the same result line (each labelled "computed"); then every
// failed benchmark and package with the lines that explain it.
// docs/performance.md records one run and what each figure means.
//
// Exit status: 0 the table; 1 a benchmark or package failed, or the input
// held no result; 2 the input could not be read.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

func main() {
	// Package paths are shown relative to this module.
	var module string
	if bi, ok := debug.ReadBuildInfo(); ok {
		module = bi.Main.Path
	}
	os.Exit(run(os.Stdin, os.Stdout, os.Stderr, module))
}

// run is the command with its streams injected; it returns the exit status.
func run(stdin io.Reader, stdout, stderr io.Writer, module string) int {
	r, err := Parse(stdin)
	if err != nil {
		fmt.Fprintf(stderr, "benchtable: read: %v\n", err)
		return 2
	}
	if err := Render(stdout, r, module); err != nil {
		fmt.Fprintf(stderr, "benchtable: write: %v\n", err)
		return 2
	}
	switch {
	case len(r.Failures) > 0:
		fmt.Fprintf(stderr, "benchtable: %d failed (listed under FAILED)\n", len(r.Failures))
		return 1
	case len(r.Results) == 0:
		fmt.Fprintln(stderr, "benchtable: no benchmark results in the input")
		return 1
	}
	return 0
}
