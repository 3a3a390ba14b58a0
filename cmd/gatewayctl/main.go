// Command gatewayctl is the platform operator's tool for the gateway: it
// reads the gateway table to answer questions about satellites and their
// devices, and keeps the registry of factory CAs (the CAs whose satellite
// certificates the API accepts, each for one factory).
//
//	gatewayctl devices --factory F --satellite S [--limit N] [--page TOKEN]
//	gatewayctl events  --factory F --device UUID [-n 20]
//	gatewayctl sync    --factory F --satellite S
//	gatewayctl ca      add --factory F --cert CA.pem | list --factory F | remove --cert CA.pem
//
// Every command takes --table (default $GATEWAY_TABLE) and --json (machine
// output instead of a table for people). AWS access uses the standard SDK
// settings (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL for an emulator...),
// through shared/awsconfig like every other binary of the project.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/satellite-gateway/gateway/shared/awsconfig"
	"github.com/satellite-gateway/gateway/shared/fleetquery"
	"github.com/satellite-gateway/gateway/shared/identity"
)

// command is one subcommand. The table below is the whole dispatch: a new
// subcommand (say, `ca add`) is one more entry.
type command struct {
	name, args, summary string
	run                 func(ctx context.Context, c *cli, args []string) error
}

func commands() []command {
	return []command{
		{"devices", "--factory F --satellite S [--limit N] [--page TOKEN]", "list the devices attached to a satellite", runDevices},
		{"events", "--factory F --device UUID [-n N]", "a device's latest update events, newest first", runEvents},
		{"sync", "--factory F --satellite S", "a satellite's uplink and downlink sync status", runSync},
		{"ca", "add --factory F --cert CA.pem | list --factory F | remove --cert CA.pem",
			"register, list or remove a factory CA (keep the API's truststore in step)", runCA},
	}
}

// cli is what a command runs with: its output, environment and clock.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time
	// query builds the query client once the command's flags are known.
	query func(ctx context.Context, table string) (*fleetquery.Client, error)
	// registry builds the CA registry's client likewise.
	registry func(ctx context.Context, table string) (*identity.Registry, error)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c := &cli{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, now: time.Now, query: connect, registry: registry}
	os.Exit(c.main(ctx, os.Args[1:]))
}

// connect builds the DynamoDB client the standard way.
func connect(ctx context.Context, table string) (*fleetquery.Client, error) {
	cfg, err := awsconfig.Load(ctx)
	if err != nil {
		return nil, err
	}
	return fleetquery.New(awsconfig.NewDynamoDB(cfg), table), nil
}

// registry builds the CA registry's client the standard way.
func registry(ctx context.Context, table string) (*identity.Registry, error) {
	cfg, err := awsconfig.Load(ctx)
	if err != nil {
		return nil, err
	}
	return identity.NewRegistry(awsconfig.NewDynamoDB(cfg), table, time.Now), nil
}

// errUsage has been explained to the user already.
var errUsage = errors.New("usage")

func (c *cli) main(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		c.usage(c.stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, cmd := range commands() {
		if cmd.name != args[0] {
			continue
		}
		err := cmd.run(ctx, c, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, errUsage) || errors.Is(err, flag.ErrHelp):
			return 2
		default:
			fmt.Fprintf(c.stderr, "gatewayctl %s: %v\n", cmd.name, err)
			return 1
		}
	}
	fmt.Fprintf(c.stderr, "gatewayctl: unknown command %q\n\n", args[0])
	c.usage(c.stderr)
	return 2
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprintln(w, "usage: gatewayctl COMMAND [flags]   (every command: --table T (default $GATEWAY_TABLE), --json)")
	fmt.Fprintln(w)
	for _, cmd := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n           %s\n", cmd.name, cmd.args, cmd.summary)
	}
}

// common are the flags of every command.
type common struct {
	table   *string
	jsonOut *bool
}

func (c *cli) flags(name string) (*flag.FlagSet, common) {
	fs := flag.NewFlagSet("gatewayctl "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	return fs, common{
		table:   fs.String("table", c.getenv("GATEWAY_TABLE"), "the gateway table (default $GATEWAY_TABLE)"),
		jsonOut: fs.Bool("json", false, "print JSON instead of a table"),
	}
}

// parse parses args and checks that the required flags are set.
func (c *cli) parse(fs *flag.FlagSet, co common, args []string, required map[string]*string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage // the flag package has said what is wrong
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(c.stderr, "%s: unexpected arguments %q\n", fs.Name(), fs.Args())
		return errUsage
	}
	required["table"] = co.table
	var missing []string
	for name, v := range required {
		if *v == "" {
			missing = append(missing, "--"+name)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(c.stderr, "%s: missing %s\n", fs.Name(), strings.Join(missing, ", "))
		fs.Usage()
		return errUsage
	}
	return nil
}

func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runDevices(ctx context.Context, c *cli, args []string) error {
	fs, co := c.flags("devices")
	factory := fs.String("factory", "", "factory")
	satellite := fs.String("satellite", "", "satellite id")
	limit := fs.Int("limit", 0, "devices per page (0: every device, all pages)")
	page := fs.String("page", "", "the page token a previous --limit call printed")
	if err := c.parse(fs, co, args, map[string]*string{"factory": factory, "satellite": satellite}); err != nil {
		return err
	}
	q, err := c.query(ctx, *co.table)
	if err != nil {
		return err
	}
	var res fleetquery.DevicePage
	if *limit > 0 {
		res, err = q.Devices(ctx, *factory, *satellite, int32(min(*limit, 1<<20)), *page)
	} else {
		res.Devices, err = q.AllDevices(ctx, *factory, *satellite)
	}
	if err != nil {
		return err
	}
	if *co.jsonOut {
		return c.printJSON(res)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tNAME\tLAST SEEN\tTARGET\tTAG\tSTATE")
	for _, d := range res.Devices {
		state := "active"
		if d.IsDeleted() {
			state = "deleted"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Device, dash(d.Name), stamp(d.LastSeen), dash(d.Target), dash(d.Tag), state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if res.Next != "" {
		fmt.Fprintf(c.stdout, "\nmore: --page %s\n", res.Next)
	}
	return nil
}

func runEvents(ctx context.Context, c *cli, args []string) error {
	fs, co := c.flags("events")
	factory := fs.String("factory", "", "factory")
	device := fs.String("device", "", "device UUID")
	n := fs.Int("n", 20, "how many events")
	if err := c.parse(fs, co, args, map[string]*string{"factory": factory, "device": device}); err != nil {
		return err
	}
	q, err := c.query(ctx, *co.table)
	if err != nil {
		return err
	}
	evs, err := q.Events(ctx, *factory, *device, *n)
	if err != nil {
		return err
	}
	if *co.jsonOut {
		return c.printJSON(evs)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE TIME\tTYPE\tTARGET\tVERSION\tSUCCESS\tCORRELATION\tSATELLITE")
	for _, e := range evs {
		success := "-"
		if e.Success != nil {
			success = fmt.Sprint(*e.Success)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", stamp(e.DeviceTime), e.Type, dash(e.TargetName), dash(e.Version),
			success, dash(e.CorrelationID), e.Satellite)
	}
	return tw.Flush()
}

func runSync(ctx context.Context, c *cli, args []string) error {
	fs, co := c.flags("sync")
	factory := fs.String("factory", "", "factory")
	satellite := fs.String("satellite", "", "satellite id")
	if err := c.parse(fs, co, args, map[string]*string{"factory": factory, "satellite": satellite}); err != nil {
		return err
	}
	q, err := c.query(ctx, *co.table)
	if err != nil {
		return err
	}
	r, err := q.Sync(ctx, *factory, *satellite, c.now())
	if err != nil {
		return err
	}
	if *co.jsonOut {
		return c.printJSON(r)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	lag := "-"
	if r.Lag != 0 {
		lag = r.Lag.Round(time.Second).String()
	}
	for _, row := range [][2]string{
		{"satellite", r.Factory + "/" + r.Satellite},
		{"last batch", fmt.Sprintf("%s (seq %d)", dash(r.LastBatch), r.LastSeq)},
		{"last batch sealed", stamp(r.LastCreated)},
		{"last ingested", stamp(r.LastIngested)},
		{"uplink lag", lag},
		{"tags production", dash(strings.Join(r.TagsProduction, ", "))},
		{"tags ci", dash(strings.Join(r.TagsCI, ", "))},
		{"desired version", dash(r.DesiredVersion)},
		{"applied version", fmt.Sprintf("%s %s %s", dash(r.AppliedVersion), dash(r.AppliedStatus), r.AppliedDetail)},
		{"applied at", stamp(r.AppliedAt)},
		{"in sync", fmt.Sprint(r.InSync)},
		{"devices", fmt.Sprint(r.Devices)},
		{"newest last-seen", strings.TrimSpace(stamp(r.NewestLastSeen) + " " + r.NewestDevice)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], strings.TrimSpace(row[1]))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// runCA edits the CA registry. The API's truststore (on AWS, the PEM bundle
// in S3 the custom domain verifies against) must hold the same CAs: the
// truststore decides whether the TLS handshake succeeds, the registry which
// factory a certificate speaks for.
func runCA(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 {
		fmt.Fprintln(c.stderr, "gatewayctl ca: want add, list or remove")
		return errUsage
	}
	action, args := args[0], args[1:]
	fs, co := c.flags("ca " + action)
	factory := fs.String("factory", "", "the factory the CA issues satellite certificates for")
	certFile := fs.String("cert", "", "the CA certificate (PEM)")
	required := map[string]*string{}
	switch action {
	case "add":
		required["factory"], required["cert"] = factory, certFile
	case "list":
		required["factory"] = factory
	case "remove":
		required["cert"] = certFile
	default:
		fmt.Fprintf(c.stderr, "gatewayctl ca: unknown action %q: want add, list or remove\n", action)
		return errUsage
	}
	if err := c.parse(fs, co, args, required); err != nil {
		return err
	}
	var pem []byte
	if *certFile != "" {
		var err error
		if pem, err = os.ReadFile(*certFile); err != nil {
			return err
		}
	}
	reg, err := c.registry(ctx, *co.table)
	if err != nil {
		return err
	}
	switch action {
	case "add":
		e, err := reg.AddCA(ctx, *factory, pem)
		if err != nil {
			return err
		}
		if *co.jsonOut {
			return c.printJSON(e)
		}
		fmt.Fprintf(c.stdout, "registered %s for factory %s (sha256 %s, expires %s)\n", e.Subject, e.Factory, e.Fingerprint, stamp(e.NotAfter))
	case "remove":
		if err := reg.RemoveCA(ctx, pem); err != nil {
			return err
		}
		fmt.Fprintln(c.stdout, "removed; warm API instances forget it within their CA cache time")
	case "list":
		cas, err := reg.ListCAs(ctx, *factory)
		if err != nil {
			return err
		}
		if *co.jsonOut {
			return c.printJSON(cas)
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SUBJECT\tSHA256\tEXPIRES\tADDED")
		for _, e := range cas {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Subject, e.Fingerprint, stamp(e.NotAfter), stamp(e.Added))
		}
		return tw.Flush()
	}
	return nil
}
