// Package gwclient is the satellite's client of the gateway API
// (shared/wire/gatewayapi): mutual TLS from certificate files, typed calls,
// and a separate plain HTTP client for presigned S3 URLs, which live on
// another host, need no client certificate and must not see API headers.
package gwclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/satellite-gateway/gateway/shared/wire/gatewayapi"
)

// TLSConfig builds the mTLS client configuration from PEM files. The client
// certificate is re-read when its file changes, so a renewed certificate is
// used at the next connection without a restart. caFile may be empty to use
// the system roots (the API's public certificate).
func TLSConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	kp := &keyPair{cert: certFile, key: keyFile}
	if _, err := kp.get(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() }}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

type keyPair struct {
	cert, key string
	mu        sync.Mutex
	mtime     time.Time
	cur       *tls.Certificate
}

func (k *keyPair) get() (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	fi, err := os.Stat(k.cert)
	if err != nil {
		if k.cur != nil {
			return k.cur, nil
		}
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	if k.cur != nil && fi.ModTime().Equal(k.mtime) {
		return k.cur, nil
	}
	c, err := tls.LoadX509KeyPair(k.cert, k.key)
	if err != nil {
		if k.cur != nil {
			return k.cur, nil // a half-written renewal: keep the old one
		}
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	k.cur, k.mtime = &c, fi.ModTime()
	return k.cur, nil
}

// NewAPIHTTPClient is an HTTP client for the API: mTLS, and redirects not
// followed, because the redirect of GET /updates goes to S3 and is fetched
// with the plain client instead.
func NewAPIHTTPClient(tlsCfg *tls.Config, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	return &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// NewPlainHTTPClient is an HTTP client for presigned URLs: no client
// certificate. It has no overall timeout (uploads and downloads are large);
// callers bound them with contexts.
func NewPlainHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = time.Minute
	return &http.Client{Transport: tr}
}

// Client calls the gateway API.
type Client struct {
	base  *url.URL
	api   *http.Client
	plain *http.Client
	agent string
}

// New returns a client of the API at base (https://host[/prefix]). api
// carries the client certificate; plain is used for presigned URLs.
func New(base string, api, plain *http.Client) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("gateway URL %q: want https://host", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &Client{base: u, api: api, plain: plain, agent: "satellite-gateway/1"}, nil
}

// HTTPError is an answer the client did not expect: its status and, when the
// body was an API refusal, the refusal.
type HTTPError struct {
	Status int
	API    gatewayapi.Error
}

func (e *HTTPError) Error() string {
	if e.API.Code != "" {
		return fmt.Sprintf("HTTP %d: %s: %s", e.Status, e.API.Code, e.API.Message)
	}
	return fmt.Sprintf("HTTP %d", e.Status)
}

// StatusOf returns the HTTP status of an *HTTPError in err's chain, or 0.
func StatusOf(err error) int {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

func (c *Client) url(path string) string { return c.base.String() + path }

func (c *Client) do(ctx context.Context, method, path string, body any, out any, ok ...int) (int, http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path), rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", c.agent)
	resp, err := c.api.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	for _, s := range ok {
		if resp.StatusCode == s {
			if out != nil {
				if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
					return resp.StatusCode, resp.Header, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
				}
			}
			return resp.StatusCode, resp.Header, nil
		}
	}
	return resp.StatusCode, resp.Header, fmt.Errorf("%s %s: %w", method, path, readError(resp))
}

func readError(resp *http.Response) error {
	he := &HTTPError{Status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = json.Unmarshal(b, &he.API)
	return he
}

// Presign asks for a presigned upload of a sealed batch. Exactly one of the
// results is set: an Upload (201, still to upload) or a final Status (200,
// already ingested or rejected).
func (c *Client) Presign(ctx context.Context, r gatewayapi.PresignRequest) (*gatewayapi.Upload, *gatewayapi.Status, error) {
	var raw json.RawMessage
	code, _, err := c.do(ctx, http.MethodPost, gatewayapi.PathUploads, r, &raw, http.StatusCreated, http.StatusOK)
	if err != nil {
		return nil, nil, err
	}
	if code == http.StatusOK {
		var st gatewayapi.Status
		if err := json.Unmarshal(raw, &st); err != nil {
			return nil, nil, fmt.Errorf("presign: decode status: %w", err)
		}
		return nil, &st, nil
	}
	var up gatewayapi.Upload
	if err := json.Unmarshal(raw, &up); err != nil {
		return nil, nil, fmt.Errorf("presign: decode upload: %w", err)
	}
	if up.URL == "" {
		return nil, nil, errors.New("presign: answer without a URL")
	}
	return &up, nil, nil
}

// UploadStatus is GET /updates/uploads/{batch}. A batch the API never
// issued a URL for is an *HTTPError with status 404.
func (c *Client) UploadStatus(ctx context.Context, batch string) (*gatewayapi.Status, error) {
	var st gatewayapi.Status
	if _, _, err := c.do(ctx, http.MethodGet, gatewayapi.UploadPath(batch), nil, &st, http.StatusOK); err != nil {
		return nil, err
	}
	return &st, nil
}

// Put uploads size bytes from body to a presigned URL with exactly the
// headers it was signed with. body is re-opened for each attempt by the
// caller; Put makes one attempt.
func (c *Client) Put(ctx context.Context, up *gatewayapi.Upload, body io.Reader, size int64) error {
	method := up.Method
	if method == "" {
		method = http.MethodPut
	}
	req, err := http.NewRequestWithContext(ctx, method, up.URL, body)
	if err != nil {
		return err
	}
	req.ContentLength = size
	for k, v := range up.Headers {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length":
			// net/http writes it from ContentLength; a signed length that
			// differs from the body would be refused by S3 anyway.
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n != size {
				return fmt.Errorf("presigned Content-Length %q, body is %d bytes", v, size)
			}
		case "Host":
			req.Host = v
		default:
			req.Header.Set(k, v)
		}
	}
	if size == 0 {
		req.Body = http.NoBody
	}
	resp, err := c.plain.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("upload: %w", readError(resp))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return nil
}

// Updates is the answer of GET /updates.
type Updates struct {
	Status       int           // 204, 304 or 307
	Version      string        // from the ETag, unquoted
	Location     string        // 307: the presigned URL of the tarball
	PollInterval time.Duration // the server's hint; 0 if absent
}

// Updates asks for the downlink newer than current ("" for none).
func (c *Client) Updates(ctx context.Context, current string) (*Updates, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(gatewayapi.PathUpdates), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", c.agent)
	if current != "" {
		req.Header.Set("If-None-Match", gatewayapi.FormatETag(current))
	}
	resp, err := c.api.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	u := &Updates{Status: resp.StatusCode}
	if s, err := strconv.Atoi(resp.Header.Get(gatewayapi.HeaderPollInterval)); err == nil && s > 0 {
		u.PollInterval = time.Duration(s) * time.Second
	}
	if et := resp.Header.Get("ETag"); et != "" {
		if v, err := strconv.Unquote(strings.TrimPrefix(et, "W/")); err == nil {
			u.Version = v
		}
	}
	switch resp.StatusCode {
	case http.StatusNoContent, http.StatusNotModified:
		return u, nil
	case http.StatusTemporaryRedirect, http.StatusFound, http.StatusSeeOther:
		loc, err := resp.Location()
		if err != nil {
			return u, fmt.Errorf("GET /updates: redirect without a Location: %w", err)
		}
		u.Location = loc.String()
		u.Status = http.StatusTemporaryRedirect
		return u, nil
	}
	return u, fmt.Errorf("GET /updates: %w", readError(resp))
}

// Plain is the client for presigned URLs.
func (c *Client) Plain() *http.Client { return c.plain }
