package panics

import "testing"

func BenchmarkPanics(b *testing.B) { var m map[string]int; m["x"] = 1 }
