package amocrmtest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
)

// Transport returns an http.RoundTripper that hands each request to the
// server in memory, without a connection: for tests in a testing/synctest
// bubble, where a loopback connection would stall the bubble's virtual
// clock, and for tests that need no network at all. The server behaves
// exactly as over its URL (faults, latency on the caller's clock, request
// counts); an answer lost with [Server.LoseNextAnswers] makes the round
// trip fail as a connection closed without an answer would. The Server
// must have been started outside the bubble (its listener waits on the
// network).
func (s *Server) Transport() http.RoundTripper { return memTransport{s} }

type memTransport struct{ s *Server }

func (t memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx := r.Context()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var body []byte
	if r.Body != nil {
		var err error
		body, err = io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	in := r.Clone(ctx)
	in.Body = io.NopCloser(bytes.NewReader(body))
	in.ContentLength = int64(len(body))
	in.RequestURI = r.URL.RequestURI()
	in.Host = r.URL.Host
	in.RemoteAddr = "127.0.0.1:1"
	w := &memWriter{header: http.Header{}}
	t.s.serve(w, in)
	switch {
	case w.lost:
		return nil, fmt.Errorf("amocrmtest: connection closed without an answer: %w", io.ErrUnexpectedEOF)
	case w.status == 0 && ctx.Err() != nil:
		return nil, ctx.Err()
	case w.status == 0:
		w.status = http.StatusOK
	}
	return &http.Response{
		Status:        strconv.Itoa(w.status) + " " + http.StatusText(w.status),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.header,
		Body:          io.NopCloser(bytes.NewReader(w.body.Bytes())),
		ContentLength: int64(w.body.Len()),
		Request:       r,
	}, nil
}

// memWriter records an answer; Hijack marks it lost.
type memWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
	lost   bool
}

func (w *memWriter) Header() http.Header { return w.header }

func (w *memWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *memWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

// Hijack is how serve drops an answer: the caller sees no response.
func (w *memWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.lost = true
	a, b := net.Pipe()
	b.Close()
	return a, bufio.NewReadWriter(bufio.NewReader(a), bufio.NewWriter(a)), nil
}
