package satellite

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/satellite-gateway/gateway/satellite/spool"
	"github.com/satellite-gateway/gateway/satellite/updates"
)

func jsonIndent(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }

// Status is the output of `satellite status`, read from disk only so it
// works beside a running daemon (and after it died).
type Status struct {
	Spool          spool.Info `json:"spool"`
	Depth          int64      `json:"depth"`                       // events not yet acknowledged by the cloud
	Bytes          int64      `json:"bytes"`                       // bytes they hold on disk
	OldestUnsent   string     `json:"oldest-unsent-age,omitempty"` // age of the oldest of them
	LastUpload     time.Time  `json:"last-upload,omitzero"`
	LastAck        time.Time  `json:"last-ack,omitzero"`
	AppliedVersion string     `json:"applied-version,omitempty"`
	State          *State     `json:"state,omitempty"` // the daemon's last record, if any
}

// ReadStatus gathers the status of the satellite configured by c.
func ReadStatus(c Config, now time.Time) (Status, error) {
	c = c.WithDefaults()
	var s Status
	info, err := spool.Inspect(c.SpoolDir)
	if err != nil {
		return s, fmt.Errorf("spool %s: %w", c.SpoolDir, err)
	}
	s.Spool, s.Depth, s.Bytes = info, info.Events(), info.Bytes()
	if !info.OldestUnsent.IsZero() {
		s.OldestUnsent = now.Sub(info.OldestUnsent).Round(time.Second).String()
	}
	s.AppliedVersion = updates.CurrentVersion(c.UpdatesDir)
	b, err := os.ReadFile(filepath.Join(c.SpoolDir, StateFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return s, err
	default:
		var st State
		if err := json.Unmarshal(b, &st); err != nil {
			return s, fmt.Errorf("state file: %w", err)
		}
		s.State = &st
		s.LastUpload, s.LastAck = st.Uploader.LastUpload, st.Uploader.LastAck
	}
	return s, nil
}

// WriteText prints s for people.
func (s Status) WriteText(w io.Writer) {
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "spool depth:       %d events (%d in journal, %d in %d sealed batches)\n", s.Depth, s.Spool.JournalEvents, s.Spool.BatchEvents, s.Spool.Batches)
	fmt.Fprintf(w, "spool bytes:       %d\n", s.Bytes)
	oldest := s.OldestUnsent
	if oldest == "" {
		oldest = "-"
	}
	fmt.Fprintf(w, "oldest unsent:     %s\n", oldest)
	fmt.Fprintf(w, "last upload:       %s\n", ts(s.LastUpload))
	fmt.Fprintf(w, "last ack:          %s\n", ts(s.LastAck))
	v := s.AppliedVersion
	if v == "" {
		v = "none"
	}
	fmt.Fprintf(w, "applied updates:   %s\n", v)
	fmt.Fprintf(w, "rejected batches:  %d\nquarantined files: %d\n", s.Spool.Rejected, s.Spool.Quarantined)
	if s.State != nil {
		run := "stopped"
		if s.State.Running {
			run = fmt.Sprintf("running (pid %d)", s.State.PID)
		}
		fmt.Fprintf(w, "daemon:            %s, state of %s\n", run, ts(s.State.Updated))
		fmt.Fprintf(w, "refused appends:   %d (budget), %d (disk errors), %d (listener queue full)\n",
			s.State.Spool.Refused, s.State.Spool.WriteErrors, s.State.Listener.Overflow)
	}
}
