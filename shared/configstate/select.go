package configstate

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/wire/change"
	"github.com/satellite-gateway/gateway/shared/wire/downlink"
)

// inputs are the items a satellite's snapshot is selected from.
type inputs struct {
	factory, satellite  string
	registered, enabled bool
	fleet               *records.ViewItem
	devices             map[string]deviceItems
	groups              map[string]groupItems
	// tuf holds the followed tags' items by channel and tag; nil items
	// for followed tags without metadata.
	tuf map[change.Channel]map[string]*records.ViewItem
}

type deviceItems struct {
	state  *records.DeviceState
	config *records.ViewItem
}

type groupItems struct {
	manager, config *records.ViewItem
}

// collect sorts the fetched items into in.
func (in *inputs) collect(got map[records.Key]map[string]types.AttributeValue, devices, groups []string, followed map[change.Channel][]string) error {
	f := in.factory
	in.devices = make(map[string]deviceItems, len(devices))
	for _, d := range devices {
		var di deviceItems
		if raw := got[records.Device(f, d)]; raw != nil {
			di.state = new(records.DeviceState)
			if err := attributevalue.UnmarshalMap(raw, di.state); err != nil {
				return fmt.Errorf("configstate: decode device %s: %w", d, err)
			}
		}
		var err error
		if di.config, err = viewItem(got[records.DeviceConfig(f, d)]); err != nil {
			return err
		}
		in.devices[d] = di
	}
	in.groups = make(map[string]groupItems, len(groups))
	for _, g := range groups {
		var gi groupItems
		var err error
		if gi.manager, err = viewItem(got[records.GroupManager(f, g)]); err != nil {
			return err
		}
		if gi.config, err = viewItem(got[records.GroupConfig(f, g)]); err != nil {
			return err
		}
		in.groups[g] = gi
	}
	in.tuf = map[change.Channel]map[string]*records.ViewItem{}
	for ch, tags := range followed {
		in.tuf[ch] = make(map[string]*records.ViewItem, len(tags))
		for _, t := range tags {
			it, err := viewItem(got[records.TUF(f, string(ch), t)])
			if err != nil {
				return err
			}
			in.tuf[ch][t] = it
		}
	}
	return nil
}

// live reports whether a view item holds content: present and not a
// tombstone.
func live(it *records.ViewItem) bool { return it != nil && !it.Deleted }

// attached reports whether a device item says it is attached to satellite
// now. Ingest marks a deleted device with a Deleted time; a device created
// again afterwards counts as attached.
func attached(d *records.DeviceState, satellite string) bool {
	if d == nil || d.Satellite != satellite {
		return false
	}
	return d.Deleted.IsZero() || d.Created.After(d.Deleted)
}

// selectView applies the rules of what a satellite may see:
//   - the fleet config, unless there is none or it was deleted;
//   - a group's config only if the group's manager item names this
//     satellite (not only the eventually consistent index) and the config
//     is live;
//   - a device's config only if its device item says it is attached to this
//     satellite and the config is live;
//   - TUF metadata of followed tags that have live metadata.
//
// Groups and devices without a live config are left out: the tarball lists
// content, not membership.
func (in *inputs) selectView() (downlink.Config, downlink.TUF, error) {
	cfg := downlink.Config{Factory: downlink.Files{}, Groups: map[string]downlink.Files{}, Devices: map[string]downlink.Files{}}
	tuf := downlink.TUF{Production: map[string]downlink.Roles{}, CI: map[string]downlink.Roles{}}
	if live(in.fleet) {
		if err := content(in.fleet, &cfg.Factory); err != nil {
			return cfg, tuf, err
		}
	}
	for name, g := range in.groups {
		if !live(g.manager) || g.manager.Satellite != in.satellite || !live(g.config) {
			continue
		}
		var files downlink.Files
		if err := content(g.config, &files); err != nil {
			return cfg, tuf, err
		}
		cfg.Groups[name] = files
	}
	for uuid, d := range in.devices {
		if !attached(d.state, in.satellite) || !live(d.config) {
			continue
		}
		var files downlink.Files
		if err := content(d.config, &files); err != nil {
			return cfg, tuf, err
		}
		cfg.Devices[uuid] = files
	}
	for ch, tags := range in.tuf {
		dst := tuf.Production
		if ch == change.ChannelCI {
			dst = tuf.CI
		}
		for tag, it := range tags {
			if !live(it) {
				continue
			}
			var roles downlink.Roles
			if err := content(it, &roles); err != nil {
				return cfg, tuf, err
			}
			dst[tag] = roles
		}
	}
	return cfg, tuf, nil
}
