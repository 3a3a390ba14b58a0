// Package faultproxy is a local TCP proxy for network fault tests: it passes
// connections through, or drops them, stalls them, or resets them part way,
// switchable while running.
package faultproxy

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is what the proxy does with connections.
type Mode int32

// The modes.
const (
	Pass  Mode = iota // forward both ways
	Drop              // accept and close at once
	Stall             // accept and never forward nor answer
	Reset             // forward, then reset the connection after ResetAfter bytes from the server
)

// Proxy forwards 127.0.0.1:<port> to a target address.
type Proxy struct {
	ln     net.Listener
	target string
	mode   atomic.Int32
	// ResetAfter is the bytes from the server let through before a reset.
	ResetAfter atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
	Count atomic.Int64 // connections accepted
}

// New starts a proxy to target.
func New(target string) (*Proxy, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.ResetAfter.Store(100)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listening address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetMode switches the mode for new connections and cuts existing ones, so
// a fault applies at once rather than only to the next connection.
func (p *Proxy) SetMode(m Mode) {
	p.mode.Store(int32(m))
	p.mu.Lock()
	for c := range p.conns {
		if m != Pass {
			_ = c.Close()
		}
	}
	p.mu.Unlock()
}

// Close stops the proxy and every connection.
func (p *Proxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.Count.Add(1)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c)
		}()
	}
}

func (p *Proxy) handle(c net.Conn) {
	p.track(c, true)
	defer p.track(c, false)
	defer c.Close()
	switch Mode(p.mode.Load()) {
	case Drop:
		return
	case Stall:
		_, _ = io.Copy(io.Discard, c) // until the client gives up or SetMode cuts it
		return
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	up, err := d.DialContext(context.Background(), "tcp", p.target)
	if err != nil {
		return
	}
	p.track(up, true)
	defer p.track(up, false)
	defer up.Close()
	reset := Mode(p.mode.Load()) == Reset
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(up, c)
		done <- struct{}{}
	}()
	go func() {
		var src io.Reader = up
		if reset {
			src = io.LimitReader(up, p.ResetAfter.Load())
		}
		_, _ = io.Copy(c, src)
		if reset {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // close with RST
			}
		}
		done <- struct{}{}
	}()
	<-done
}
