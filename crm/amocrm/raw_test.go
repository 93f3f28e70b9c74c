package amocrm_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/crmbridge/crmbridge/crm/amocrm/amocrmtest"
)

func newRawRequest(t *testing.T, srv *amocrmtest.Server, method, path, body string) (*http.Request, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+srv.Token())
	return req, nil
}

func do(t *testing.T, srv *amocrmtest.Server, req *http.Request) *http.Response {
	t.Helper()
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}
