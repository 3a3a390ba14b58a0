// Package updates is the satellite's downlink side: a poller that asks GET
// /updates for a newer configuration, downloads it from the presigned URL it
// is redirected to (resuming with HTTP Range), verifies it, swaps it into
// place atomically, runs a hook and reports the outcome through the spool;
// and the on-disk Store of applied versions with the previous one kept for
// rollback.
package updates

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/satellite-gateway/gateway/satellite/internal/fsutil"
	"github.com/satellite-gateway/gateway/shared/wire/downlink"
)

// The layout of the updates directory (docs/satellite.md):
//
//	current  -> versions/<version>   symlink: what the satellite server reads
//	previous -> versions/<version>   symlink: kept for rollback
//	versions/<version>/{config.json,tuf.json,manifest.json}
//	download/<version>.part          a download in progress, resumable
//
// Both files change together because the switch is one rename of a symlink.
const (
	linkCurrent  = "current"
	linkPrevious = "previous"
	dirVersions  = "versions"
	dirDownload  = "download"
)

// Store holds the applied downlink versions. It is owned by one goroutine
// (the poller); Current may be read by anyone, from disk.
type Store struct {
	dir  string
	step func(name string) error // tests interrupt Apply here
}

// errCrash marks a simulated crash: Apply stops dead, without cleaning up.
var errCrash = errors.New("simulated crash")

// OpenStore opens (or creates) the store in dir and finishes or undoes what
// an interrupted Apply left: temporary links and directories are removed;
// a current link that does not hold a complete version is rolled back to
// previous.
func OpenStore(dir string) (*Store, error) {
	for _, d := range []string{"", dirVersions, dirDownload} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("updates store: %w", err)
		}
	}
	st := &Store{dir: dir}
	for _, d := range []string{"", dirVersions} {
		es, err := os.ReadDir(filepath.Join(dir, d))
		if err != nil {
			return nil, fmt.Errorf("updates store: %w", err)
		}
		for _, e := range es {
			if strings.HasPrefix(e.Name(), ".tmp-") {
				if err := os.RemoveAll(filepath.Join(dir, d, e.Name())); err != nil {
					return nil, fmt.Errorf("updates store: %w", err)
				}
			}
		}
	}
	if cur := st.Current(); cur != "" && !st.complete(cur) {
		if prev := st.Previous(); prev != "" && st.complete(prev) {
			if err := st.link(linkCurrent, prev); err != nil {
				return nil, err
			}
		} else if err := os.Remove(filepath.Join(dir, linkCurrent)); err != nil {
			return nil, fmt.Errorf("updates store: %w", err)
		}
	}
	return st, nil
}

// Dir is the store's directory.
func (st *Store) Dir() string { return st.dir }

// CurrentDir is the directory the satellite server reads config.json and
// tuf.json from (through the current symlink).
func (st *Store) CurrentDir() string { return filepath.Join(st.dir, linkCurrent) }

// Current is the applied version, "" if none.
func (st *Store) Current() string { return CurrentVersion(st.dir) }

// Previous is the version kept for rollback, "" if none.
func (st *Store) Previous() string { return readLink(filepath.Join(st.dir, linkPrevious)) }

// CurrentVersion reads the applied version of the store in dir from disk,
// for `satellite status`.
func CurrentVersion(dir string) string { return readLink(filepath.Join(dir, linkCurrent)) }

func readLink(p string) string {
	t, err := os.Readlink(p)
	if err != nil {
		return ""
	}
	return filepath.Base(t)
}

// complete reports whether versions/<v> holds both files and they are the
// content of version v.
func (st *Store) complete(v string) bool {
	d := filepath.Join(st.dir, dirVersions, v)
	c, err1 := os.ReadFile(filepath.Join(d, downlink.ConfigName))
	t, err2 := os.ReadFile(filepath.Join(d, downlink.TUFName))
	return err1 == nil && err2 == nil && downlink.Version(c, t) == v
}

func (st *Store) at(name string) error {
	if st.step != nil {
		return st.step(name)
	}
	return nil
}

// Apply verifies the downlink tarball r (it must be version want) and makes
// it current, keeping the current version as previous. A crash at any point
// leaves either the old version current or the new one, never a mix: the new
// files are complete and fsynced in their own directory before one rename of
// the current symlink switches to them.
func (st *Store) Apply(r io.Reader, want string) (err error) {
	old := st.Current()
	vdir := filepath.Join(st.dir, dirVersions)
	tmp, err := os.MkdirTemp(vdir, ".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if !errors.Is(err, errCrash) {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := st.at("extract"); err != nil {
		return err
	}
	m, err := downlink.Extract(r, tmp, downlink.Limits{})
	if err != nil {
		return fmt.Errorf("verify downlink: %w", err)
	}
	if m.Version != want {
		return fmt.Errorf("verify downlink: manifest version %s, the server announced %s", m.Version, want)
	}
	mb, _ := json.Marshal(m)
	if err := fsutil.WriteFile(filepath.Join(tmp, downlink.ManifestName), mb, 0o644); err != nil {
		return err
	}
	if err := fsutil.SyncDir(tmp); err != nil {
		return err
	}
	if err := st.at("rename-version"); err != nil {
		return err
	}
	final := filepath.Join(vdir, want)
	if !st.complete(want) { // else already on disk (a rollback target, a re-apply): keep it
		if err := os.RemoveAll(final); err != nil {
			return err
		}
		if err := os.Rename(tmp, final); err != nil {
			return err
		}
	}
	if err := fsutil.SyncDir(vdir); err != nil {
		return err
	}
	if old != "" && old != want {
		if err := st.at("link-previous"); err != nil {
			return err
		}
		if err := st.link(linkPrevious, old); err != nil {
			return err
		}
	}
	if err := st.at("link-current"); err != nil {
		return err
	}
	if err := st.link(linkCurrent, want); err != nil {
		return err
	}
	if err := st.at("prune"); err != nil {
		return err
	}
	return st.prune()
}

// Rollback makes previous current again (after a failed hook).
func (st *Store) Rollback() error {
	prev := st.Previous()
	if prev == "" || !st.complete(prev) {
		return errors.New("no previous version to roll back to")
	}
	return st.link(linkCurrent, prev)
}

// link points name at versions/<version> atomically: a new symlink under a
// temporary name, renamed over the old one, then the directory fsynced.
func (st *Store) link(name, version string) error {
	tmp := filepath.Join(st.dir, ".tmp-"+name)
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Join(dirVersions, version), tmp); err != nil {
		return err
	}
	if err := st.at("rename-" + name); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(st.dir, name)); err != nil {
		return err
	}
	return fsutil.SyncDir(st.dir)
}

// prune removes versions that are neither current nor previous.
func (st *Store) prune() error {
	keep := map[string]bool{st.Current(): true, st.Previous(): true}
	es, err := os.ReadDir(filepath.Join(st.dir, dirVersions))
	if err != nil {
		return err
	}
	for _, e := range es {
		if !keep[e.Name()] && !strings.HasPrefix(e.Name(), ".tmp-") {
			if err := os.RemoveAll(filepath.Join(st.dir, dirVersions, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
