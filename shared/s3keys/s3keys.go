// Package s3keys is the layout of the gateway's bucket: which prefix holds
// what, and the one way to build and parse each object key. The CDK storage
// construct (lifecycle rules, notification filter), the local resources, the
// API (presigning) and the functions (ingest, quarantine, assembly) all take
// their keys from here, so the layout cannot drift between them.
//
//	uploads/<factory>/<satellite>/<batch>.tar.gz      uplink tarballs, until ingested
//	quarantine/<factory>/<satellite>/<batch>.tar.gz   refused uploads, kept longer
//	updates/<factory>/<satellite>/<version>.tar.gz    downlink tarballs, content-addressed
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
	if len(version) != 64 || strings.Trim(version, "0123456789abcdef") != "" {
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
