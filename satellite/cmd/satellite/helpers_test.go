package main

import (
	"github.com/satellite-gateway/gateway/shared/wire/downlink"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

type uplinkEvent = uplink.Event

func mustContent() (downlink.Config, downlink.TUF) {
	return downlink.Config{Factory: downlink.Files{"motd": {Value: "hello", Unencrypted: true}}, Groups: map[string]downlink.Files{}, Devices: map[string]downlink.Files{}},
		downlink.TUF{Production: map[string]downlink.Roles{}, CI: map[string]downlink.Roles{}}
}

func isApplied(e uplink.Event, version string) bool {
	u, ok := e.Details.(*uplink.UpdatesApplied)
	return ok && u.Version == version && u.Status == uplink.StatusApplied
}
