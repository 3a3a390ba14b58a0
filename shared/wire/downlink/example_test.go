package downlink_test

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/satellite-gateway/gateway/shared/wire/downlink"
)

// The assembler builds a satellite's bundle; the same state always gives
// the same version, which is also the ETag of GET /updates.
func Example() {
	cfg := downlink.Config{Factory: downlink.Files{"z-50-fioctl.toml": {Value: "[pacman]\n", Unencrypted: true}}}
	tuf := downlink.TUF{Production: map[string]downlink.Roles{"main": {
		Root: json.RawMessage(`{}`), Timestamp: json.RawMessage(`{}`), Snapshot: json.RawMessage(`{}`), Targets: json.RawMessage(`{}`),
	}}}
	a, _ := downlink.Build("acme", "sat-1", cfg, tuf)
	b, _ := downlink.Build("acme", "sat-1", cfg, tuf)
	fmt.Println("same version:", a.Manifest.Version == b.Manifest.Version)

	var tarball bytes.Buffer
	if err := a.WriteTarball(&tarball); err != nil {
		panic(err)
	}
	got, err := downlink.Read(&tarball, downlink.Limits{})
	if err != nil {
		panic(err)
	}
	fmt.Printf("config.json: %s", got.Config)
	// Output:
	// same version: true
	// config.json: {"factory":{"z-50-fioctl.toml":{"Value":"[pacman]\n","Unencrypted":true}},"groups":{},"devices":{}}
}
