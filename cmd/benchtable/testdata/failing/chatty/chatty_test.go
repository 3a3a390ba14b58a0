package chatty

import (
	"fmt"
	"testing"
)

// BenchmarkChattyN logs on every call, as an SDK logger on stdout would:
// the second and later calls print after the benchmark's name.
func BenchmarkChattyN(b *testing.B) {
	fmt.Printf("DEBUG called with N=%d\n", b.N)
	for range b.N {
	}
	b.ReportMetric(40, "floor-writereqs/1000ev")
	b.ReportMetric(94, "writereqs/1000ev")
}
