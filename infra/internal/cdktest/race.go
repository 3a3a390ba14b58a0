//go:build race

package cdktest

// raceEnabled: see Main.
const raceEnabled = true
