// Package fakegateway is a faithful stand-in for the cloud side of the
// gateway API (shared/wire/gatewayapi) for the satellite's tests: an mTLS
// API server that checks the satellite certificate subject, and a separate
// plain-HTTP "S3" server that takes presigned PUTs (checking Content-Length
// and x-amz-checksum-sha256), ingests them with uplink.NewReader, and serves
// downlink tarballs with Range support.
package fakegateway

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/satellite-gateway/gateway/satellite/gwclient"
	"github.com/satellite-gateway/gateway/shared/devcerts"
	"github.com/satellite-gateway/gateway/shared/wire/downlink"
	"github.com/satellite-gateway/gateway/shared/wire/gatewayapi"
	"github.com/satellite-gateway/gateway/shared/wire/uplink"
)

// Server is the fake cloud. Its fields with hooks may be set before use.
type Server struct {
	Factory string
	CA      *devcerts.CA

	API *httptest.Server // mTLS
	S3  *httptest.Server // plain HTTP, like a presigned S3 URL's host
	// S3URL is the base of presigned URLs handed out; default S3.URL. Tests
	// point it at a fault proxy.
	S3URL string

	// PendingPolls is how many status polls a fresh upload stays pending.
	PendingPolls int
	// Reject, if set, may refuse an uploaded batch as a whole (code, reason).
	Reject func(m uplink.Manifest) (code, reason string)
	// PollInterval is sent as X-Poll-Interval (seconds); default 1.
	PollInterval int
	// BreakDownloads cuts this many downlink downloads short, to exercise
	// resume.
	BreakDownloads int

	mu        sync.Mutex
	batches   map[string]*batch
	events    map[string]int // event id -> number of ingested batches holding it
	eventLog  []uplink.Event
	downlinks map[string][]byte // version -> tarball
	current   string
	S3Headers []http.Header // headers of every request the S3 server got
	Ranges    []string      // Range headers of downlink GETs
	Puts      int
	Presigns  int
}

type batch struct {
	size   int64
	sha    string
	state  gatewayapi.State
	status gatewayapi.Status
	polls  int
}

// New starts both servers. Call Close when done.
func New(factory string) (*Server, error) {
	ca, err := devcerts.NewCA(factory, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	srvCert, err := ca.Server("localhost", "127.0.0.1", "::1")
	if err != nil {
		return nil, err
	}
	s := &Server{Factory: factory, CA: ca, batches: map[string]*batch{}, events: map[string]int{}, downlinks: map[string][]byte{}, PollInterval: 1}
	mux := http.NewServeMux()
	mux.HandleFunc(gatewayapi.RoutePing, s.ping)
	mux.HandleFunc(gatewayapi.RoutePresign, s.presign)
	mux.HandleFunc(gatewayapi.RouteUploadStatus, s.status)
	mux.HandleFunc(gatewayapi.RouteUpdates, s.updates)
	s.API = httptest.NewUnstartedServer(s.auth(mux))
	s.API.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert.TLS()}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	s.API.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake errors are the point of fault tests
	s.API.StartTLS()
	s3 := http.NewServeMux()
	s3.HandleFunc("PUT /uploads/{factory}/{sat}/{file}", s.put)
	s3.HandleFunc("GET /updates/{factory}/{sat}/{file}", s.download)
	s.S3 = httptest.NewUnstartedServer(s3)
	s.S3.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.S3.Start()
	return s, nil
}

func (s *Server) s3URL() string {
	if s.S3URL != "" {
		return s.S3URL
	}
	return s.S3.URL
}

// Client returns an API client for satellite, with a fresh certificate from
// the factory CA, talking to apiURL (default the API server).
func (s *Server) Client(satellite, apiURL string) (*gwclient.Client, error) {
	leaf, err := s.ClientCert(satellite)
	if err != nil {
		return nil, err
	}
	if apiURL == "" {
		apiURL = s.API.URL
	}
	tc := &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}, RootCAs: s.CA.Pool(), MinVersion: tls.VersionTLS12}
	return gwclient.New(apiURL, gwclient.NewAPIHTTPClient(tc, 2*time.Second), gwclient.NewPlainHTTPClient())
}

// Close stops both servers.
func (s *Server) Close() {
	s.API.Close()
	s.S3.Close()
}

// ClientCert issues a satellite certificate from the factory CA: CN
// satellite, OU the factory, businessCategory dg-satellite.
func (s *Server) ClientCert(satellite string) (*devcerts.Issued, error) {
	return s.CA.Satellite(s.Factory, satellite)
}

type ctxKey struct{}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func refuse(w http.ResponseWriter, code int, c gatewayapi.ErrorCode, msg string) {
	writeJSON(w, code, gatewayapi.Error{Code: c, Message: msg})
}

// auth checks the certificate subject the way the real API does.
func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			refuse(w, http.StatusUnauthorized, gatewayapi.CodeNoCertificate, "no client certificate")
			return
		}
		c := r.TLS.PeerCertificates[0]
		if category(c) != "dg-satellite" {
			refuse(w, http.StatusForbidden, gatewayapi.CodeNotSatellite, "not a satellite certificate")
			return
		}
		if len(c.Subject.OrganizationalUnit) != 1 || c.Subject.OrganizationalUnit[0] != s.Factory {
			refuse(w, http.StatusForbidden, gatewayapi.CodeWrongFactory, "OU does not match the CA's factory")
			return
		}
		next.ServeHTTP(w, r.WithContext(contextWith(r, c.Subject.CommonName)))
	})
}

func category(c *x509.Certificate) string {
	for _, n := range c.Subject.Names {
		if n.Type.Equal(devcerts.BusinessCategoryOID) {
			if v, ok := n.Value.(string); ok {
				return v
			}
		}
	}
	return ""
}

func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, gatewayapi.Ping{Factory: s.Factory, Satellite: satelliteOf(r), Time: time.Now().UTC()})
}

func (s *Server) presign(w http.ResponseWriter, r *http.Request) {
	var req gatewayapi.PresignRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Validate() != nil {
		refuse(w, http.StatusBadRequest, gatewayapi.CodeBadRequest, "bad presign request")
		return
	}
	if req.Size > gatewayapi.MaxUploadSize {
		refuse(w, http.StatusRequestEntityTooLarge, gatewayapi.CodeTooLarge, "too large")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Presigns++
	b := s.batches[req.Batch]
	if b != nil && b.state.Final() {
		writeJSON(w, http.StatusOK, b.status)
		return
	}
	if b != nil && (b.size != req.Size || b.sha != req.SHA256) {
		refuse(w, http.StatusConflict, gatewayapi.CodeConflict, "batch id reused")
		return
	}
	if b == nil {
		b = &batch{size: req.Size, sha: req.SHA256, state: gatewayapi.StatePending}
		s.batches[req.Batch] = b
	}
	sum, _ := hex.DecodeString(req.SHA256)
	writeJSON(w, http.StatusCreated, gatewayapi.Upload{
		Batch: req.Batch, State: gatewayapi.StatePending, Method: http.MethodPut,
		URL: fmt.Sprintf("%s/uploads/%s/%s/%s.tar.gz?X-Amz-Signature=fake", s.s3URL(), s.Factory, satelliteOf(r), req.Batch),
		Headers: map[string]string{
			"Content-Length":               strconv.FormatInt(req.Size, 10),
			"x-amz-checksum-sha256":        base64.StdEncoding.EncodeToString(sum),
			"x-amz-sdk-checksum-algorithm": "SHA256",
		},
		Expires: time.Now().Add(15 * time.Minute).UTC(),
	})
}

// put is S3 taking a presigned PUT: it enforces the signed length and
// checksum, then "ingests" at once (the state turns final after
// PendingPolls status polls).
func (s *Server) put(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.S3Headers = append(s.S3Headers, r.Header.Clone())
	s.Puts++
	id := strings.TrimSuffix(r.PathValue("file"), ".tar.gz")
	b := s.batches[id]
	s.mu.Unlock()
	if b == nil {
		http.Error(w, "no such presigned key", http.StatusForbidden)
		return
	}
	if r.ContentLength != b.size {
		http.Error(w, "Content-Length does not match the signature", http.StatusForbidden)
		return
	}
	sum, _ := hex.DecodeString(b.sha)
	if r.Header.Get("x-amz-checksum-sha256") != base64.StdEncoding.EncodeToString(sum) || r.Header.Get("x-amz-sdk-checksum-algorithm") != "SHA256" {
		http.Error(w, "checksum header does not match the signature", http.StatusForbidden)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client went away
	}
	if got := sha256.Sum256(body); hex.EncodeToString(got[:]) != b.sha {
		http.Error(w, "BadDigest", http.StatusBadRequest)
		return
	}
	s.ingest(id, body)
	w.WriteHeader(http.StatusOK)
}

func (s *Server) ingest(id string, body []byte) {
	rd := uplink.NewReader(bytes.NewReader(body), uplink.Limits{})
	var evs []uplink.Event
	st := gatewayapi.Status{Batch: id, State: gatewayapi.StateIngested}
	var rerr error
	for {
		it, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			rerr = err
			break
		}
		switch it.Kind {
		case uplink.KindEvent:
			evs = append(evs, it.Event)
		case uplink.KindRejected:
			st.RejectedEvents++
		}
	}
	sum := rd.Summary()
	st.Seq = sum.Manifest.Seq
	if rerr != nil {
		st.State, st.Code, st.Reason = gatewayapi.StateRejected, string(uplink.CodeOf(rerr)), rerr.Error()
	} else if s.Reject != nil {
		if code, reason := s.Reject(sum.Manifest); code != "" {
			st.State, st.Code, st.Reason = gatewayapi.StateRejected, code, reason
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.batches[id]
	if b.state.Final() {
		return // a repeated upload of the same batch: idempotent
	}
	if st.State == gatewayapi.StateIngested {
		st.Events = len(evs)
		for _, e := range evs {
			s.events[e.ID]++
			s.eventLog = append(s.eventLog, e)
		}
	}
	st.Updated = time.Now().UTC()
	b.status = st
	b.state = st.State
	b.polls = 0
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.batches[r.PathValue("batch")]
	if b == nil {
		refuse(w, http.StatusNotFound, gatewayapi.CodeNotFound, "no such batch")
		return
	}
	if b.state.Final() && b.polls < s.PendingPolls {
		b.polls++
		writeJSON(w, http.StatusOK, gatewayapi.Status{Batch: r.PathValue("batch"), State: gatewayapi.StatePending})
		return
	}
	if !b.state.Final() {
		writeJSON(w, http.StatusOK, gatewayapi.Status{Batch: r.PathValue("batch"), State: gatewayapi.StatePending})
		return
	}
	writeJSON(w, http.StatusOK, b.status)
}

func (s *Server) updates(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	cur := s.current
	iv := s.PollInterval
	s.mu.Unlock()
	w.Header().Set(gatewayapi.HeaderPollInterval, strconv.Itoa(iv))
	switch {
	case cur == "":
		w.WriteHeader(http.StatusNoContent)
	case gatewayapi.MatchETag(r.Header.Get("If-None-Match"), cur):
		w.Header().Set("ETag", gatewayapi.FormatETag(cur))
		w.WriteHeader(http.StatusNotModified)
	default:
		w.Header().Set("ETag", gatewayapi.FormatETag(cur))
		w.Header().Set("Location", fmt.Sprintf("%s/updates/%s/%s/%s.tar.gz?X-Amz-Signature=fake", s.s3URL(), s.Factory, satelliteOf(r), cur))
		w.WriteHeader(http.StatusTemporaryRedirect)
	}
}

func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.S3Headers = append(s.S3Headers, r.Header.Clone())
	s.Ranges = append(s.Ranges, r.Header.Get("Range"))
	body := s.downlinks[strings.TrimSuffix(r.PathValue("file"), ".tar.gz")]
	broken := s.BreakDownloads > 0
	if broken {
		s.BreakDownloads--
	}
	s.mu.Unlock()
	if body == nil {
		http.Error(w, "NoSuchKey", http.StatusNotFound)
		return
	}
	if broken {
		// Send the headers of a full answer and half the body, then drop
		// the connection: what a reset mid-download looks like.
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body[:len(body)/2])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	http.ServeContent(w, r, "downlink.tar.gz", time.Unix(0, 0), bytes.NewReader(body))
}

// Publish makes a downlink the satellite's current one and returns its
// version.
func (s *Server) Publish(satellite string, cfg downlink.Config, tuf downlink.TUF) (string, error) {
	b, err := downlink.Build(s.Factory, satellite, cfg, tuf)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := b.WriteTarball(&buf); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.downlinks[b.Manifest.Version] = buf.Bytes()
	s.current = b.Manifest.Version
	return b.Manifest.Version, nil
}

// EventCounts is, per event id, how many distinct ingested batches held it.
func (s *Server) EventCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.events))
	for k, v := range s.events {
		out[k] = v
	}
	return out
}

// Events lists the ingested events in ingest order.
func (s *Server) Events() []uplink.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]uplink.Event(nil), s.eventLog...)
}

// BatchState is the state of a batch, "" if unknown.
func (s *Server) BatchState(id string) gatewayapi.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.batches[id]; b != nil {
		return b.state
	}
	return ""
}

// Seqs lists the seq of every ingested batch.
func (s *Server) Seqs() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []uint64
	for _, b := range s.batches {
		if b.state == gatewayapi.StateIngested {
			out = append(out, b.status.Seq)
		}
	}
	return out
}

// Counters returns the numbers of presigns and PUTs seen.
func (s *Server) Counters() (presigns, puts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Presigns, s.Puts
}

// S3Requests returns the headers of every request the S3 server got.
func (s *Server) S3Requests() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]http.Header(nil), s.S3Headers...)
}
