//go:build !unix

package spool

import "os"

// lockFile is a no-op where flock does not exist; run one satellite per spool.
func lockFile(*os.File) error { return nil }
