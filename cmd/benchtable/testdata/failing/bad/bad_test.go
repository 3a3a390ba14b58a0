package bad

import "testing"

func BenchmarkOK(b *testing.B) {
	for b.Loop() {
	}
	b.ReportMetric(2, "ms/assembly")
}

func BenchmarkFails(b *testing.B) {
	b.Fatalf("moto: %s", "connection refused")
}

func BenchmarkErrors(b *testing.B) {
	for b.Loop() {
	}
	b.Error("1 of 4000 appends failed")
}

func BenchmarkFailsLate(b *testing.B) {
	for range b.N {
	}
	if b.N > 1 {
		b.Fatal("throttled on the second run")
	}
}
