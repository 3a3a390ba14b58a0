// Package uploader ships sealed spool batches to the cloud, oldest first:
// presign (POST /updates/uploads), PUT to the presigned URL with exactly the
// headers returned, wait for the final state (GET /updates/uploads/{batch}),
// then delete. Failures back off exponentially with jitter, capped, so a
// satellite offline for days keeps trying at a bounded rate and resumes by
// itself; the spool is on disk, so a reboot changes nothing. A batch the
// cloud rejects is moved aside with its reason and never retried.
package uploader

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/satellite-gateway/gateway/satellite/gwclient"
	"github.com/satellite-gateway/gateway/satellite/spool"
	"github.com/satellite-gateway/gateway/shared/backoff"
	"github.com/satellite-gateway/gateway/shared/wire/gatewayapi"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// Spool is what the uploader needs of the spool.
type Spool interface {
	Next() (spool.Batch, bool)
	Release(spool.Batch)
	MarkStarted(spool.Batch) error
	Delete(spool.Batch) error
	Reject(b spool.Batch, code, reason string) error
	Quarantine(b spool.Batch, reason string) error
	Sealed() <-chan struct{}
}

// API is what the uploader needs of the gateway API.
type API interface {
	Presign(ctx context.Context, r gatewayapi.PresignRequest) (*gatewayapi.Upload, *gatewayapi.Status, error)
	Put(ctx context.Context, up *gatewayapi.Upload, body io.Reader, size int64) error
	UploadStatus(ctx context.Context, batch string) (*gatewayapi.Status, error)
}

var (
	_ Spool = (*spool.Spool)(nil)
	_ API   = (*gwclient.Client)(nil)
)

// Defaults of Config.
const (
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 5 * time.Minute
	DefaultAckPoll    = 2 * time.Second
	DefaultAckTimeout = 15 * time.Minute
	DefaultIdlePoll   = time.Minute
)

// Config configures an Uploader. Spool and API are required.
type Config struct {
	Spool Spool
	API   API
	// MinBackoff and MaxBackoff bound the jittered waits after a failure.
	// Defaults 1 s and 5 min.
	MinBackoff, MaxBackoff time.Duration
	// AckPoll is the first wait between status polls after an upload; it
	// doubles up to MaxBackoff. Default 2 s.
	AckPoll time.Duration
	// AckTimeout is how long a batch may stay pending after its upload
	// before it is presigned and uploaded again (ingest is idempotent per
	// batch). Default 15 min.
	AckTimeout time.Duration
	// IdlePoll re-checks the spool this often even without a seal signal.
	// Default 1 min.
	IdlePoll time.Duration
	// PutTimeout bounds one PUT of a batch, so a stalled connection is
	// abandoned and retried. Default 10 min.
	PutTimeout time.Duration
	Limits     uplink.Limits
	Now        func() time.Time
	Logger     *slog.Logger
}

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	switch {
	case c.Spool == nil:
		return errors.New("uploader: Spool is required")
	case c.API == nil:
		return errors.New("uploader: API is required")
	case c.MinBackoff < 0 || c.MaxBackoff < 0 || c.AckPoll < 0 || c.AckTimeout < 0:
		return errors.New("uploader: durations must not be negative")
	}
	return nil
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.MinBackoff, DefaultMinBackoff)
	def(&c.MaxBackoff, DefaultMaxBackoff)
	def(&c.AckPoll, DefaultAckPoll)
	def(&c.AckTimeout, DefaultAckTimeout)
	def(&c.IdlePoll, DefaultIdlePoll)
	def(&c.PutTimeout, 10*time.Minute)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Stats describe the uploader's progress.
type Stats struct {
	LastUpload time.Time `json:"last-upload,omitzero"` // last successful PUT
	LastAck    time.Time `json:"last-ack,omitzero"`    // last final state received
	Uploaded   int64     `json:"uploaded"`             // batches acknowledged as ingested
	Rejected   int64     `json:"rejected"`             // batches moved aside
	Failures   int64     `json:"failures"`             // failed attempts (each followed by a backoff)
	LastError  string    `json:"last-error,omitempty"`
}

// Uploader is the upload loop. Run owns it; Stats may be read concurrently.
type Uploader struct {
	cfg Config
	log *slog.Logger
	bo  backoff.Backoff

	mu    sync.Mutex
	stats Stats
}

// New returns an uploader; call Run to start it.
func New(cfg Config) (*Uploader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Uploader{cfg: cfg, log: cfg.Logger.With("component", "uploader"), bo: backoff.Backoff{Min: cfg.MinBackoff, Max: cfg.MaxBackoff}}, nil
}

// Stats returns a copy of the counters.
func (u *Uploader) Stats() Stats {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.stats
}

// Run uploads until ctx ends; it returns ctx's error.
func (u *Uploader) Run(ctx context.Context) error {
	idle := time.NewTicker(u.cfg.IdlePoll)
	defer idle.Stop()
	for {
		b, ok := u.cfg.Spool.Next()
		if !ok {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-u.cfg.Spool.Sealed():
			case <-idle.C:
			}
			continue
		}
		err := u.ship(ctx, b)
		if err == nil {
			u.bo.Reset()
			continue
		}
		u.cfg.Spool.Release(b)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		u.mu.Lock()
		u.stats.Failures++
		u.stats.LastError = err.Error()
		u.mu.Unlock()
		wait := u.bo.Next()
		u.log.Warn("upload failed; backing off", "batch", b.ID, "seq", b.Seq, "err", err, "retry_in", wait.Round(time.Millisecond).String())
		if err := backoff.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// errPending means the upload was not acknowledged in time; the batch is
// shipped again from the presign.
var errPending = errors.New("batch still pending after the upload")

// ship takes one batch to a final state, or returns why it could not.
func (u *Uploader) ship(ctx context.Context, b spool.Batch) error {
	sum, size, code, err := u.check(b)
	if err != nil {
		return err
	}
	if code != "" {
		// Corrupt on our own disk: the cloud would reject it anyway.
		u.log.Error("sealed batch is corrupt; quarantined", "batch", b.ID, "code", code)
		return u.cfg.Spool.Quarantine(b, "local check: "+code)
	}
	// From the presign on, the cloud may know the batch by its id: the
	// spool must never rewrite it under another (compaction), or a retry
	// after a lost answer would deliver its events twice.
	if err := u.cfg.Spool.MarkStarted(b); err != nil {
		return err
	}
	up, st, err := u.cfg.API.Presign(ctx, gatewayapi.PresignRequest{Batch: b.ID, Size: size, SHA256: sum})
	if err != nil {
		switch gwclient.StatusOf(err) {
		case http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusBadRequest:
			// Retrying cannot change the answer: move it aside.
			return u.final(b, &gatewayapi.Status{Batch: b.ID, State: gatewayapi.StateRejected, Code: "presign-refused", Reason: err.Error()})
		}
		return fmt.Errorf("presign batch %s: %w", b.ID, err)
	}
	if st != nil {
		if !st.State.Final() {
			return fmt.Errorf("presign batch %s: 200 with state %q", b.ID, st.State)
		}
		return u.final(b, st)
	}
	f, err := os.Open(b.Path)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, u.cfg.PutTimeout)
	err = u.cfg.API.Put(pctx, up, f, size)
	cancel()
	f.Close()
	if err != nil {
		return fmt.Errorf("upload batch %s: %w", b.ID, err)
	}
	u.mu.Lock()
	u.stats.LastUpload = u.cfg.Now()
	u.mu.Unlock()
	u.log.Info("batch uploaded", "batch", b.ID, "seq", b.Seq, "bytes", size)
	st, err = u.awaitAck(ctx, b)
	if err != nil {
		return err
	}
	return u.final(b, st)
}

// awaitAck polls the batch's state until it is final.
func (u *Uploader) awaitAck(ctx context.Context, b spool.Batch) (*gatewayapi.Status, error) {
	deadline := u.cfg.Now().Add(u.cfg.AckTimeout)
	poll := backoff.Backoff{Min: u.cfg.AckPoll, Max: u.cfg.MaxBackoff}
	for {
		if err := backoff.Sleep(ctx, poll.Next()); err != nil {
			return nil, err
		}
		st, err := u.cfg.API.UploadStatus(ctx, b.ID)
		switch {
		case gwclient.StatusOf(err) == http.StatusNotFound:
			return nil, fmt.Errorf("status of batch %s: unknown to the API; presigning again", b.ID)
		case err != nil:
			u.log.Warn("status poll failed", "batch", b.ID, "err", err)
		case st.State.Final():
			return st, nil
		}
		if u.cfg.Now().After(deadline) {
			return nil, fmt.Errorf("batch %s: %w", b.ID, errPending)
		}
	}
}

// final deletes an ingested batch or moves a rejected one aside.
func (u *Uploader) final(b spool.Batch, st *gatewayapi.Status) error {
	u.mu.Lock()
	u.stats.LastAck = u.cfg.Now()
	u.mu.Unlock()
	if st.State == gatewayapi.StateRejected {
		u.log.Error("batch rejected by the cloud; moved aside", "batch", b.ID, "seq", b.Seq, "code", st.Code, "reason", st.Reason)
		u.mu.Lock()
		u.stats.Rejected++
		u.mu.Unlock()
		return u.cfg.Spool.Reject(b, st.Code, st.Reason)
	}
	u.log.Info("batch acknowledged", "batch", b.ID, "seq", b.Seq, "events", st.Events, "rejected_events", st.RejectedEvents)
	u.mu.Lock()
	u.stats.Uploaded++
	u.mu.Unlock()
	return u.cfg.Spool.Delete(b)
}

// check hashes the batch and reads it back with the cloud's own reader, so a
// file corrupted on disk is caught here rather than uploaded.
func (u *Uploader) check(b spool.Batch) (sum string, size int64, code string, err error) {
	f, err := os.Open(b.Path)
	if err != nil {
		return "", 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	cr := &counter{r: io.TeeReader(f, h)}
	r := uplink.NewReader(cr, u.cfg.Limits)
	for {
		_, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if c := uplink.CodeOf(err); c != "" {
				return "", 0, string(c), nil
			}
			return "", 0, "", fmt.Errorf("read batch %s: %w", b.ID, err)
		}
	}
	// Hash any trailing bytes the reader did not need.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return "", 0, "", err
	}
	if m := r.Summary().Manifest; m.Batch != b.ID || m.Seq != b.Seq {
		return "", 0, "manifest-mismatch", nil
	}
	return hex.EncodeToString(h.Sum(nil)), cr.n, "", nil
}

type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
