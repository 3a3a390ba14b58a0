package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/satellite-gateway/gateway/shared/awsconfig"
	"github.com/satellite-gateway/gateway/shared/awstest"
	"github.com/satellite-gateway/gateway/shared/fleetquery"
	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/resources"
	"github.com/satellite-gateway/gateway/shared/wire/change"
	"github.com/satellite-gateway/gateway/shared/wire/downlink"
)

// devicesPerSatellite is coprime with the six event types emit cycles
// through, so that every device gets every type.
const devicesPerSatellite = 5

// e2e holds the processes of one end-to-end run.
type e2e struct {
	t         *testing.T
	bin       string // built binaries
	dir       string // localdev's -dir
	apiPort   int
	proxy     *cutProxy
	backend   *exec.Cmd
	ready     ready
	sats      map[string]*satProc
	logs      *syncBuffer
	factory   string
	redeliver string
}

type satProc struct {
	name, config, device string
	cmd                  *exec.Cmd
	acked                int // events emit reported durable
	updateEvents         int // of which update-events
}

// TestEndToEnd runs the gateway through its real binaries: localdev -serve
// (the four functions behind the mTLS API and the SQS pollers, on a moto
// server), two `satellite` daemons with simulated devices fed by `satellite
// emit`, and the `publish` CLI, with faults injected throughout: SQS
// redelivers a fifth of the messages the functions handled, the network
// between satellites and API is cut, a satellite is SIGKILLed mid-run and
// restarted, and the backend (API and pollers) is restarted. At the end the
// table and the satellites' files must be exactly what was sent: every
// acknowledged event ingested once, no batch twice, every device attached
// to its satellite, the published config applied on the satellite that
// manages the group and absent from the other.
func TestEndToEnd(t *testing.T) {
	srv, err := awstest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	for _, kv := range srv.Settings() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	bin := t.TempDir()
	for _, pkg := range []string{"./", "../publish", "../../satellite/cmd/satellite"} {
		cmd := exec.Command("go", "build", "-o", bin+"/", pkg)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	e := &e2e{t: t, bin: bin, dir: t.TempDir(), apiPort: freePort(t), sats: map[string]*satProc{},
		logs: &syncBuffer{}, factory: "acme", redeliver: "0.2"}
	t.Cleanup(e.stopAll)
	defer func() {
		if t.Failed() {
			t.Logf("process logs:\n%s", e.logs.String())
		}
	}()

	e.startBackend()
	e.proxy = startProxy(t, fmt.Sprintf("127.0.0.1:%d", e.apiPort))
	for i, name := range []string{"sat-1", "sat-2"} {
		e.sats[name] = e.newSatellite(name, fmt.Sprintf("6f1c2a9e-0000-4000-800%d-000000000001", i+1))
		e.emit(e.sats[name], 60)
		e.startSatellite(e.sats[name])
	}

	// Faults, while the satellites upload: a network cut, a satellite killed mid-run (and more
	// events spooled while it is down), a backend restart.
	time.Sleep(2 * time.Second)
	e.proxy.cut(true)
	time.Sleep(3 * time.Second)
	e.proxy.cut(false)

	s1 := e.sats["sat-1"]
	_ = s1.cmd.Process.Signal(syscall.SIGKILL)
	_ = s1.cmd.Wait()
	e.emit(s1, 30)
	e.startSatellite(s1)

	e.publishGroupConfig("sat-1")
	e.restartBackend()

	// Converge: both spools empty, sat-1 in sync with a tarball holding the group.
	q := fleetquery.New(awsconfig.NewDynamoDB(e.awsConfig()), e.ready.Core.Table)
	e.eventually(180*time.Second, "satellites drained and sat-1 in sync with its group config", func() error {
		for _, s := range e.sats {
			if d := e.depth(s); d != 0 {
				return fmt.Errorf("%s: %d events not acknowledged", s.name, d)
			}
		}
		rep, err := q.Sync(context.Background(), e.factory, "sat-1", time.Now())
		if err != nil {
			return err
		}
		if !rep.InSync || rep.DesiredVersion == "" {
			return fmt.Errorf("sat-1 desired %q applied %q", rep.DesiredVersion, rep.AppliedVersion)
		}
		cfg, err := e.satConfig("sat-1")
		if err != nil {
			return err
		}
		if _, ok := cfg.Groups["lab"]; !ok {
			return errors.New("sat-1's config.json has no group lab yet")
		}
		return nil
	})

	// The table holds exactly what was acknowledged.
	db := awsconfig.NewDynamoDB(e.awsConfig())
	for _, s := range e.sats {
		devices, err := q.AllDevices(context.Background(), e.factory, s.name)
		if err != nil {
			t.Fatal(err)
		}
		if len(devices) != devicesPerSatellite {
			t.Errorf("%s: %d devices attached, want %d", s.name, len(devices), devicesPerSatellite)
		}
		for _, d := range devices {
			if d.Satellite != s.name || !strings.HasPrefix(d.Device, s.device[:len(s.device)-6]) {
				t.Errorf("%s lists device %s of satellite %s", s.name, d.Device, d.Satellite)
			}
		}
		ledger := e.query(db, records.SatellitePK(e.factory, s.name), records.BatchPrefix)
		events, seqs := 0, map[uint64]bool{}
		for _, item := range ledger {
			var b records.BatchEntry
			if err := attributevalue.UnmarshalMap(item, &b); err != nil {
				t.Fatal(err)
			}
			if b.State != "ingested" {
				t.Errorf("%s: batch %s is %s (%s %s)", s.name, b.Batch, b.State, b.Code, b.Reason)
			}
			if seqs[b.Seq] {
				t.Errorf("%s: two batches with seq %d", s.name, b.Seq)
			}
			seqs[b.Seq] = true
			events += b.Events + b.RejectedEvents
		}
		// Besides what emit spooled, the satellite reports each downlink version it applied.
		reports := countLines(e.logs.String(), s.name+": ", `"msg":"updates applied"`)
		if events != s.acked+reports {
			t.Errorf("%s: batches hold %d events; emit acknowledged %d and the satellite reported %d applied updates",
				s.name, events, s.acked, reports)
		}
		var stored int
		for i := range devicesPerSatellite {
			device := s.device[:len(s.device)-6] + fmt.Sprintf("%06d", i)
			stored += len(e.query(db, records.DevicePK(e.factory, device), records.EventPrefix))
		}
		if stored != s.updateEvents {
			t.Errorf("%s: %d update events stored, %d sent: redelivery duplicated or lost some", s.name, stored, s.updateEvents)
		}
	}
	// Only the managing satellite gets the group.
	e.eventually(60*time.Second, "sat-2 has a tarball", func() error {
		_, err := e.satConfig("sat-2")
		return err
	})
	if cfg, _ := e.satConfig("sat-2"); cfg.Groups["lab"] != nil {
		t.Errorf("sat-2 received group lab, which sat-1 manages: %+v", cfg.Groups)
	}
	cfg, _ := e.satConfig("sat-1")
	if cfg.Groups["lab"]["e2e.conf"].Value != "from the end-to-end test" {
		t.Errorf("sat-1's group lab: %+v", cfg.Groups["lab"])
	}
}

func (e *e2e) awsConfig() aws.Config {
	cfg, err := awsconfig.Load(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return cfg
}

// query returns the items of a partition whose sort key starts with prefix.
func (e *e2e) query(db *dynamodb.Client, pk, prefix string) []map[string]ddbtypes.AttributeValue {
	e.t.Helper()
	var items []map[string]ddbtypes.AttributeValue
	p := dynamodb.NewQueryPaginator(db, &dynamodb.QueryInput{
		TableName:              aws.String(e.ready.Core.Table),
		KeyConditionExpression: aws.String("#pk = :pk AND begins_with(#sk, :sk)"),
		ExpressionAttributeNames: map[string]string{
			"#pk": resources.PartitionKey, "#sk": resources.SortKey,
		},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":pk": &ddbtypes.AttributeValueMemberS{Value: pk}, ":sk": &ddbtypes.AttributeValueMemberS{Value: prefix},
		},
		ConsistentRead: aws.Bool(true),
	})
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		items = append(items, out.Items...)
	}
	return items
}

func (e *e2e) startBackend() {
	e.t.Helper()
	_ = os.Remove(filepath.Join(e.dir, "ready.json"))
	cmd := exec.Command(filepath.Join(e.bin, "localdev"), "-serve", "-dir", e.dir,
		"-addr", fmt.Sprintf("127.0.0.1:%d", e.apiPort), "-satellites", "sat-1,sat-2", "-redeliver", e.redeliver)
	cmd.Stdout, cmd.Stderr = io.Discard, prefixed(e.logs, "localdev")
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.backend = cmd
	e.eventually(60*time.Second, "localdev serving", func() error {
		data, err := os.ReadFile(filepath.Join(e.dir, "ready.json"))
		if err != nil {
			return err
		}
		var r ready
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		if r.PID != cmd.Process.Pid {
			return fmt.Errorf("ready.json of pid %d", r.PID)
		}
		e.ready = r
		return nil
	})
}

// restartBackend stops the backend as an orchestrator would (SIGTERM: the
// API stops accepting, invocations in flight finish) and starts it again.
func (e *e2e) restartBackend() {
	e.t.Helper()
	_ = e.backend.Process.Signal(syscall.SIGTERM)
	if err := e.backend.Wait(); err != nil {
		e.t.Errorf("localdev exit after SIGTERM: %v", err)
	}
	e.startBackend()
}

func (e *e2e) newSatellite(name, device string) *satProc {
	e.t.Helper()
	dir := filepath.Join(e.dir, "sat-"+name)
	certs := e.ready.Satellites[name]
	cfg := map[string]any{
		"gateway-url": e.proxy.url(), "cert": certs.Cert, "key": certs.Key, "ca": e.ready.CA,
		"spool-dir": filepath.Join(dir, "spool"), "updates-dir": filepath.Join(dir, "updates"),
		"batch-age": "1s", "ack-poll": "300ms", "poll-interval": "2s", "min-backoff": "200ms", "max-backoff": "2s",
	}
	data, _ := json.Marshal(cfg)
	file := filepath.Join(e.dir, name+".json")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		e.t.Fatal(err)
	}
	return &satProc{name: name, config: file, device: device}
}

// emit spools n mixed events over six devices while the daemon is not
// running, counting what emit reports durable.
func (e *e2e) emit(s *satProc, n int) {
	e.t.Helper()
	out, err := exec.Command(filepath.Join(e.bin, "satellite"), "emit", "-config", s.config,
		"-n", strconv.Itoa(n), "-devices", strconv.Itoa(devicesPerSatellite), "-device", s.device, "-type", "mixed", "-ack", "-workers", "1").Output()
	if err != nil {
		e.t.Fatalf("emit for %s: %v", s.name, err)
	}
	acked := strings.Count(string(out), "\n")
	if acked != n {
		e.t.Fatalf("emit for %s: %d of %d events acknowledged", s.name, acked, n)
	}
	s.acked += acked
	for i := range n {
		if i%6 == 1 { // emit's mixed sequence: index 1 of every 6 is update-events
			s.updateEvents++
		}
	}
}

func (e *e2e) startSatellite(s *satProc) {
	e.t.Helper()
	cmd := exec.Command(filepath.Join(e.bin, "satellite"), "run", "-config", s.config)
	cmd.Stdout, cmd.Stderr = io.Discard, prefixed(e.logs, s.name)
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	s.cmd = cmd
}

func (e *e2e) depth(s *satProc) int64 {
	out, err := exec.Command(filepath.Join(e.bin, "satellite"), "status", "-config", s.config, "-json").Output()
	if err != nil {
		return -1
	}
	var st struct {
		Depth int64 `json:"depth"`
	}
	if json.Unmarshal(out, &st) != nil {
		return -1
	}
	return st.Depth
}

func (e *e2e) satConfig(name string) (downlink.Config, error) {
	data, err := os.ReadFile(filepath.Join(e.dir, "sat-"+name, "updates", "current", downlink.ConfigName))
	if err != nil {
		return downlink.Config{}, err
	}
	return downlink.ParseConfig(data)
}

// publishGroupConfig sends, with the publisher CLI, a group managed by sat
// and the group's config.
func (e *e2e) publishGroupConfig(sat string) {
	e.t.Helper()
	var lines []string
	for _, ev := range []change.Event{
		{Factory: e.factory, Kind: change.KindGroup, Scope: change.Scope{Type: change.ScopeGroup, Name: "lab"},
			Version: 1, Group: &change.Group{Satellite: sat}},
		{Factory: e.factory, Kind: change.KindConfig, Scope: change.Scope{Type: change.ScopeGroup, Name: "lab"},
			Version: 1, Config: downlink.Files{"e2e.conf": {Value: "from the end-to-end test", Unencrypted: true}}},
	} {
		b, err := change.Marshal(ev)
		if err != nil {
			e.t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	file := filepath.Join(e.dir, "change.jsonl")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if out, err := exec.Command(filepath.Join(e.bin, "publish"), "-queue-url", e.ready.Core.ConfigChanges.URL, file).CombinedOutput(); err != nil {
		e.t.Fatalf("publish: %v\n%s", err, out)
	}
}

func (e *e2e) eventually(timeout time.Duration, what string, f func() error) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not after %v: %v", what, timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (e *e2e) stopAll() {
	for _, s := range e.sats {
		if s.cmd != nil && s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			_ = s.cmd.Wait()
		}
	}
	if e.backend != nil && e.backend.ProcessState == nil {
		_ = e.backend.Process.Signal(syscall.SIGTERM)
		_ = e.backend.Wait()
	}
	if e.proxy != nil {
		e.proxy.close()
	}
}

// countLines counts the lines of s that start with prefix and contain sub.
func countLines(s, prefix, sub string) int {
	n := 0
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, prefix) && strings.Contains(line, sub) {
			n++
		}
	}
	return n
}

// prefixed writes each line of a process's output to w with its name.
func prefixed(w io.Writer, name string) io.Writer {
	r, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintf(w, "%s: %s\n", name, sc.Bytes())
		}
	}()
	return pw
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// cutProxy forwards TCP to the API; cut(true) drops every connection and
// refuses new ones until cut(false), as a site's uplink going down does.
type cutProxy struct {
	lis    net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
}

func startProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{lis: l, target: target, conns: map[net.Conn]bool{}}
	go p.serve()
	return p
}

// url is the API through the proxy. The server certificate names
// 127.0.0.1, which the proxy address is too.
func (p *cutProxy) url() string { return "https://" + p.lis.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		if !down {
			p.conns[c] = true
		}
		p.mu.Unlock()
		if down {
			_ = c.Close()
			continue
		}
		go p.forward(c)
	}
}

func (p *cutProxy) forward(c net.Conn) {
	defer p.drop(c)
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.conns[up] = true
	p.mu.Unlock()
	defer p.drop(up)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

func (p *cutProxy) drop(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *cutProxy) cut(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			_ = c.Close()
		}
	}
}

func (p *cutProxy) close() {
	_ = p.lis.Close()
	p.cut(true)
}
