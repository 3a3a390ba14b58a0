package satellite

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/satellite-gateway/gateway/satellite/spool"
	"github.com/satellite-gateway/gateway/satellite/updates"
	"github.com/satellite-gateway/gateway/satellite/uploader"
)

// Duration is a time.Duration written as "5m" in the config file.
type Duration time.Duration

// UnmarshalJSON reads "5m30s" (or a number of seconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n float64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("duration: %w", err)
		}
		*d = Duration(n * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// MarshalJSON writes the duration as "5m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Config is the satellite's configuration: a JSON file, then SATELLITE_*
// environment variables, then command-line flags, each overriding the one
// before. docs/satellite.md is the reference; zero values take the defaults
// shown there.
type Config struct {
	GatewayURL string `json:"gateway-url"` // https://api.example.com, required for run
	Cert       string `json:"cert"`        // client certificate (PEM)
	Key        string `json:"key"`         // its private key (PEM)
	CA         string `json:"ca"`          // CA bundle for the API's certificate; "" = system roots
	Factory    string `json:"factory"`     // default: the certificate's OU
	Satellite  string `json:"satellite"`   // default: the certificate's CN

	SpoolDir   string `json:"spool-dir"`   // default /var/lib/satellite/spool
	UpdatesDir string `json:"updates-dir"` // default /var/lib/satellite/updates

	BatchBytes  int64    `json:"batch-bytes"`  // seal at this size; default 8 MiB
	BatchAge    Duration `json:"batch-age"`    // seal at this age; default 5m
	BudgetBytes int64    `json:"budget-bytes"` // disk budget of the spool; default 1 GiB

	PollInterval Duration `json:"poll-interval"` // GET /updates when the server gives no hint; default 1m
	MinBackoff   Duration `json:"min-backoff"`   // default 1s
	MaxBackoff   Duration `json:"max-backoff"`   // default 5m
	AckPoll      Duration `json:"ack-poll"`      // first wait for the ingest acknowledgement; default 2s
	Hook         string   `json:"hook"`          // shell command run after a downlink swap
	LogLevel     string   `json:"log-level"`     // debug, info, warn, error; default info
}

// Default directories.
const (
	DefaultSpoolDir   = "/var/lib/satellite/spool"
	DefaultUpdatesDir = "/var/lib/satellite/updates"
)

// setting is one configuration key, with its environment variable.
type setting struct {
	key, env, usage string
	set             func(c *Config, v string) error
}

func str(p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(c) = v; return nil }
}

func i64(p func(*Config) *int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		*p(c) = n
		return err
	}
}

func dur(p func(*Config) *Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		*p(c) = Duration(d)
		return err
	}
}

var settings = []setting{
	{"gateway-url", "SATELLITE_GATEWAY_URL", "gateway API base URL (https://...)", str(func(c *Config) *string { return &c.GatewayURL })},
	{"cert", "SATELLITE_CERT", "client certificate file (PEM)", str(func(c *Config) *string { return &c.Cert })},
	{"key", "SATELLITE_KEY", "client key file (PEM)", str(func(c *Config) *string { return &c.Key })},
	{"ca", "SATELLITE_CA", "CA bundle for the API (default: system roots)", str(func(c *Config) *string { return &c.CA })},
	{"factory", "SATELLITE_FACTORY", "factory (default: the certificate's OU)", str(func(c *Config) *string { return &c.Factory })},
	{"satellite", "SATELLITE_ID", "satellite id (default: the certificate's CN)", str(func(c *Config) *string { return &c.Satellite })},
	{"spool-dir", "SATELLITE_SPOOL_DIR", "spool directory (default " + DefaultSpoolDir + ")", str(func(c *Config) *string { return &c.SpoolDir })},
	{"updates-dir", "SATELLITE_UPDATES_DIR", "updates directory (default " + DefaultUpdatesDir + ")", str(func(c *Config) *string { return &c.UpdatesDir })},
	{"batch-bytes", "SATELLITE_BATCH_BYTES", "seal a batch at this many bytes (default 8 MiB)", i64(func(c *Config) *int64 { return &c.BatchBytes })},
	{"batch-age", "SATELLITE_BATCH_AGE", "seal a batch at this age (default 5m)", dur(func(c *Config) *Duration { return &c.BatchAge })},
	{"budget-bytes", "SATELLITE_BUDGET_BYTES", "disk budget of the spool (default 1 GiB)", i64(func(c *Config) *int64 { return &c.BudgetBytes })},
	{"poll-interval", "SATELLITE_POLL_INTERVAL", "updates poll interval without a server hint (default 1m)", dur(func(c *Config) *Duration { return &c.PollInterval })},
	{"min-backoff", "SATELLITE_MIN_BACKOFF", "first retry wait (default 1s)", dur(func(c *Config) *Duration { return &c.MinBackoff })},
	{"max-backoff", "SATELLITE_MAX_BACKOFF", "longest retry wait (default 5m)", dur(func(c *Config) *Duration { return &c.MaxBackoff })},
	{"ack-poll", "SATELLITE_ACK_POLL", "first wait for the ingest acknowledgement after an upload (default 2s)", dur(func(c *Config) *Duration { return &c.AckPoll })},
	{"hook", "SATELLITE_HOOK", "shell command run after a downlink swap", str(func(c *Config) *string { return &c.Hook })},
	{"log-level", "SATELLITE_LOG_LEVEL", "debug, info, warn or error (default info)", str(func(c *Config) *string { return &c.LogLevel })},
}

// LoadFile reads a JSON config file; unknown keys are refused so a typo is
// not silently ignored.
func LoadFile(path string, c *Config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(c); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// ApplyEnv overrides c with the SATELLITE_* variables that are set.
func ApplyEnv(c *Config, getenv func(string) string) error {
	for _, s := range settings {
		if v := getenv(s.env); v != "" {
			if err := s.set(c, v); err != nil {
				return fmt.Errorf("%s: %w", s.env, err)
			}
		}
	}
	return nil
}

// RegisterFlags adds a flag per setting to fs; after fs.Parse, the flags
// set are applied to *c by the returned function.
func RegisterFlags(fs *flag.FlagSet) func(c *Config) error {
	vals := map[string]*string{}
	for _, s := range settings {
		vals[s.key] = fs.String(s.key, "", s.usage+" [$"+s.env+"]")
	}
	return func(c *Config) error {
		var err error
		fs.Visit(func(f *flag.Flag) {
			for _, s := range settings {
				if s.key == f.Name && err == nil {
					if e := s.set(c, *vals[s.key]); e != nil {
						err = fmt.Errorf("-%s: %w", s.key, e)
					}
				}
			}
		})
		return err
	}
}

// WithDefaults fills unset fields, taking factory and satellite id from the
// client certificate when they are not configured.
func (c Config) WithDefaults() Config {
	if c.SpoolDir == "" {
		c.SpoolDir = DefaultSpoolDir
	}
	if c.UpdatesDir == "" {
		c.UpdatesDir = DefaultUpdatesDir
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if (c.Factory == "" || c.Satellite == "") && c.Cert != "" {
		if cn, ou, err := certIdentity(c.Cert); err == nil {
			if c.Factory == "" {
				c.Factory = ou
			}
			if c.Satellite == "" {
				c.Satellite = cn
			}
		}
	}
	return c
}

// Validate reports the first setting `run` cannot work with.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	if !strings.HasPrefix(c.GatewayURL, "https://") && !strings.HasPrefix(c.GatewayURL, "http://") {
		errs = append(errs, errors.New("gateway-url: an https:// URL is required"))
	}
	if c.Cert == "" || c.Key == "" {
		errs = append(errs, errors.New("cert and key are required"))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.MinBackoff < 0 || c.MaxBackoff < 0 || c.AckPoll < 0 || c.PollInterval < 0 || c.BatchAge < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if err := c.SpoolConfig(nil).Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// SpoolConfig is the spool's part of c.
func (c Config) SpoolConfig(log *slog.Logger) spool.Config {
	c = c.WithDefaults()
	return spool.Config{Dir: c.SpoolDir, Factory: c.Factory, Satellite: c.Satellite, MaxBatchBytes: c.BatchBytes,
		MaxBatchAge: time.Duration(c.BatchAge), Budget: c.BudgetBytes, Logger: log}
}

func (c Config) uploaderConfig() uploader.Config {
	return uploader.Config{MinBackoff: time.Duration(c.MinBackoff), MaxBackoff: time.Duration(c.MaxBackoff), AckPoll: time.Duration(c.AckPoll)}
}

func (c Config) updatesConfig() updates.Config {
	uc := updates.Config{Dir: c.UpdatesDir, Interval: time.Duration(c.PollInterval),
		MinBackoff: time.Duration(c.MinBackoff), MaxBackoff: time.Duration(c.MaxBackoff)}
	if c.Hook != "" {
		uc.HookCommand = []string{"/bin/sh", "-c", c.Hook}
	}
	return uc
}

// NewLogger is the satellite's JSON logger at c's level.
func (c Config) NewLogger(w *os.File) *slog.Logger {
	lvl, _ := parseLevel(c.WithDefaults().LogLevel)
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl}))
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log-level %q: %w", s, err)
	}
	return l, nil
}

// certIdentity reads CN and OU from a PEM certificate.
func certIdentity(path string) (cn, ou string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return "", "", errors.New("no PEM block")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return "", "", err
	}
	if len(cert.Subject.OrganizationalUnit) > 0 {
		ou = cert.Subject.OrganizationalUnit[0]
	}
	return cert.Subject.CommonName, ou, nil
}
