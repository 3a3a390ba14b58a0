package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/satellite-gateway/gateway/shared/awsconfig"
	"github.com/satellite-gateway/gateway/shared/devcerts"
	"github.com/satellite-gateway/gateway/shared/identity"
	"github.com/satellite-gateway/gateway/shared/lambdalocal"
	"github.com/satellite-gateway/gateway/shared/localaws"
	"github.com/satellite-gateway/gateway/shared/publish"
	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/resources"
	"github.com/satellite-gateway/gateway/shared/wire/change"
	"github.com/satellite-gateway/gateway/shared/wire/gatewayapi"
	"github.com/satellite-gateway/gateway/shared/wiring"
)

// backendOptions configure the local backend.
type backendOptions struct {
	// Dir keeps what must survive a restart: the factory CA and the
	// certificates issued from it, and ready.json.
	Dir string
	// Addr is the API's listen address; port 0 picks a free one.
	Addr string
	// Factory and Satellites are registered at start: the factory's CA in
	// the CA registry, each satellite through a `satellite` change event,
	// as ota-lite registers them.
	Factory    string
	Satellites []string
	// Redeliver is the fraction of handled messages returned to their queue
	// (fault injection, see lambdalocal.Poller.Redeliver).
	Redeliver float64
}

// ready is what the backend writes to <Dir>/ready.json once it serves:
// everything a satellite, a test or a shell needs to reach it.
type ready struct {
	API        string               `json:"api"` // https://127.0.0.1:PORT
	CA         string               `json:"ca"`  // the factory CA, which also issued the server certificate
	Satellites map[string]certFiles `json:"satellites"`
	Factory    string               `json:"factory"`
	Core       localaws.Core        `json:"core"`
	PID        int                  `json:"pid"`
}

type certFiles struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// retryAfter makes a failed message visible again quickly, so a retry shows
// within a session instead of after the queues' production visibility
// timeouts (minutes).
const retryAfter = 2 * time.Second

// backend is the gateway's functions running in this process.
type backend struct {
	opts   backendOptions
	log    *slog.Logger
	aws    aws.Config
	core   localaws.Core
	ca     *devcerts.CA
	ready  ready
	server *http.Server
	lis    net.Listener
	// serving is closed once the API serves and every satellite is registered.
	serving chan struct{}
}

// startBackend creates the resources, registers the factory and its
// satellites, and starts the API and the queue pollers. It returns once the
// API accepts connections; run serves until ctx ends.
func startBackend(ctx context.Context, log *slog.Logger, opts backendOptions) (*backend, error) {
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	cfg, err := awsconfig.Load(ctx)
	if err != nil {
		return nil, err
	}
	clients := localaws.NewClients(cfg)
	core, err := clients.CreateCore(ctx, localaws.DefaultNames())
	if err != nil {
		return nil, fmt.Errorf("create local resources: %w", err)
	}
	b := &backend{opts: opts, log: log, aws: cfg, core: core, serving: make(chan struct{})}
	if err := b.certificates(); err != nil {
		return nil, err
	}
	if err := b.register(ctx, clients); err != nil {
		return nil, err
	}
	if err := b.listen(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// env is the functions' environment, as the CDK stack sets it on AWS.
func (b *backend) env() func(string) string {
	vars := map[string]string{
		wiring.EnvTable:         b.core.Table,
		wiring.EnvBucket:        b.core.UploadsBucket,
		wiring.EnvAssemblyQueue: b.core.Assembly.URL,
		// Short local intervals, so a round trip shows in seconds.
		wiring.EnvPollInterval:  "5s",
		wiring.EnvAssemblyDelay: "1s",
	}
	return func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
}

// certificates loads the factory CA from Dir, or makes one, and issues the
// server's and each satellite's certificate.
func (b *backend) certificates() error {
	caCert, caKey := filepath.Join(b.opts.Dir, "ca.pem"), filepath.Join(b.opts.Dir, "ca.key")
	ca, err := devcerts.LoadCA(caCert, caKey)
	if errors.Is(err, os.ErrNotExist) {
		if ca, err = devcerts.NewCA(b.opts.Factory, 10*365*24*time.Hour); err == nil {
			_, _, err = ca.WriteFiles(b.opts.Dir, "ca")
		}
	}
	if err != nil {
		return fmt.Errorf("factory CA in %s: %w", b.opts.Dir, err)
	}
	b.ca = ca
	b.ready = ready{CA: caCert, Factory: b.opts.Factory, Satellites: map[string]certFiles{}, Core: b.core, PID: os.Getpid()}
	for _, sat := range b.opts.Satellites {
		cert, key := filepath.Join(b.opts.Dir, sat+".pem"), filepath.Join(b.opts.Dir, sat+".key")
		if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
			issued, err := ca.Satellite(b.opts.Factory, sat)
			if err != nil {
				return err
			}
			if cert, key, err = issued.WriteFiles(b.opts.Dir, sat); err != nil {
				return err
			}
		}
		b.ready.Satellites[sat] = certFiles{Cert: cert, Key: key}
	}
	return nil
}

// register puts the factory CA in the CA registry and enables each
// satellite with a change event through the config-change queue, the way
// an operator and ota-lite do on AWS.
func (b *backend) register(ctx context.Context, c localaws.Clients) error {
	reg := identity.NewRegistry(c.DynamoDB, b.core.Table, time.Now)
	if _, err := reg.AddCA(ctx, b.opts.Factory, devcerts.CertPEM(b.ca.Cert)); err != nil {
		return fmt.Errorf("register the factory CA: %w", err)
	}
	pub, err := publish.New(c.SQS, b.core.ConfigChanges.URL)
	if err != nil {
		return err
	}
	var evs []change.Event
	for _, sat := range b.opts.Satellites {
		evs = append(evs, change.Event{
			Factory: b.opts.Factory, Kind: change.KindSatellite,
			Scope: change.Scope{Type: change.ScopeSatellite, Name: sat},
			// The version only has to grow per scope; a registration made at a later
			// start replaces an earlier one.
			Version:   time.Now().UnixNano(),
			Satellite: &change.Satellite{Enabled: true},
			Time:      time.Now().UTC(),
		})
	}
	if err := pub.Publish(ctx, evs...); err != nil {
		return fmt.Errorf("register satellites: %w", err)
	}
	return nil
}

// listen opens the API's TLS listener: client certificates are required
// and verified against the factory CA, as the API's truststore does on AWS.
func (b *backend) listen(ctx context.Context) error {
	host, _, err := net.SplitHostPort(b.opts.Addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", b.opts.Addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	serverCert, err := b.ca.Server(host, "localhost", "127.0.0.1")
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(b.ca.Cert)
	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", b.opts.Addr)
	if err != nil {
		return err
	}
	b.lis = tls.NewListener(lis, &tls.Config{
		Certificates: []tls.Certificate{serverCert.TLS()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12, // the API's custom domain policy on AWS
	})
	b.ready.API = "https://" + lis.Addr().String()
	return nil
}

// run serves the API and polls the three queues until ctx ends, then
// finishes the invocations in flight.
func (b *backend) run(ctx context.Context) error {
	env := b.env()
	apiHandler, err := wiring.API(ctx, env, b.log.With("function", "api"))
	if err != nil {
		return err
	}
	ingest, err := wiring.Ingest(ctx, env, b.log.With("function", "ingest"))
	if err != nil {
		return err
	}
	changes, err := wiring.Change(ctx, env, b.log.With("function", "change"))
	if err != nil {
		return err
	}
	assemble, err := wiring.Assemble(ctx, env, b.log.With("function", "assemble"))
	if err != nil {
		return err
	}
	api, err := lambdalocal.NewAPI([]string{
		gatewayapi.RoutePing, gatewayapi.RoutePresign, gatewayapi.RouteUploadStatus, gatewayapi.RouteUpdates,
	}, apiHandler.Handle, b.log.With("function", "api"))
	if err != nil {
		return err
	}
	b.server = &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}

	sqsClient := awsconfig.NewSQS(b.aws)
	pollers := []*lambdalocal.Poller{
		{QueueURL: b.core.Ingest.URL, Handler: ingest.Handle, BatchSize: resources.Ingest.BatchSize},
		{QueueURL: b.core.ConfigChanges.URL, Handler: changes.Handle, BatchSize: resources.ConfigChanges.BatchSize},
		{QueueURL: b.core.Assembly.URL, Handler: assemble.Handle, BatchSize: resources.Assembly.BatchSize},
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(pollers)+1)
	for _, p := range pollers {
		p.SQS, p.RetryAfter, p.Redeliver, p.Logger = sqsClient, retryAfter, b.opts.Redeliver, b.log
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Run(ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := b.server.Serve(b.lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("API server: %w", err)
		}
	}()
	// Satellites are registered through the change queue; until the change
	// function has applied that, the API would refuse them (and cache the
	// refusal for a while).
	if err := b.waitRegistered(ctx); err != nil {
		cancel()
		wg.Wait()
		return err
	}
	if err := b.writeReady(); err != nil {
		return err
	}
	close(b.serving)
	b.log.Info("backend serving", "api", b.ready.API, "table", b.core.Table, "bucket", b.core.UploadsBucket)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	cancel()
	shutdown, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	_ = b.server.Shutdown(shutdown)
	wg.Wait()
	_ = os.Remove(filepath.Join(b.opts.Dir, "ready.json"))
	return runErr
}

// waitRegistered polls the registry until every satellite is enabled.
func (b *backend) waitRegistered(ctx context.Context) error {
	db := awsconfig.NewDynamoDB(b.aws)
	for _, sat := range b.opts.Satellites {
		for {
			out, err := db.GetItem(ctx, &dynamodb.GetItemInput{
				TableName: aws.String(b.core.Table), Key: records.Registry(b.opts.Factory, sat).Item(), ConsistentRead: aws.Bool(true),
			})
			if err != nil {
				return fmt.Errorf("wait for %s's registration: %w", sat, err)
			}
			var reg records.Satellite
			if out.Item != nil {
				if err := attributevalue.UnmarshalMap(out.Item, &reg); err != nil {
					return err
				}
			}
			if reg.Enabled {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// writeReady publishes ready.json atomically: a reader never sees half.
func (b *backend) writeReady() error {
	data, err := json.MarshalIndent(b.ready, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(b.opts.Dir, ".ready.json.tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(b.opts.Dir, "ready.json"))
}
