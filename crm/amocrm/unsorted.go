package amocrm

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/phone"
)

// An Unsorted entry's contact is hidden from contact search and lists
// until the entry is accepted (amoCRM's Unsorted API documentation; the
// contact carries is_unsorted, see the official PHP SDK's ContactModel),
// and the Unsorted list has no search (its filters are uid, category and
// pipeline_id only: SDK UnsortedFilter; amocrm-api-php issue #303 asks in
// vain how to find an entry by phone). So the adapter names the client in
// the entry's source_uid, which the list returns: a hash of the E.164
// phone and one of the first messenger identity, never the values
// themselves.

// unsortedKeys returns the "p…" and "i…" keys of a client ("p0"/"i0" for
// none).
func (c *Client) unsortedKeys(phones []string, ids []crm.Identity) (pk, ik string) {
	pk, ik = "p0", "i0"
	for _, p := range phones {
		if n, err := phone.Parse(p, c.phoneOpt); err == nil {
			pk = phoneKey(n.E164())
			break
		}
	}
	if len(ids) > 0 {
		ik = identityKey(ids[0])
	}
	return pk, ik
}

func phoneKey(e164 string) string { return "p" + shortHash("phone:"+e164) }

func identityKey(id crm.Identity) string {
	return "i" + shortHash("identity:"+strings.ToLower(id.Kind)+":"+id.Value)
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte("crmbridge/amocrm:" + s))
	return hex.EncodeToString(h[:8])
}

// newSourceUID returns a unique source_uid carrying the client's keys.
func (c *Client) newSourceUID(pk, ik string) string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return c.source + "-" + pk + "-" + ik + "-" + hex.EncodeToString(r[:])
}

// unsortedIn is an entry of GET /api/v4/leads/unsorted (official PHP SDK
// BaseUnsortedModel::fromArray: uid, source_uid, category, pipeline_id,
// _embedded.leads and _embedded.contacts).
type unsortedIn struct {
	UID        string `json:"uid"`
	SourceUID  string `json:"source_uid"`
	Category   string `json:"category"`
	PipelineID int    `json:"pipeline_id"`
	Embedded   struct {
		Leads    []idRef `json:"leads"`
		Contacts []idRef `json:"contacts"`
	} `json:"_embedded"`
}

// unsortedEntries reads the pending form entries (every page), of one
// pipeline when pipeline is not 0.
func (c *Client) unsortedEntries(ctx context.Context, op string, pipeline int) ([]unsortedIn, error) {
	q := url.Values{"filter[category][]": {"forms"}}
	if pipeline != 0 {
		q.Set("filter[pipeline_id]", strconv.Itoa(pipeline))
	}
	return listAll[unsortedIn](ctx, c, op, "/api/v4/leads/unsorted", q, "unsorted", maxSearchPages)
}

// findUnsorted finds the clients this adapter put in Unsorted whose
// source_uid carries key, and returns their contacts, confirmed by keep
// when amoCRM returns the contact itself. The entries' leads are
// remembered for ListDeals and SetResponsible.
func (c *Client) findUnsorted(ctx context.Context, op, key string, keep func(crm.Contact) bool) ([]crm.Contact, error) {
	if ps, ok := c.freshPipelines(); ok && !slices.ContainsFunc(ps, func(p crm.Pipeline) bool { _, ok := p.Unsorted(); return ok }) {
		return []crm.Contact{}, nil // no pipeline has an inbox
	}
	entries, err := c.unsortedEntries(ctx, op, 0)
	if err != nil {
		return nil, err
	}
	out := []crm.Contact{}
	for _, e := range entries {
		if !strings.Contains(e.SourceUID, "-"+key+"-") || len(e.Embedded.Contacts) == 0 {
			continue
		}
		var leads []int
		for _, l := range e.Embedded.Leads {
			leads = append(leads, l.ID)
			c.recent.putUID(l.ID, e.UID, e.PipelineID)
		}
		for _, ref := range e.Embedded.Contacts {
			in, err := c.getContact(ctx, op, ref.ID, "")
			var ct crm.Contact
			switch {
			case err == nil:
				ct = c.toContact(in)
				if !keep(ct) {
					continue
				}
			case errors.Is(err, crm.ErrNotFound):
				// Unverified whether amoCRM returns an Unsorted contact by
				// id; the key already identifies the client.
				ct = crm.Contact{ID: crm.ContactID(idStr(ref.ID))}
			default:
				return nil, err
			}
			c.recent.putContact(ref.ID, ct, leads)
			out = append(out, ct)
		}
	}
	return out, nil
}

// unsortedUID finds the uid of the entry holding lead (pipeline: the
// lead's).
func (c *Client) unsortedUID(ctx context.Context, op string, lead, pipeline int) (string, error) {
	if uid, ok := c.recent.uid(lead); ok {
		return uid, nil
	}
	entries, err := c.unsortedEntries(ctx, op, pipeline)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		for _, l := range e.Embedded.Leads {
			if l.ID == lead {
				c.recent.putUID(lead, e.UID, pipeline)
				return e.UID, nil
			}
		}
	}
	return "", nil
}

// acceptUnsorted accepts the entry holding lead into the pipeline's first
// ordinary stage with user as the accepting user
// (POST /api/v4/leads/unsorted/{uid}/accept, body user_id and status_id as
// in the Unsorted API documentation and the SDK's accept example). An
// entry already accepted or gone is not an error: the claim goes on with
// the responsible change.
func (c *Client) acceptUnsorted(ctx context.Context, op string, lead, pipeline, user int) error {
	uid, err := c.unsortedUID(ctx, op, lead, pipeline)
	if err != nil || uid == "" {
		return err
	}
	body := map[string]int{"user_id": user}
	if st, ok := c.firstOpenStage(ctx, op, pipeline); ok {
		body["status_id"] = st
	}
	path := "/api/v4/leads/unsorted/" + url.PathEscape(uid) + "/accept"
	_, err = c.do(ctx, request{op: op, method: http.MethodPost, path: path, body: body, safe: true}, nil)
	if errors.Is(err, crm.ErrNotFound) || errors.Is(err, crm.ErrInvalid) {
		// Accepted meanwhile (by a retry or an employee).
		err = nil
	}
	return err
}

// acceptKnown accepts the entry uid of a lead this Client put in Unsorted
// (or found there) without reading the lead first, as acceptUnsorted
// does, and returns the lead as the accept answer describes it: its
// pipeline and the entry's contacts (Unsorted API documentation, accept
// answer: uid, pipeline_id, _embedded leads and contacts; SDK
// AcceptUnsortedModel). An entry accepted or declined meanwhile answers
// crm.ErrNotFound or crm.ErrInvalid.
func (c *Client) acceptKnown(ctx context.Context, op string, lead int, u recentUID, user int) (leadIn, error) {
	body := map[string]int{"user_id": user}
	if st, ok := c.firstOpenStage(ctx, op, u.pipeline); ok {
		body["status_id"] = st
	}
	var out struct {
		PipelineID int `json:"pipeline_id"`
		Embedded   struct {
			Leads    []idRef `json:"leads"`
			Contacts []idRef `json:"contacts"`
		} `json:"_embedded"`
	}
	path := "/api/v4/leads/unsorted/" + url.PathEscape(u.uid) + "/accept"
	if _, err := c.do(ctx, request{op: op, method: http.MethodPost, path: path, body: body, safe: true}, &out); err != nil {
		return leadIn{}, err
	}
	if !slices.ContainsFunc(out.Embedded.Leads, func(r idRef) bool { return r.ID == lead }) {
		return leadIn{}, &Error{Op: op, Method: http.MethodPost, Path: path, Detail: "the accept answer names another lead", Err: crm.ErrNotFound}
	}
	l := leadIn{ID: lead, PipelineID: u.pipeline}
	if out.PipelineID != 0 {
		l.PipelineID = out.PipelineID
	}
	l.Embedded.Contacts = out.Embedded.Contacts
	return l, nil
}

// firstOpenStage is the first ordinary stage of a pipeline, by sort.
func (c *Client) firstOpenStage(ctx context.Context, op string, pipeline int) (int, bool) {
	ps, err := c.cachedPipelines(ctx, op)
	if err != nil {
		return 0, false
	}
	for _, p := range ps {
		if p.ID != crm.PipelineID(idStr(pipeline)) {
			continue
		}
		for _, s := range p.Stages {
			if s.Kind == crm.StageOpen {
				n, ok := parseID(string(s.ID))
				return n, ok
			}
		}
	}
	return 0, false
}
