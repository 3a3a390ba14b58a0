// Package s3keys is the layout of the gateway's bucket: which prefix holds
// what, and the one way to build and parse each object key. The CDK storage
// construct (lifecycle rules, notification filter), the local resources, the
// API (presigning) and the functions (ingest, quarantine, assembly) all take
// their keys from here, so the layout cannot drift between them.
//
//	uploads/<factory>/<satellite>/<batch>.tar.gz      uplink tarballs, until ingested
//	quarantine/<factory>/<satellite>/<batch>.tar.gz   refused uploads, kept longer
//	updates/<factory>/<satellite>/<version>.tar.gz    downlink tarballs, content-addressed
//	files/<factory>/<device>/<name>/<sha256>          device files too large to keep inline
//
// Every part is a safe name (see safetar.ValidName), so a key never needs
// escaping and one satellite's prefix can never reach into another's.
package s3keys

import (
	"fmt"
	"strings"

	"github.com/satellite-gateway/gateway/shared/wire/safetar"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// The prefixes of the bucket. Lifecycle rules and the ingest notification
// filter are keyed on them.
const (
	UploadsPrefix    = "uploads/"
	QuarantinePrefix = "quarantine/"
	UpdatesPrefix    = "updates/"
	FilesPrefix      = "files/"
)

// suffix is the extension of every tarball key.
const suffix = ".tar.gz"

// SatelliteUploads is the prefix of one satellite's uploads: what a
// presigned PUT is confined to.
func SatelliteUploads(factory, satellite string) string {
	return UploadsPrefix + factory + "/" + satellite + "/"
}

// Upload is the key of an uplink batch.
func Upload(factory, satellite, batch string) (string, error) {
	if err := check(factory, satellite); err != nil {
		return "", err
	}
	if !uplink.ValidID(batch) {
		return "", fmt.Errorf("s3keys: batch %q is not a canonical ULID", batch)
	}
	return SatelliteUploads(factory, satellite) + batch + suffix, nil
}

// UploadKey is a parsed upload key.
type UploadKey struct {
	Factory, Satellite, Batch string
}

// ParseUpload parses a key under UploadsPrefix, as an S3 notification names
// it. Anything else is an error: the ingest function refuses objects it did
// not ask for.
func ParseUpload(key string) (UploadKey, error) {
	rest, ok := strings.CutPrefix(key, UploadsPrefix)
	if !ok {
		return UploadKey{}, fmt.Errorf("s3keys: %q is not under %s", key, UploadsPrefix)
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || !strings.HasSuffix(parts[2], suffix) {
		return UploadKey{}, fmt.Errorf("s3keys: %q is not %s<factory>/<satellite>/<batch>%s", key, UploadsPrefix, suffix)
	}
	u := UploadKey{Factory: parts[0], Satellite: parts[1], Batch: strings.TrimSuffix(parts[2], suffix)}
	if want, err := Upload(u.Factory, u.Satellite, u.Batch); err != nil || want != key {
		return UploadKey{}, fmt.Errorf("s3keys: %q is not a well-formed upload key", key)
	}
	return u, nil
}

// Quarantine is where a refused upload is moved: the same path under
// QuarantinePrefix, so an operator finds it by batch id.
func Quarantine(u UploadKey) string {
	return QuarantinePrefix + u.Factory + "/" + u.Satellite + "/" + u.Batch + suffix
}

// Update is the content-addressed key of a satellite's downlink tarball of
// the given version (a hex sha256).
func Update(factory, satellite, version string) (string, error) {
	if err := check(factory, satellite); err != nil {
		return "", err
	}
	if !validSHA256(version) {
		return "", fmt.Errorf("s3keys: version %q is not a hex sha256", version)
	}
	return UpdatesPrefix + factory + "/" + satellite + "/" + version + suffix, nil
}

func check(factory, satellite string) error {
	if !safetar.ValidName(factory) || !safetar.ValidName(satellite) {
		return fmt.Errorf("s3keys: factory %q or satellite %q is not a safe name", factory, satellite)
	}
	return nil
}

// The tag that marks a device file object no longer pointed at: ingest sets
// it on the old object when the file item moves to new content, and a
// lifecycle rule expires tagged objects after a grace period. Ingest clears
// it from an object the item points at again (see ingest's supersede).
const (
	SupersededTagKey   = "superseded"
	SupersededTagValue = "true"
)

// DeviceFile is the content-addressed key of a device file (a put-file
// attachment) too large for its table item, which then points here. The
// content's sha256 (hex) ends the key, so a redelivered batch rewrites the
// same object and an older version is never overwritten by a newer one.
func DeviceFile(factory, device, name, sha256 string) (string, error) {
	if !safetar.ValidName(factory) || !uplink.ValidDevice(device) || !safetar.ValidName(name) {
		return "", fmt.Errorf("s3keys: factory %q, device %q or file name %q is not safe", factory, device, name)
	}
	if !validSHA256(sha256) {
		return "", fmt.Errorf("s3keys: %q is not a hex sha256", sha256)
	}
	return FilesPrefix + factory + "/" + device + "/" + name + "/" + sha256, nil
}

func validSHA256(s string) bool {
	return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
}
