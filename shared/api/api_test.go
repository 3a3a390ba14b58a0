package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/satellite-gateway/gateway/shared/api"
	"github.com/satellite-gateway/gateway/shared/awsconfig"
	"github.com/satellite-gateway/gateway/shared/awstest"
	"github.com/satellite-gateway/gateway/shared/identity"
	"github.com/satellite-gateway/gateway/shared/identity/identitytest"
	"github.com/satellite-gateway/gateway/shared/records"
	"github.com/satellite-gateway/gateway/shared/resources"
	"github.com/satellite-gateway/gateway/shared/wire/gatewayapi"
)

func TestMain(m *testing.M) { awstest.Main(m) }

const (
	batchA   = "01JD8X3V5Q2Z7N4M6K8P0R1S2Z"
	shaA     = "5f0c6b1e0d8a4b2c9e7f3a1d5c8b0e2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b"
	shaB     = "0000000000000000000000000000000000000000000000000000000000000001"
	versionA = "a3c1e5f7092b4d6f8a0c2e4b6d8f0a1c3e5b7d9f1a3c5e7b9d0f2a4c6e8b0d2f"
)

// fakeDB fakes the handler's DynamoDB calls; newFakeDB wires them to an
// in-memory table where a conditional put fails when the item exists
// (the only condition the handler uses), without returning the old item,
// so the handler's read-after-conflict path runs.
type fakeDB struct {
	getItem func(context.Context, *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error)
	putItem func(context.Context, *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error)
}

func (f *fakeDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return f.getItem(ctx, in)
}

func (f *fakeDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return f.putItem(ctx, in)
}

func newFakeDB(items *identitytest.Items) *fakeDB {
	return &fakeDB{
		getItem: func(ctx context.Context, in *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
			return items.GetItem(ctx, in)
		},
		putItem: func(_ context.Context, in *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
			key := records.Key{PK: in.Item[resources.PartitionKey].(*types.AttributeValueMemberS).Value, SK: in.Item[resources.SortKey].(*types.AttributeValueMemberS).Value}
			if in.ConditionExpression != nil && items.Get(key) != nil {
				return nil, &types.ConditionalCheckFailedException{Message: aws.String("exists")}
			}
			items.PutItem(in.Item)
			return &dynamodb.PutItemOutput{}, nil
		},
	}
}

// fakeSigner fakes the presigner; newFakeSigner signs for real, offline,
// with static credentials, and counts.
type fakeSigner struct {
	put   func(context.Context, *s3.PutObjectInput, ...func(*s3.PresignOptions)) (*v4.PresignedHTTPRequest, error)
	get   func(context.Context, *s3.GetObjectInput, ...func(*s3.PresignOptions)) (*v4.PresignedHTTPRequest, error)
	calls int
}

func (f *fakeSigner) PresignPutObject(ctx context.Context, in *s3.PutObjectInput, o ...func(*s3.PresignOptions)) (*v4.PresignedHTTPRequest, error) {
	f.calls++
	return f.put(ctx, in, o...)
}

func (f *fakeSigner) PresignGetObject(ctx context.Context, in *s3.GetObjectInput, o ...func(*s3.PresignOptions)) (*v4.PresignedHTTPRequest, error) {
	f.calls++
	return f.get(ctx, in, o...)
}

func newFakeSigner() *fakeSigner {
	c := s3.NewPresignClient(awsconfig.NewS3(aws.Config{
		Region:      "eu-central-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
	}))
	return &fakeSigner{put: c.PresignPutObject, get: c.PresignGetObject}
}

// env is a handler over an in-memory registry: factory acme's CA, its
// satellites sat-1 and sat-2 (enabled) and sat-off (disabled).
type env struct {
	ca     *identitytest.CA
	items  *identitytest.Items
	db     *fakeDB
	signer *fakeSigner
	h      *api.Handler
	logs   *bytes.Buffer
	now    time.Time
	certs  map[string]string // satellite -> PEM
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{
		ca:     identitytest.NewCA(t, "acme", identitytest.CAOptions{}),
		items:  identitytest.NewItems(),
		signer: newFakeSigner(),
		logs:   &bytes.Buffer{},
		now:    time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),
		certs:  map[string]string{},
	}
	e.items.Put(t, identitytest.EntryKey(e.ca.Entry()), e.ca.Entry())
	for sat, enabled := range map[string]bool{"sat-1": true, "sat-2": true, "sat-off": false} {
		e.items.Put(t, records.Registry("acme", sat), identitytest.Registration("acme", sat, enabled))
		leaf := identitytest.Satellite("acme", sat)
		leaf.NotBefore, leaf.NotAfter = e.now.Add(-time.Hour), e.now.AddDate(1, 0, 0)
		e.certs[sat] = e.ca.Issue(t, leaf).PEM
	}
	e.db = newFakeDB(e.items)
	clock := func() time.Time { return e.now }
	ids, err := identity.NewResolver(identitytest.NewDB(e.items), identity.Config{Table: "t", Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	e.h, err = api.New(api.Config{
		Table: "t", Bucket: "gw-bucket", Now: clock,
		Logger: slog.New(slog.NewJSONHandler(e.logs, nil)),
	}, ids, e.db, e.signer)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// req builds an API Gateway request for routeKey ("GET /ping") from sat.
func req(routeKey, certPEM string) events.APIGatewayV2HTTPRequest {
	method, path, _ := strings.Cut(routeKey, " ")
	r := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: routeKey, RawPath: path,
		Headers: map[string]string{"host": "gateway.example.com"},
	}
	r.RequestContext.RequestID = "req-1"
	r.RequestContext.HTTP.Method = method
	r.RequestContext.HTTP.Path = path
	r.RequestContext.Authentication.ClientCert.ClientCertPem = certPEM
	return r
}

func statusReq(batch, certPEM string) events.APIGatewayV2HTTPRequest {
	r := req(gatewayapi.RouteUploadStatus, certPEM)
	r.RawPath = gatewayapi.UploadPath(batch)
	r.PathParameters = map[string]string{"batch": batch}
	return r
}

func presignReq(certPEM, body string) events.APIGatewayV2HTTPRequest {
	r := req(gatewayapi.RoutePresign, certPEM)
	r.Body = body
	r.Headers["content-type"] = "application/json"
	return r
}

func presignBody(batch string, size int64, sha string) string {
	b, _ := json.Marshal(gatewayapi.PresignRequest{Batch: batch, Size: size, SHA256: sha})
	return string(b)
}

func (e *env) do(t *testing.T, r events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	res, err := e.h.Handle(t.Context(), r)
	if err != nil {
		t.Fatalf("Handle returned an error: %v", err)
	}
	if res.Headers[gatewayapi.HeaderRequestID] == "" {
		t.Errorf("no %s header", gatewayapi.HeaderRequestID)
	}
	return res
}

// wantError checks a refusal: status, code and a JSON error body.
func wantError(t *testing.T, res events.APIGatewayV2HTTPResponse, status int, code gatewayapi.ErrorCode) {
	t.Helper()
	var body gatewayapi.Error
	if err := json.Unmarshal([]byte(res.Body), &body); err != nil {
		t.Fatalf("status %d, body %q: %v", res.StatusCode, res.Body, err)
	}
	if res.StatusCode != status || body.Code != code || body.Message == "" {
		t.Fatalf("answer %d %+v, want %d %s", res.StatusCode, body, status, code)
	}
	if res.Headers["Content-Type"] != "application/json" {
		t.Errorf("Content-Type %q", res.Headers["Content-Type"])
	}
}

func decode[T any](t *testing.T, res events.APIGatewayV2HTTPResponse) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(res.Body), &v); err != nil {
		t.Fatalf("body %q: %v", res.Body, err)
	}
	return v
}

// TestIdentityThroughHandler: every route refuses a caller who is not an
// enabled satellite with the identity's status and code, before any
// route-specific read or write.
func TestIdentityThroughHandler(t *testing.T) {
	e := newEnv(t)
	valid := func(l identitytest.Leaf) identitytest.Leaf {
		l.NotBefore, l.NotAfter = e.now.Add(-time.Hour), e.now.AddDate(1, 0, 0)
		return l
	}
	sat := valid(identitytest.Satellite("acme", "sat-1"))
	device, none := sat, sat
	device.BusinessCategory, none.BusinessCategory = "production", ""
	expired, early := sat, sat
	expired.NotBefore, expired.NotAfter = e.now.Add(-48*time.Hour), e.now.Add(-time.Hour)
	early.NotBefore = e.now.Add(time.Hour)
	foreign := identitytest.NewCA(t, "acme", identitytest.CAOptions{})

	cases := []struct {
		name   string
		pem    string
		status int
		code   gatewayapi.ErrorCode
	}{
		{"wrong businessCategory", e.ca.Issue(t, device).PEM, 403, gatewayapi.CodeNotSatellite},
		{"no businessCategory", e.ca.Issue(t, none).PEM, 403, gatewayapi.CodeNotSatellite},
		{"foreign CA", foreign.Issue(t, sat).PEM, 403, gatewayapi.CodeUnknownCA},
		{"OU mismatch", e.ca.Issue(t, valid(identitytest.Satellite("globex", "sat-1"))).PEM, 403, gatewayapi.CodeWrongFactory},
		{"disabled", e.certs["sat-off"], 403, gatewayapi.CodeDisabled},
		{"unregistered", e.ca.Issue(t, valid(identitytest.Satellite("acme", "sat-9"))).PEM, 403, gatewayapi.CodeUnregistered},
		{"expired", e.ca.Issue(t, expired).PEM, 401, gatewayapi.CodeBadCert},
		{"not yet valid", e.ca.Issue(t, early).PEM, 401, gatewayapi.CodeBadCert},
		{"garbage PEM", "-----BEGIN CERTIFICATE-----\nMIIEZTCCAk0CAQEwDQ...\n-----END CERTIFICATE-----\n", 401, gatewayapi.CodeBadCert},
		{"missing", "", 401, gatewayapi.CodeNoCertificate},
	}
	routes := []events.APIGatewayV2HTTPRequest{
		req(gatewayapi.RoutePing, ""), presignReq("", presignBody(batchA, 10, shaA)),
		statusReq(batchA, ""), req(gatewayapi.RouteUpdates, ""),
	}
	for _, c := range cases {
		for _, r := range routes {
			t.Run(c.name+"/"+r.RouteKey, func(t *testing.T) {
				r.RequestContext.Authentication.ClientCert.ClientCertPem = c.pem
				wantError(t, e.do(t, r), c.status, c.code)
			})
		}
	}
	if e.signer.calls != 0 {
		t.Errorf("%d URLs signed for refused callers", e.signer.calls)
	}
	if e.items.Get(records.Batch("acme", "sat-1", batchA)) != nil {
		t.Error("a refused caller wrote a ledger entry")
	}
}

func TestPing(t *testing.T) {
	e := newEnv(t)
	res := e.do(t, req(gatewayapi.RoutePing, e.certs["sat-1"]))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d %s", res.StatusCode, res.Body)
	}
	p := decode[gatewayapi.Ping](t, res)
	if p.Factory != "acme" || p.Satellite != "sat-1" || !p.Time.Equal(e.now) {
		t.Fatalf("ping %+v", p)
	}
	if res.Headers[gatewayapi.HeaderRequestID] != "req-1" || res.Headers["Cache-Control"] != "no-store" {
		t.Errorf("headers %v", res.Headers)
	}
	if _, ok := res.Headers[gatewayapi.HeaderPollInterval]; ok {
		t.Error("X-Poll-Interval on /ping")
	}
}

// TestRouting: the $default route (a local dev server) reaches the same
// handlers by method and path; anything else is 404 not-found.
func TestRouting(t *testing.T) {
	e := newEnv(t)
	e.items.Put(t, records.Batch("acme", "sat-1", batchA), records.BatchEntry{Batch: batchA, State: "pending", Size: 1, SHA256: shaA})
	cert := e.certs["sat-1"]
	dflt := func(method, path, body string) events.APIGatewayV2HTTPRequest {
		r := req(method+" "+path, cert)
		r.RouteKey = "$default"
		r.Body = body
		return r
	}
	for _, c := range []struct {
		r    events.APIGatewayV2HTTPRequest
		want int
	}{
		{dflt("GET", "/ping", ""), 200},
		{dflt("POST", "/updates/uploads", presignBody("01JD8X3V5Q2Z7N4M6K8P0R1S30", 10, shaA)), 201},
		{dflt("GET", "/updates/uploads/"+batchA, ""), 200},
		{dflt("GET", "/updates", ""), 204},
		{dflt("POST", "/ping", ""), 404},
		{dflt("GET", "/updates/uploads/", ""), 404},
		{dflt("GET", "/updates/uploads/"+batchA+"/x", ""), 404},
		{dflt("DELETE", "/updates", ""), 404},
		{dflt("GET", "/", ""), 404},
		{req("GET /admin", cert), 404},
	} {
		res := e.do(t, c.r)
		if res.StatusCode != c.want {
			t.Errorf("%s %s: %d %s, want %d", c.r.RequestContext.HTTP.Method, c.r.RawPath, res.StatusCode, res.Body, c.want)
		}
		if c.want == 404 {
			wantError(t, res, 404, gatewayapi.CodeNotFound)
		}
	}
	// Headers are found whatever their case.
	e.items.Put(t, records.Updates("acme", "sat-1"), records.UpdatesState{Version: versionA})
	r := dflt("GET", "/updates", "")
	r.Headers["If-None-Match"] = gatewayapi.FormatETag(versionA)
	if res := e.do(t, r); res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match in canonical case: %d", res.StatusCode)
	}
}

// TestPresign walks one batch id through the ledger's cases.
func TestPresign(t *testing.T) {
	e := newEnv(t)
	cert := e.certs["sat-1"]

	res := e.do(t, presignReq(cert, presignBody(batchA, 5120, shaA)))
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("first presign: %d %s", res.StatusCode, res.Body)
	}
	up := decode[gatewayapi.Upload](t, res)
	u, err := url.Parse(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	wantSum := base64.StdEncoding.EncodeToString(mustHex(t, shaA))
	switch {
	case up.Batch != batchA || up.State != gatewayapi.StatePending || up.Method != http.MethodPut:
		t.Errorf("upload %+v", up)
	case u.Path != "/uploads/acme/sat-1/"+batchA+".tar.gz":
		t.Errorf("URL path %q: not the satellite's own key", u.Path)
	case u.Query().Get("X-Amz-Expires") != "300":
		t.Errorf("URL expiry %q, want 300 s", u.Query().Get("X-Amz-Expires"))
	case up.Headers["Content-Length"] != "5120" || up.Headers["X-Amz-Checksum-Sha256"] != wantSum:
		t.Errorf("headers %v: want the length and checksum bound", up.Headers)
	case !strings.Contains(u.Query().Get("X-Amz-SignedHeaders"), "content-length") || !strings.Contains(u.Query().Get("X-Amz-SignedHeaders"), "x-amz-checksum-sha256"):
		t.Errorf("signed headers %q", u.Query().Get("X-Amz-SignedHeaders"))
	case !up.Expires.Equal(e.now.Add(5 * time.Minute)):
		t.Errorf("expires %v", up.Expires)
	}
	if _, ok := up.Headers["Host"]; ok {
		t.Error("Host listed among the headers to send")
	}
	key := records.Batch("acme", "sat-1", batchA)
	first := ledger(t, e, key)
	if first.State != "pending" || first.Size != 5120 || first.SHA256 != shaA || !first.Created.Equal(e.now) {
		t.Fatalf("ledger %+v", first)
	}
	if ttl, ok := e.items.Get(key)[resources.TTLAttribute].(*types.AttributeValueMemberN); !ok || ttl.Value != records.ExpiresAt(e.now.Add(records.BatchRetention)) {
		t.Errorf("ledger TTL %v", e.items.Get(key)[resources.TTLAttribute])
	}

	// Asked again later: a fresh URL, the ledger untouched.
	e.now = e.now.Add(time.Minute)
	res = e.do(t, presignReq(cert, presignBody(batchA, 5120, shaA)))
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("second presign: %d %s", res.StatusCode, res.Body)
	}
	if again := ledger(t, e, key); again != first {
		t.Errorf("ledger changed: %+v", again)
	}

	// Another size or sha256 for the batch id: 409, ledger untouched.
	for _, body := range []string{presignBody(batchA, 5121, shaA), presignBody(batchA, 5120, shaB)} {
		wantError(t, e.do(t, presignReq(cert, body)), http.StatusConflict, gatewayapi.CodeConflict)
	}
	if again := ledger(t, e, key); again != first {
		t.Errorf("ledger changed by a conflict: %+v", again)
	}

	// Ingested: the status, no URL; with other bytes still a conflict.
	ingested := first
	ingested.State, ingested.Seq, ingested.Events, ingested.Updated = "ingested", 7, 12, e.now
	e.items.Put(t, key, ingested)
	signed := e.signer.calls
	res = e.do(t, presignReq(cert, presignBody(batchA, 5120, shaA)))
	st := decode[gatewayapi.Status](t, res)
	if res.StatusCode != http.StatusOK || st.State != gatewayapi.StateIngested || st.Seq != 7 || st.Events != 12 {
		t.Fatalf("presign of an ingested batch: %d %s", res.StatusCode, res.Body)
	}
	wantError(t, e.do(t, presignReq(cert, presignBody(batchA, 5120, shaB))), http.StatusConflict, gatewayapi.CodeConflict)
	if e.signer.calls != signed {
		t.Error("a URL was signed for a final batch")
	}

	// The same batch id from another satellite is its own batch.
	if res := e.do(t, presignReq(e.certs["sat-2"], presignBody(batchA, 1, shaB))); res.StatusCode != http.StatusCreated {
		t.Fatalf("sat-2: %d %s", res.StatusCode, res.Body)
	}
}

// TestPresignOldItemOnConflict: when DynamoDB returns the old item with
// the failed condition, the handler decides from it without another read.
func TestPresignOldItemOnConflict(t *testing.T) {
	e := newEnv(t)
	old, err := attributevalue.MarshalMap(records.BatchEntry{Batch: batchA, State: "rejected", Size: 10, SHA256: shaA, Code: "bad-gzip", Reason: "not gzip"})
	if err != nil {
		t.Fatal(err)
	}
	e.db.putItem = func(context.Context, *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
		return nil, &types.ConditionalCheckFailedException{Message: aws.String("exists"), Item: old}
	}
	e.db.getItem = func(context.Context, *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
		t.Error("ledger read again")
		return nil, errors.New("unexpected")
	}
	res := e.do(t, presignReq(e.certs["sat-1"], presignBody(batchA, 10, shaA)))
	st := decode[gatewayapi.Status](t, res)
	if res.StatusCode != http.StatusOK || st.State != gatewayapi.StateRejected || st.Code != "bad-gzip" || st.Reason != "not gzip" {
		t.Fatalf("%d %s", res.StatusCode, res.Body)
	}
}

// TestPresignRefusals: each bad request is refused with its code, and
// neither writes the ledger nor signs anything.
func TestPresignRefusals(t *testing.T) {
	e := newEnv(t)
	cert := e.certs["sat-1"]
	b64 := presignReq(cert, base64.StdEncoding.EncodeToString([]byte(presignBody(batchA, 0, shaA))))
	b64.IsBase64Encoded = true
	badB64 := presignReq(cert, "!!!")
	badB64.IsBase64Encoded = true
	for name, c := range map[string]struct {
		r      events.APIGatewayV2HTTPRequest
		status int
		code   gatewayapi.ErrorCode
	}{
		"empty body":         {presignReq(cert, ""), 400, gatewayapi.CodeBadRequest},
		"not JSON":           {presignReq(cert, "batch=x"), 400, gatewayapi.CodeBadRequest},
		"JSON array":         {presignReq(cert, "[1]"), 400, gatewayapi.CodeBadRequest},
		"wrong field type":   {presignReq(cert, `{"batch":"`+batchA+`","size":"10","sha256":"`+shaA+`"}`), 400, gatewayapi.CodeBadRequest},
		"two JSON values":    {presignReq(cert, presignBody(batchA, 10, shaA)+"{}"), 400, gatewayapi.CodeBadRequest},
		"oversized body":     {presignReq(cert, `{"batch":"`+batchA+`","pad":"`+strings.Repeat("x", api.MaxBody)+`"}`), 400, gatewayapi.CodeBadRequest},
		"huge body":          {presignReq(cert, strings.Repeat(" ", 1<<20)), 400, gatewayapi.CodeBadRequest},
		"bad base64":         {badB64, 400, gatewayapi.CodeBadRequest},
		"base64, size zero":  {b64, 400, gatewayapi.CodeBadRequest},
		"negative size":      {presignReq(cert, presignBody(batchA, -1, shaA)), 400, gatewayapi.CodeBadRequest},
		"size over limit":    {presignReq(cert, presignBody(batchA, gatewayapi.MaxUploadSize+1, shaA)), 413, gatewayapi.CodeTooLarge},
		"lowercase batch id": {presignReq(cert, presignBody(strings.ToLower(batchA), 10, shaA)), 400, gatewayapi.CodeBadRequest},
		"batch id a path":    {presignReq(cert, presignBody("../../x", 10, shaA)), 400, gatewayapi.CodeBadRequest},
		"uppercase sha256":   {presignReq(cert, presignBody(batchA, 10, strings.ToUpper(shaA))), 400, gatewayapi.CodeBadRequest},
		"short sha256":       {presignReq(cert, presignBody(batchA, 10, shaA[:10])), 400, gatewayapi.CodeBadRequest},
	} {
		t.Run(name, func(t *testing.T) { wantError(t, e.do(t, c.r), c.status, c.code) })
	}
	if e.signer.calls != 0 || e.items.Get(records.Batch("acme", "sat-1", batchA)) != nil {
		t.Errorf("refusals signed %d URLs or wrote the ledger", e.signer.calls)
	}

	// A base64 body (as API Gateway sends binary content types) is read.
	ok := presignReq(cert, base64.StdEncoding.EncodeToString([]byte(presignBody(batchA, 10, shaA))))
	ok.IsBase64Encoded = true
	if res := e.do(t, ok); res.StatusCode != http.StatusCreated {
		t.Fatalf("base64 body: %d %s", res.StatusCode, res.Body)
	}
}

func TestUploadStatus(t *testing.T) {
	e := newEnv(t)
	cert := e.certs["sat-1"]
	wantError(t, e.do(t, statusReq(batchA, cert)), 404, gatewayapi.CodeNotFound)
	for _, bad := range []string{strings.ToLower(batchA), "x", "..", batchA + "0"} {
		wantError(t, e.do(t, statusReq(bad, cert)), 400, gatewayapi.CodeBadRequest)
	}
	entry := records.BatchEntry{
		Batch: batchA, State: "rejected", Size: 10, SHA256: shaA, Seq: 3,
		Code: "checksum-mismatch", Reason: "events.log sha256 differs", Created: e.now, Updated: e.now.Add(time.Minute),
	}
	e.items.Put(t, records.Batch("acme", "sat-1", batchA), entry)
	res := e.do(t, statusReq(batchA, cert))
	want := gatewayapi.Status{Batch: batchA, State: gatewayapi.StateRejected, Seq: 3, Code: "checksum-mismatch", Reason: "events.log sha256 differs", Updated: e.now.Add(time.Minute)}
	if got := decode[gatewayapi.Status](t, res); res.StatusCode != http.StatusOK || got != want {
		t.Fatalf("%d %+v, want %+v", res.StatusCode, got, want)
	}
	// Another satellite does not see it.
	wantError(t, e.do(t, statusReq(batchA, e.certs["sat-2"])), 404, gatewayapi.CodeNotFound)
}

func TestUpdates(t *testing.T) {
	e := newEnv(t)
	cert := e.certs["sat-1"]
	poll := func(res events.APIGatewayV2HTTPResponse) {
		t.Helper()
		if res.Headers[gatewayapi.HeaderPollInterval] != "60" {
			t.Errorf("%s = %q", gatewayapi.HeaderPollInterval, res.Headers[gatewayapi.HeaderPollInterval])
		}
	}
	res := e.do(t, req(gatewayapi.RouteUpdates, cert))
	if res.StatusCode != http.StatusNoContent || res.Body != "" {
		t.Fatalf("nothing assembled: %d %q", res.StatusCode, res.Body)
	}
	poll(res)

	e.items.Put(t, records.Updates("acme", "sat-1"), records.UpdatesState{
		Version: versionA,
		// A key pointing elsewhere must not be followed.
		Key: "updates/acme/sat-2/" + versionA + ".tar.gz",
	})
	res = e.do(t, req(gatewayapi.RouteUpdates, cert))
	poll(res)
	if res.StatusCode != http.StatusTemporaryRedirect || res.Headers["ETag"] != `"`+versionA+`"` {
		t.Fatalf("307: %d %v", res.StatusCode, res.Headers)
	}
	loc, err := url.Parse(res.Headers["Location"])
	if err != nil || loc.Path != "/updates/acme/sat-1/"+versionA+".tar.gz" || loc.Query().Get("X-Amz-Expires") != "300" {
		t.Fatalf("Location %q", res.Headers["Location"])
	}
	if res.Headers["Cache-Control"] != "no-store" {
		t.Errorf("Cache-Control %q", res.Headers["Cache-Control"])
	}

	signed := e.signer.calls
	for _, inm := range []string{`"` + versionA + `"`, `W/"` + versionA + `"`, `"other", "` + versionA + `"`, "*"} {
		r := req(gatewayapi.RouteUpdates, cert)
		r.Headers["if-none-match"] = inm
		res = e.do(t, r)
		poll(res)
		if res.StatusCode != http.StatusNotModified || res.Headers["ETag"] != `"`+versionA+`"` || res.Body != "" {
			t.Fatalf("If-None-Match %s: %d %v", inm, res.StatusCode, res.Headers)
		}
	}
	if e.signer.calls != signed {
		t.Error("304 signed a URL")
	}
	r := req(gatewayapi.RouteUpdates, cert)
	r.Headers["if-none-match"] = `"old"`
	if res := e.do(t, r); res.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("stale If-None-Match: %d", res.StatusCode)
	}

	// Refusals on this route carry the poll hint too.
	res = e.do(t, req(gatewayapi.RouteUpdates, e.certs["sat-off"]))
	wantError(t, res, 403, gatewayapi.CodeDisabled)
	poll(res)

	// A corrupt version is our fault, not a redirect to a made-up key.
	e.items.Put(t, records.Updates("acme", "sat-2"), records.UpdatesState{Version: "../sat-1/x"})
	wantError(t, e.do(t, req(gatewayapi.RouteUpdates, e.certs["sat-2"])), 500, gatewayapi.CodeInternal)
}

// TestInternalErrors: a failing dependency is a 500 "internal" without its
// text, logged once with the request id.
func TestInternalErrors(t *testing.T) {
	secret := "arn:aws:dynamodb:eu-central-1:123456789012:table/secret throttled"
	for name, breakIt := range map[string]func(e *env){
		"ledger write": func(e *env) {
			e.db.putItem = func(context.Context, *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
				return nil, errors.New(secret)
			}
		},
		"ledger read": func(e *env) {
			e.db.getItem = func(context.Context, *dynamodb.GetItemInput) (*dynamodb.GetItemOutput, error) {
				return nil, errors.New(secret)
			}
		},
		"signer": func(e *env) {
			e.signer.put = func(context.Context, *s3.PutObjectInput, ...func(*s3.PresignOptions)) (*v4.PresignedHTTPRequest, error) {
				return nil, errors.New(secret)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			breakIt(e)
			r := presignReq(e.certs["sat-1"], presignBody(batchA, 10, shaA))
			if name == "ledger read" {
				r = statusReq(batchA, e.certs["sat-1"])
			}
			r.RequestContext.RequestID = "req-500"
			res := e.do(t, r)
			wantError(t, res, 500, gatewayapi.CodeInternal)
			if strings.Contains(res.Body, "secret") || res.Headers[gatewayapi.HeaderRequestID] != "req-500" {
				t.Errorf("answer %v %q", res.Headers, res.Body)
			}
			lines := strings.Split(strings.TrimSpace(e.logs.String()), "\n")
			if len(lines) != 1 {
				t.Fatalf("%d log lines: %s", len(lines), e.logs)
			}
			var line map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
				t.Fatal(err)
			}
			if line["level"] != "ERROR" || line["requestId"] != "req-500" || !strings.Contains(line["err"].(string), "secret") || line["satellite"] != "sat-1" {
				t.Errorf("log line %v", line)
			}
		})
	}
}

// TestRequestIDWithoutAPIGateway: a request without an id gets one, so its
// answer and log line still match.
func TestRequestIDWithoutAPIGateway(t *testing.T) {
	e := newEnv(t)
	r := req(gatewayapi.RoutePing, "")
	r.RequestContext.RequestID = ""
	res := e.do(t, r)
	id := res.Headers[gatewayapi.HeaderRequestID]
	if !strings.HasPrefix(id, "local-") || !strings.Contains(e.logs.String(), id) {
		t.Fatalf("request id %q, log %s", id, e.logs)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	e := newEnv(t)
	for name, cfg := range map[string]api.Config{
		"no table":          {Bucket: "b"},
		"no bucket":         {Table: "t"},
		"poll under 1s":     {Table: "t", Bucket: "b", PollInterval: time.Millisecond},
		"expiry over 7d":    {Table: "t", Bucket: "b", PresignExpiry: 8 * 24 * time.Hour},
		"negative expiry":   {Table: "t", Bucket: "b", PresignExpiry: -time.Minute},
		"negative interval": {Table: "t", Bucket: "b", PollInterval: -time.Minute},
	} {
		if _, err := api.New(cfg, nil, e.db, e.signer); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func ledger(t *testing.T, e *env, key records.Key) records.BatchEntry {
	t.Helper()
	var b records.BatchEntry
	if err := attributevalue.UnmarshalMap(e.items.Get(key), &b); err != nil {
		t.Fatal(err)
	}
	return b
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
