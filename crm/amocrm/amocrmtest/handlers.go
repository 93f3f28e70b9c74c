package amocrmtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

const (
	accountID = 31415926
	maxBatch  = 50
	maxLimit  = 250
)

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("POST /oauth2/access_token", s.handleToken)
	m.HandleFunc("GET /oauth2/account/current/subdomain", s.handleSubdomain)
	m.HandleFunc("GET /api/v4/leads/unsorted", s.handleListUnsorted)
	m.HandleFunc("GET /api/v4/account", s.handleAccount)
	m.HandleFunc("GET /api/v4/users", s.handleUsers)
	m.HandleFunc("GET /api/v4/leads/pipelines", s.handlePipelines)

	m.HandleFunc("GET /api/v4/contacts", s.handleListContacts)
	m.HandleFunc("GET /api/v4/contacts/{id}", s.handleGetContact)
	m.HandleFunc("POST /api/v4/contacts", s.handleCreateContacts)
	m.HandleFunc("PATCH /api/v4/contacts", s.handlePatchContacts)
	m.HandleFunc("PATCH /api/v4/contacts/{id}", s.handlePatchContact)

	m.HandleFunc("GET /api/v4/leads", s.handleListLeads)
	m.HandleFunc("GET /api/v4/leads/{id}", s.handleGetLead)
	m.HandleFunc("POST /api/v4/leads", s.handleCreateLeads)
	m.HandleFunc("PATCH /api/v4/leads", s.handlePatchLeads)
	m.HandleFunc("PATCH /api/v4/leads/{id}", s.handlePatchLead)
	m.HandleFunc("POST /api/v4/leads/complex", s.handleComplex)
	m.HandleFunc("POST /api/v4/leads/unsorted/forms", s.handleUnsortedForms)
	m.HandleFunc("POST /api/v4/leads/unsorted/{uid}/accept", s.handleAccept)

	m.HandleFunc("GET /api/v4/tasks", s.handleListTasks)
	m.HandleFunc("GET /api/v4/tasks/{id}", s.handleGetTask)
	m.HandleFunc("POST /api/v4/tasks", s.handleCreateTasks)
	m.HandleFunc("PATCH /api/v4/tasks", s.handlePatchTasks)
	m.HandleFunc("PATCH /api/v4/tasks/{id}", s.handlePatchTask)

	m.HandleFunc("POST /api/v4/leads/{id}/notes", s.handleNotes("leads"))
	m.HandleFunc("POST /api/v4/contacts/{id}/notes", s.handleNotes("contacts"))
}

// ---- seeding and snapshots ----

// AddContact stores a contact as if typed in the CRM and returns its ID.
// Phones go into the PHONE field verbatim; Fields keys are field codes
// (or "id:<n>"); ID, Leads and UpdatedAt are ignored.
func (s *Server) AddContact(c Contact) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().Unix()
	st := &contact{id: s.newID(), name: c.Name, responsible: c.Responsible, unsorted: c.Unsorted, createdAt: now, updatedAt: now}
	if len(c.Phones) > 0 {
		f := cf{id: systemFields["PHONE"].id, code: "PHONE", name: systemFields["PHONE"].name, typ: "multitext"}
		for _, p := range c.Phones {
			f.values = append(f.values, cfVal{value: p, enumCode: "WORK", enumID: enumIDs["WORK"]})
		}
		st.fields = append(st.fields, f)
	}
	keys := make([]string, 0, len(c.Fields))
	for k := range c.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "PHONE" && len(c.Phones) > 0 {
			continue
		}
		f := cf{code: k, typ: "multitext"}
		if idStr, ok := strings.CutPrefix(k, "id:"); ok {
			id, err := strconv.Atoi(idStr)
			if err != nil {
				panic("amocrmtest: AddContact: bad field key " + k)
			}
			f = cf{id: id, typ: "text", name: "Field " + idStr}
		} else if sf, ok := systemFields[k]; ok {
			f.id, f.name = sf.id, sf.name
		}
		for _, v := range c.Fields[k] {
			f.values = append(f.values, cfVal{value: v})
		}
		st.fields = append(st.fields, f)
	}
	s.contacts[st.id] = st
	return st.id
}

// Contact returns a stored contact.
func (s *Server) Contact(id int) (Contact, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.contacts[id]
	if !ok {
		return Contact{}, false
	}
	return c.snapshot(), true
}

// Contacts returns every stored contact, by ID.
func (s *Server) Contacts() []Contact {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Contact, 0, len(s.contacts))
	for _, id := range sortedKeys(s.contacts) {
		out = append(out, s.contacts[id].snapshot())
	}
	return out
}

// Lead returns a stored lead.
func (s *Server) Lead(id int) (Lead, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.leads[id]
	if !ok {
		return Lead{}, false
	}
	return l.snapshot(), true
}

// Leads returns every stored lead, by ID.
func (s *Server) Leads() []Lead {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Lead, 0, len(s.leads))
	for _, id := range sortedKeys(s.leads) {
		out = append(out, s.leads[id].snapshot())
	}
	return out
}

// Task returns a stored task.
func (s *Server) Task(id int) (Task, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[id]
	if !ok {
		return Task{}, false
	}
	return t.Task, true
}

// Tasks returns every stored task, by ID.
func (s *Server) Tasks() []Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Task, 0, len(s.tasks))
	for _, id := range sortedKeys(s.tasks) {
		out = append(out, s.tasks[id].Task)
	}
	return out
}

// Notes returns the stored notes in creation order.
func (s *Server) Notes() []Note {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.notes)
}

// Unsorted returns the Unsorted entries, by creation order of their leads.
func (s *Server) Unsorted() []UnsortedEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]UnsortedEntry, 0, len(s.unsorted))
	for _, u := range s.unsorted {
		e := u.UnsortedEntry
		e.Contacts = slices.Clone(e.Contacts)
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Lead < out[j].Lead })
	return out
}

func sortedKeys[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (s *Server) newID() int {
	s.nextID++
	return s.nextID
}

// ---- helpers (callers hold s.mu where state is read) ----

func (s *Server) userExists(id int) bool {
	return slices.ContainsFunc(s.users, func(u User) bool { return u.ID == id })
}

func (s *Server) pipeline(id int) (Pipeline, bool) {
	for _, p := range s.pipelines {
		if p.ID == id {
			return p, true
		}
	}
	return Pipeline{}, false
}

func (s *Server) mainPipeline() Pipeline {
	for _, p := range s.pipelines {
		if p.Main {
			return p
		}
	}
	return s.pipelines[0]
}

func statusOf(p Pipeline, id int) (Status, bool) {
	for _, st := range p.Statuses {
		if st.ID == id {
			return st, true
		}
	}
	return Status{}, false
}

func unsortedStatus(p Pipeline) (Status, bool) {
	for _, st := range p.Statuses {
		if st.Type == 1 {
			return st, true
		}
	}
	return Status{}, false
}

func firstOpenStatus(p Pipeline) Status {
	for _, st := range p.Statuses {
		if st.Type == 0 && st.ID != WonStatusID && st.ID != LostStatusID {
			return st
		}
	}
	return p.Statuses[0]
}

func (s *Server) href(path string) map[string]any {
	return map[string]any{"self": map[string]string{"href": s.srv.URL + path}}
}

func reqID(given string, i int) string {
	if given != "" {
		return given
	}
	return strconv.Itoa(i)
}

// decodeArray reads a JSON array body of at most maxBatch items.
func decodeArray[T any](w http.ResponseWriter, r *http.Request) ([]T, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		badRequest(w, "Invalid request body")
		return nil, false
	}
	var items []T
	if err := json.Unmarshal(body, &items); err != nil {
		badRequest(w, "Invalid request body: expected a JSON array")
		return nil, false
	}
	if len(items) == 0 {
		badRequest(w, "Empty request")
		return nil, false
	}
	if len(items) > maxBatch {
		writeValidation(w, []vErr{{requestID: "0", code: "TooManyItems", path: "", detail: fmt.Sprintf("no more than %d items per request", maxBatch)}})
		return nil, false
	}
	return items, true
}

func decodeObject[T any](w http.ResponseWriter, r *http.Request) (T, bool) {
	var v T
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil || json.Unmarshal(body, &v) != nil {
		badRequest(w, "Invalid request body")
		return v, false
	}
	return v, true
}

func pathID(r *http.Request) (int, bool) {
	id, err := strconv.Atoi(r.PathValue("id"))
	return id, err == nil && id > 0
}

// pageParams parses page and limit; ok false after writing a 400.
func pageParams(w http.ResponseWriter, q url.Values) (page, limit int, ok bool) {
	page, limit = 1, 50
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeValidation(w, []vErr{{requestID: "0", code: "InvalidType", path: "page", detail: "page must be a positive integer"}})
			return 0, 0, false
		}
		page = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			writeValidation(w, []vErr{{requestID: "0", code: "InvalidRange", path: "limit", detail: "limit must be between 1 and 250"}})
			return 0, 0, false
		}
		limit = n
	}
	return page, limit, true
}

// writePage writes one page of items under _embedded[name], or 204.
func (s *Server) writePage(w http.ResponseWriter, r *http.Request, name string, items []map[string]any, page, limit int) {
	from := (page - 1) * limit
	if from >= len(items) {
		noContent(w)
		return
	}
	to := min(from+limit, len(items))
	links := map[string]any{"self": map[string]string{"href": pageHref(s.srv.URL, r, page, limit)}}
	if to < len(items) {
		links["next"] = map[string]string{"href": pageHref(s.srv.URL, r, page+1, limit)}
	}
	if page > 1 {
		links["prev"] = map[string]string{"href": pageHref(s.srv.URL, r, page-1, limit)}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"_page":     page,
		"_links":    links,
		"_embedded": map[string]any{name: items[from:to]},
	})
}

func pageHref(base string, r *http.Request, page, limit int) string {
	q := r.URL.Query()
	q.Set("page", strconv.Itoa(page))
	q.Set("limit", strconv.Itoa(limit))
	return base + r.URL.Path + "?" + q.Encode()
}

// idFilter collects filter[id], filter[id][], filter[id][n] values.
func idFilter(q url.Values, name string) (map[int]bool, bool) {
	var out map[int]bool
	for k, vs := range q {
		if k != "filter["+name+"]" && !strings.HasPrefix(k, "filter["+name+"][") {
			continue
		}
		if out == nil {
			out = map[int]bool{}
		}
		for _, v := range vs {
			for _, part := range strings.Split(v, ",") {
				if n, err := strconv.Atoi(strings.TrimSpace(part)); err == nil {
					out[n] = true
				}
			}
		}
	}
	return out, out != nil
}

func hasWith(q url.Values, what string) bool {
	for _, v := range strings.Split(q.Get("with"), ",") {
		if strings.TrimSpace(v) == what {
			return true
		}
	}
	return false
}

// ---- OAuth ----

// handleToken is POST /oauth2/access_token. Both grants of amoCRM's
// OAuth documentation (amocrm.ru/developers/content/oauth/step-by-step;
// developers.kommo.com/reference/get-token) take client_id,
// client_secret, grant_type, redirect_uri and the code or refresh token,
// as JSON (the documentation's examples) or form-encoded (the official
// PHP SDK's league/oauth2-client). Answer: token_type, expires_in,
// access_token (a JWT whose api_domain claim names the shared API host,
// read by the SDK's getSharedApiDomain), refresh_token. Refresh tokens
// and codes are single-use; a spent one gets 401 "Token has been revoked"
// (amocrm-api-php issues #123 and #315).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		GrantType    string `json:"grant_type"`
		RefreshToken string `json:"refresh_token"`
		Code         string `json:"code"`
		RedirectURI  string `json:"redirect_uri"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		f, err := url.ParseQuery(string(body))
		if err != nil {
			oauthProblem(w, http.StatusBadRequest, "Invalid request body")
			return
		}
		req.ClientID, req.ClientSecret, req.GrantType = f.Get("client_id"), f.Get("client_secret"), f.Get("grant_type")
		req.RefreshToken, req.Code, req.RedirectURI = f.Get("refresh_token"), f.Get("code"), f.Get("redirect_uri")
	} else if json.Unmarshal(body, &req) != nil {
		oauthProblem(w, http.StatusBadRequest, "Invalid request body")
		return
	}
	if req.ClientID != s.opt.ClientID || req.ClientSecret != s.opt.ClientSecret {
		oauthProblem(w, http.StatusUnauthorized, "Client authentication failed")
		return
	}
	if req.RedirectURI != s.opt.RedirectURI {
		// The registered redirect URI must be repeated exactly (OAuth 2.0,
		// RFC 6749 section 4.1.3; amoCRM's step-by-step guide lists
		// redirect_uri as required in both grants).
		oauthProblem(w, http.StatusBadRequest, "Redirect URI mismatch")
		return
	}
	s.mu.Lock()
	switch req.GrantType {
	case "refresh_token":
		if req.RefreshToken == "" || req.RefreshToken != s.refresh {
			s.mu.Unlock()
			oauthProblem(w, http.StatusUnauthorized, "Token has been revoked")
			return
		}
	case "authorization_code":
		if !s.codes[req.Code] {
			s.mu.Unlock()
			oauthProblem(w, http.StatusBadRequest, "Authorization code has been revoked")
			return
		}
		delete(s.codes, req.Code)
	default:
		s.mu.Unlock()
		oauthProblem(w, http.StatusBadRequest, "Unsupported grant type")
		return
	}
	s.issued++
	access := jwtLike(map[string]any{"jti": fmt.Sprintf("amocrm-test-access-%d", s.issued), "api_domain": s.sharedHost(r)})
	s.refresh = fmt.Sprintf("amocrm-test-refresh-%d", s.issued)
	s.access[access] = s.now().Add(s.opt.AccessTTL)
	refresh := s.refresh
	now := s.now().Unix()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":    "Bearer",
		"expires_in":    int(s.opt.AccessTTL.Seconds()),
		"access_token":  access,
		"refresh_token": refresh,
		"server_time":   now,
	})
}

// sharedHost is the fake's stand-in for amoCRM's shared API domain: the
// listening address; s.mu held.
func (s *Server) sharedHost(r *http.Request) string {
	u, _ := url.Parse(s.srv.URL)
	return u.Host
}

// jwtLike builds an unsigned token shaped like a JWT with the claims.
func jwtLike(claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "none", "typ": "JWT"}) + "." + enc(claims) + ".fake"
}

// handleSubdomain is GET /oauth2/account/current/subdomain on the shared
// API domain, authenticated by the X-Refresh-Token header; it answers the
// account's id, subdomain, domain and top_level_domain (official PHP SDK:
// AmoCRMOAuth::getAccountDomainByRefreshToken, AccountDomainModel).
func (s *Server) handleSubdomain(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ok := r.Header.Get("X-Refresh-Token") != "" && r.Header.Get("X-Refresh-Token") == s.refresh
	host := s.host
	s.mu.Unlock()
	if !ok {
		oauthProblem(w, http.StatusUnauthorized, "Token has been revoked")
		return
	}
	if host == "" {
		u, _ := url.Parse(s.srv.URL)
		host = u.Host
	}
	sub, _, _ := strings.Cut(host, ".")
	writeJSON(w, http.StatusOK, map[string]any{"id": accountID, "subdomain": sub, "domain": host, "top_level_domain": "ru"})
}

func oauthProblem(w http.ResponseWriter, status int, hint string) {
	b, _ := json.Marshal(map[string]any{
		"hint":   hint,
		"title":  "Некорректный запрос",
		"type":   "https://developers.amocrm.ru/v3/errors/OAuthProblemJson",
		"status": status,
		"detail": "В запросе отсутствует ряд параметров или параметры невалидны",
	})
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// ---- account, users, pipelines ----

func (s *Server) handleAccount(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	cur := s.users[0].ID
	s.mu.Unlock()
	out := map[string]any{
		"id": accountID, "name": "Test account", "subdomain": "test",
		"current_user_id": cur, "country": "RU", "currency": "RUB",
		"is_unsorted_on": true, "_links": s.href("/api/v4/account"),
	}
	// with=is_api_filter_enabled (official PHP SDK AccountModel).
	if hasWith(r.URL.Query(), "is_api_filter_enabled") {
		out["is_api_filter_enabled"] = s.opt.APIFilter
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleUsers(w http.ResponseWriter, r *http.Request) {
	page, limit, ok := pageParams(w, r.URL.Query())
	if !ok {
		return
	}
	s.mu.Lock()
	items := make([]map[string]any, 0, len(s.users))
	for _, u := range s.users {
		items = append(items, map[string]any{
			"id": u.ID, "name": u.Name, "email": u.Email, "lang": "ru",
			"rights": map[string]any{"is_active": u.Active, "is_admin": false, "is_free": false,
				"group_id": nil, "role_id": nil},
			"_links": s.href("/api/v4/users/" + strconv.Itoa(u.ID)),
		})
	}
	s.mu.Unlock()
	s.writePage(w, r, "users", items, page, limit)
}

func (s *Server) handlePipelines(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var ps []map[string]any
	for pi, p := range s.pipelines {
		var sts []map[string]any
		for i, st := range p.Statuses {
			sort := 10 * (i + 1)
			switch st.ID {
			case WonStatusID:
				sort = 10000
			case LostStatusID:
				sort = 11000
			}
			color := "#99ccff"
			if st.Type == 1 {
				color = "#c1c1c1"
			}
			sts = append(sts, map[string]any{
				"id": st.ID, "name": st.Name, "sort": sort, "is_editable": st.Type == 0 && st.ID != WonStatusID && st.ID != LostStatusID,
				"pipeline_id": p.ID, "color": color, "type": st.Type, "account_id": accountID,
				"_links": s.href(fmt.Sprintf("/api/v4/leads/pipelines/%d/statuses/%d", p.ID, st.ID)),
			})
		}
		_, hasUnsorted := unsortedStatus(p)
		ps = append(ps, map[string]any{
			"id": p.ID, "name": p.Name, "sort": (pi + 1) * 100, "is_main": p.Main, "is_unsorted_on": hasUnsorted,
			"is_archive": false, "account_id": accountID,
			"_links":    s.href(fmt.Sprintf("/api/v4/leads/pipelines/%d", p.ID)),
			"_embedded": map[string]any{"statuses": sts},
		})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"_total_items": len(ps), "_links": s.href("/api/v4/leads/pipelines"),
		"_embedded": map[string]any{"pipelines": ps},
	})
}

// ---- contacts ----

func (s *Server) contactJSON(c *contact, withLeads bool) map[string]any {
	var cfs []map[string]any
	for _, f := range c.fields {
		var vals []map[string]any
		for _, v := range f.values {
			item := map[string]any{"value": v.value}
			if v.enumCode != "" {
				item["enum_code"] = v.enumCode
				item["enum_id"] = v.enumID
			}
			vals = append(vals, item)
		}
		var code any
		if f.code != "" {
			code = f.code
		}
		cfs = append(cfs, map[string]any{"field_id": f.id, "field_name": f.name, "field_code": code, "field_type": f.typ, "values": vals})
	}
	emb := map[string]any{"tags": []any{}, "companies": []any{}}
	if withLeads {
		ls := []map[string]any{}
		for _, id := range c.leads {
			ls = append(ls, map[string]any{"id": id, "_links": s.href("/api/v4/leads/" + strconv.Itoa(id))})
		}
		emb["leads"] = ls
	}
	out := map[string]any{
		"id": c.id, "name": c.name, "first_name": "", "last_name": "",
		"responsible_user_id": c.responsible, "group_id": 0, "created_by": 0, "updated_by": 0,
		"created_at": c.createdAt, "updated_at": c.updatedAt, "closest_task_at": nil,
		"is_deleted": false, "is_unsorted": c.unsorted, "custom_fields_values": nil,
		"account_id": accountID, "_links": s.href("/api/v4/contacts/" + strconv.Itoa(c.id)),
		"_embedded": emb,
	}
	if cfs != nil {
		out["custom_fields_values"] = cfs
	}
	return out
}

func (s *Server) handleListContacts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, limit, ok := pageParams(w, q)
	if !ok {
		return
	}
	query := strings.TrimSpace(q.Get("query"))
	ids, byID := idFilter(q, "id")
	from, to, byTime := rangeFilter(q, "updated_at")
	if !s.opt.APIFilter {
		byID, byTime = false, false
	}
	withLeads := hasWith(q, "leads")
	s.mu.Lock()
	var list []*contact
	for _, id := range sortedKeys(s.contacts) {
		c := s.contacts[id]
		// Contacts of an Unsorted entry are not listed or searchable
		// until it is accepted (amocrm.ru unsorted-api as summarised in
		// our research notes; the official SDK's ContactModel reads
		// is_unsorted). Not confirmed by a recorded response.
		if c.unsorted {
			continue
		}
		if byID && !ids[id] {
			continue
		}
		if byTime && (c.updatedAt < from || c.updatedAt > to) {
			continue
		}
		if query != "" && !c.matches(query) {
			continue
		}
		list = append(list, c)
	}
	orderBy(q, list, func(c *contact) (int64, int) { return c.updatedAt, c.id })
	items := make([]map[string]any, 0, len(list))
	for _, c := range list {
		items = append(items, s.contactJSON(c, withLeads))
	}
	s.mu.Unlock()
	s.writePage(w, r, "contacts", items, page, limit)
}

func (s *Server) handleGetContact(w http.ResponseWriter, r *http.Request) {
	getOne(s, w, r, s.contacts, func(c *contact) map[string]any { return s.contactJSON(c, hasWith(r.URL.Query(), "leads")) })
}

// getOne serves GET of one entity by the {id} of the path: toJSON's
// answer under s.mu, or 204 when m has no such id.
func getOne[E any](s *Server, w http.ResponseWriter, r *http.Request, m map[int]*E, toJSON func(e *E) map[string]any) {
	id, ok := pathID(r)
	s.mu.Lock()
	var out map[string]any
	if e, found := m[id]; ok && found {
		out = toJSON(e)
	}
	s.mu.Unlock()
	if out == nil {
		noContent(w)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// buildFields validates custom_fields_values of item i.
func buildFields(in []cfIn, prefix string, rid string) ([]cf, []vErr) {
	var out []cf
	var errs []vErr
	for j, f := range in {
		p := fmt.Sprintf("%scustom_fields_values.%d", prefix, j)
		var field cf
		switch {
		case f.FieldCode != "":
			sf, ok := systemFields[f.FieldCode]
			if !ok {
				errs = append(errs, vErr{rid, "NotSupportedChoice", p + ".field_code", "The value you selected is not a valid choice."})
				continue
			}
			field = cf{id: sf.id, code: f.FieldCode, name: sf.name, typ: "multitext"}
		case f.FieldID != 0:
			field = cf{id: f.FieldID, name: "Field " + strconv.Itoa(f.FieldID), typ: "text"}
			for code, sf := range systemFields {
				if sf.id == f.FieldID {
					field = cf{id: sf.id, code: code, name: sf.name, typ: "multitext"}
				}
			}
		default:
			errs = append(errs, vErr{rid, "NotBlank", p + ".field_id", "This value should not be blank."})
			continue
		}
		if len(f.Values) == 0 {
			errs = append(errs, vErr{rid, "NotBlank", p + ".values", "This value should not be blank."})
			continue
		}
		for k, v := range f.Values {
			val := rawString(v.Value)
			if val == "" || val == "null" {
				errs = append(errs, vErr{rid, "NotBlank", fmt.Sprintf("%s.values.%d.value", p, k), "This value should not be blank."})
				continue
			}
			code := v.EnumCode
			if code != "" && field.typ == "multitext" {
				if _, ok := enumIDs[code]; !ok {
					errs = append(errs, vErr{rid, "NotSupportedChoice", fmt.Sprintf("%s.values.%d.enum_code", p, k), "The value you selected is not a valid choice."})
					continue
				}
			}
			if code == "" && field.typ == "multitext" && (field.code == "PHONE" || field.code == "EMAIL") {
				code = "WORK"
			}
			field.values = append(field.values, cfVal{value: val, enumCode: code, enumID: enumIDs[code]})
		}
		out = append(out, field)
	}
	return out, errs
}

// newContact validates and builds (not stores) a contact; s.mu held.
func (s *Server) newContact(in contactIn, prefix, rid string) (*contact, []vErr) {
	var errs []vErr
	c := &contact{}
	if in.Name != nil {
		c.name = *in.Name
	} else {
		c.name = strings.TrimSpace(in.FirstName + " " + in.LastName)
	}
	if in.ResponsibleUserID != nil {
		if !s.userExists(*in.ResponsibleUserID) {
			errs = append(errs, vErr{rid, "NotSupportedChoice", prefix + "responsible_user_id", "The value you selected is not a valid choice."})
		}
		c.responsible = *in.ResponsibleUserID
	} else {
		c.responsible = s.users[0].ID
	}
	fields, ferrs := buildFields(in.CustomFieldsValues, prefix, rid)
	c.fields = fields
	errs = append(errs, ferrs...)
	now := s.now().Unix()
	c.createdAt, c.updatedAt = now, now
	return c, errs
}

func (s *Server) handleCreateContacts(w http.ResponseWriter, r *http.Request) {
	items, ok := decodeArray[contactIn](w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var built []*contact
	var errs []vErr
	for i, in := range items {
		c, e := s.newContact(in, "", reqID(in.RequestID, i))
		built = append(built, c)
		errs = append(errs, e...)
	}
	if len(errs) > 0 {
		writeValidation(w, errs)
		return
	}
	var out []map[string]any
	for i, c := range built {
		c.id = s.newID()
		s.contacts[c.id] = c
		out = append(out, map[string]any{"id": c.id, "request_id": reqID(items[i].RequestID, i), "_links": s.href("/api/v4/contacts/" + strconv.Itoa(c.id))})
	}
	writeJSON(w, http.StatusOK, map[string]any{"_links": s.href("/api/v4/contacts"), "_embedded": map[string]any{"contacts": out}})
}

// patchContact applies in to c after validation; s.mu held.
// checkContactPatch checks a change of c and returns the write that
// makes it, or the validation errors that refuse it.
func (s *Server) checkContactPatch(c *contact, in contactIn, rid string) (func() int64, []vErr) {
	var errs []vErr
	if in.ResponsibleUserID != nil && !s.userExists(*in.ResponsibleUserID) {
		errs = append(errs, vErr{rid, "NotSupportedChoice", "responsible_user_id", "The value you selected is not a valid choice."})
	}
	fields, ferrs := buildFields(in.CustomFieldsValues, "", rid)
	errs = append(errs, ferrs...)
	if len(errs) > 0 {
		return nil, errs
	}
	return func() int64 {
		if in.Name != nil {
			c.name = *in.Name
		}
		if in.ResponsibleUserID != nil {
			c.responsible = *in.ResponsibleUserID
		}
		for _, f := range fields {
			i := slices.IndexFunc(c.fields, func(x cf) bool { return x.id == f.id })
			if i >= 0 {
				c.fields[i] = f
			} else {
				c.fields = append(c.fields, f)
			}
		}
		c.updatedAt = s.now().Unix()
		return c.updatedAt
	}, nil
}

// handlePatchContacts is PATCH /api/v4/contacts: an array of changes,
// each with the contact's id (Docs contacts-api, batch edit), answered
// like handlePatchLeads.
func (s *Server) handlePatchContacts(w http.ResponseWriter, r *http.Request) {
	patchMany(s, w, r, "contacts", s.contacts, "Contact not found", s.checkContactPatch)
}

func (s *Server) handlePatchContact(w http.ResponseWriter, r *http.Request) {
	patchOne(s, w, r, "/api/v4/contacts/", s.contacts, "Contact not found", func(c *contact, in contactIn) (int64, []vErr) {
		write, errs := s.checkContactPatch(c, in, "0")
		if len(errs) > 0 {
			return 0, errs
		}
		return write(), nil
	})
}

// patchOne serves PATCH {base}{id} of one entity: it decodes the change,
// answers 404 with missing when m has no such id, and otherwise lets
// apply check and write the change under s.mu. apply returns the
// entity's updated_at, or the validation errors that refuse the change
// (then nothing is written); the answer is {id, updated_at, _links}.
func patchOne[T, E any](s *Server, w http.ResponseWriter, r *http.Request, base string, m map[int]*E, missing string, apply func(e *E, in T) (updatedAt int64, errs []vErr)) {
	id, _ := pathID(r)
	in, ok := decodeObject[T](w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, found := m[id]
	if !found {
		notFound(w, missing)
		return
	}
	updated, errs := apply(e, in)
	if len(errs) > 0 {
		writeValidation(w, errs)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "updated_at": updated, "_links": s.href(base + strconv.Itoa(id))})
}

// patchItem is a change in a batch PATCH: the entity's id and the
// caller's request_id.
type patchItem interface {
	key() (id int, requestID string)
}

func (in contactIn) key() (int, string) { return in.ID, in.RequestID }
func (in leadIn) key() (int, string)    { return in.ID, in.RequestID }
func (in taskIn) key() (int, string)    { return in.ID, in.RequestID }

// patchMany serves PATCH /api/v4/{kind}: an array of changes, each naming
// its entity by id. Every change is checked first, and any problem (an
// unknown id is one on "id") refuses the request whole with nothing
// written, as every write of the fake is (see the package doc); then each
// check's write is made and the answer is _embedded.{kind} [{id,
// updated_at, request_id}].
func patchMany[T patchItem, E any](s *Server, w http.ResponseWriter, r *http.Request, kind string, m map[int]*E, missing string, check func(e *E, in T, rid string) (func() int64, []vErr)) {
	items, ok := decodeArray[T](w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	writes := make([]func() int64, len(items))
	var errs []vErr
	for i, in := range items {
		id, given := in.key()
		rid := reqID(given, i)
		e, found := m[id]
		if !found {
			errs = append(errs, vErr{rid, "NotFound", "id", missing})
			continue
		}
		write, e2 := check(e, in, rid)
		writes[i] = write
		errs = append(errs, e2...)
	}
	if len(errs) > 0 {
		writeValidation(w, errs)
		return
	}
	var out []map[string]any
	for i, in := range items {
		id, given := in.key()
		out = append(out, map[string]any{"id": id, "updated_at": writes[i](), "request_id": reqID(given, i)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"_links": s.href("/api/v4/" + kind), "_embedded": map[string]any{kind: out}})
}

// ---- leads ----

func (s *Server) leadJSON(l *lead, withContacts bool) map[string]any {
	emb := map[string]any{"tags": []any{}, "companies": []any{}}
	if withContacts {
		cs := []map[string]any{}
		for i, id := range l.contacts {
			cs = append(cs, map[string]any{"id": id, "is_main": i == 0, "_links": s.href("/api/v4/contacts/" + strconv.Itoa(id))})
		}
		emb["contacts"] = cs
	}
	var closed any
	if l.closedAt != 0 {
		closed = l.closedAt
	}
	return map[string]any{
		"id": l.id, "name": l.name, "price": l.price, "responsible_user_id": l.responsible,
		"group_id": 0, "status_id": l.status, "pipeline_id": l.pipeline, "loss_reason_id": nil,
		"created_by": 0, "updated_by": 0, "created_at": l.createdAt, "updated_at": l.updatedAt,
		"closed_at": closed, "closest_task_at": nil, "is_deleted": false, "custom_fields_values": nil,
		"score": nil, "account_id": accountID, "labor_cost": nil,
		"_links": s.href("/api/v4/leads/" + strconv.Itoa(l.id)), "_embedded": emb,
	}
}

func (s *Server) handleListLeads(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, limit, ok := pageParams(w, q)
	if !ok {
		return
	}
	ids, byID := idFilter(q, "id")
	if !s.opt.APIFilter {
		// Without API filtering the account answers the unfiltered list:
		// amocrm-api-php issue #348 (a filtered contacts request answered
		// with every contact; the maintainer: the account must be
		// connected to API filtering, filters-api), issue #614 (support:
		// the filtering feature is enabled per account, for a fee).
		byID = false
	}
	query := strings.ToLower(strings.TrimSpace(q.Get("query")))
	withContacts := hasWith(q, "contacts")
	s.mu.Lock()
	var items []map[string]any
	for _, id := range sortedKeys(s.leads) {
		l := s.leads[id]
		if byID && !ids[id] {
			continue
		}
		if query != "" && !strings.Contains(strings.ToLower(l.name), query) {
			continue
		}
		items = append(items, s.leadJSON(l, withContacts))
	}
	s.mu.Unlock()
	s.writePage(w, r, "leads", items, page, limit)
}

func (s *Server) handleGetLead(w http.ResponseWriter, r *http.Request) {
	getOne(s, w, r, s.leads, func(l *lead) map[string]any { return s.leadJSON(l, hasWith(r.URL.Query(), "contacts")) })
}

// placeLead resolves pipeline and status for a new lead; s.mu held.
// unsortedOK allows (and forces, when forceUnsorted) the Unsorted status.
func (s *Server) placeLead(in leadIn, rid string, unsortedOK, forceUnsorted bool) (pid, sid int, errs []vErr) {
	var p Pipeline
	switch {
	case in.PipelineID != nil:
		var ok bool
		p, ok = s.pipeline(*in.PipelineID)
		if !ok {
			return 0, 0, []vErr{{rid, "NotSupportedChoice", "pipeline_id", "Pipeline not found"}}
		}
	case in.StatusID != nil && !forceUnsorted:
		p = s.mainPipeline()
		if _, ok := statusOf(p, *in.StatusID); !ok {
			for _, cand := range s.pipelines {
				if _, ok := statusOf(cand, *in.StatusID); ok {
					p = cand
					break
				}
			}
		}
	default:
		p = s.mainPipeline()
	}
	if forceUnsorted {
		st, ok := unsortedStatus(p)
		if !ok {
			return 0, 0, []vErr{{rid, "NotSupportedChoice", "pipeline_id", "Unsorted is off in this pipeline"}}
		}
		return p.ID, st.ID, nil
	}
	if in.StatusID == nil {
		return p.ID, firstOpenStatus(p).ID, nil
	}
	st, ok := statusOf(p, *in.StatusID)
	if !ok {
		return 0, 0, []vErr{{rid, "NotSupportedChoice", "status_id", "Status not found in the pipeline"}}
	}
	// An Unsorted status_id on ordinary creation: no source says what
	// amoCRM does (refuse it, or store a lead at that status without an
	// inbox entry). The fake stores it without an entry; the adapter never
	// sends one.
	_ = unsortedOK
	return p.ID, st.ID, nil
}

// newLead validates and builds (not stores) a lead; s.mu held.
func (s *Server) newLead(in leadIn, rid string, forceUnsorted bool) (*lead, []vErr) {
	pid, sid, errs := s.placeLead(in, rid, false, forceUnsorted)
	l := &lead{pipeline: pid, status: sid}
	if in.Name != nil {
		l.name = *in.Name
	}
	if in.Price != nil {
		l.price = *in.Price
	}
	if in.ResponsibleUserID != nil {
		if !s.userExists(*in.ResponsibleUserID) {
			errs = append(errs, vErr{rid, "NotSupportedChoice", "responsible_user_id", "The value you selected is not a valid choice."})
		}
		l.responsible = *in.ResponsibleUserID
	} else {
		// UNVERIFIED: a lead created without responsible_user_id gets the
		// user the request is made as (the first seeded user stands for
		// the integration's user). The leads API docs do not say; recorded
		// responses of API-created leads show responsible_user_id equal to
		// created_by, and the amoCRM UI never shows a lead without one.
		l.responsible = s.users[0].ID
	}
	if l.name == "" {
		l.name = "Сделка"
	}
	now := s.now().Unix()
	l.createdAt, l.updatedAt = now, now
	if sid == WonStatusID || sid == LostStatusID {
		l.closedAt = now
	}
	return l, errs
}

func (s *Server) link(l *lead, c *contact) {
	if !slices.Contains(l.contacts, c.id) {
		l.contacts = append(l.contacts, c.id)
	}
	if !slices.Contains(c.leads, l.id) {
		c.leads = append(c.leads, l.id)
	}
}

func (s *Server) handleCreateLeads(w http.ResponseWriter, r *http.Request) {
	items, ok := decodeArray[leadIn](w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var built []*lead
	var errs []vErr
	for i, in := range items {
		rid := reqID(in.RequestID, i)
		l, e := s.newLead(in, rid, false)
		errs = append(errs, e...)
		for j, c := range in.Embedded.Contacts {
			if _, ok := s.contacts[c.ID]; !ok {
				errs = append(errs, vErr{rid, "NotSupportedChoice", fmt.Sprintf("_embedded.contacts.%d.id", j), "Contact not found"})
			}
		}
		built = append(built, l)
	}
	if len(errs) > 0 {
		writeValidation(w, errs)
		return
	}
	var out []map[string]any
	for i, l := range built {
		l.id = s.newID()
		s.leads[l.id] = l
		for _, c := range items[i].Embedded.Contacts {
			s.link(l, s.contacts[c.ID])
		}
		out = append(out, map[string]any{"id": l.id, "request_id": reqID(items[i].RequestID, i), "_links": s.href("/api/v4/leads/" + strconv.Itoa(l.id))})
	}
	writeJSON(w, http.StatusOK, map[string]any{"_links": s.href("/api/v4/leads"), "_embedded": map[string]any{"leads": out}})
}

// checkLeadPatch validates a change of l; s.mu held. It returns where
// the lead goes.
func (s *Server) checkLeadPatch(l *lead, in leadIn, rid string) (pid, sid int, errs []vErr) {
	p, _ := s.pipeline(l.pipeline)
	cur, _ := statusOf(p, l.status)
	pid, sid = l.pipeline, l.status
	if in.StatusID != nil || in.PipelineID != nil {
		if cur.Type == 1 && in.StatusID != nil {
			errs = append(errs, vErr{rid, "NotSupportedChoice", "status_id", "The value you selected is not a valid choice."})
		} else {
			pin := in
			if pin.PipelineID == nil {
				pin.PipelineID = &l.pipeline
			}
			var e []vErr
			pid, sid, e = s.placeLead(pin, rid, false, false)
			errs = append(errs, e...)
		}
	}
	if in.ResponsibleUserID != nil && !s.userExists(*in.ResponsibleUserID) {
		errs = append(errs, vErr{rid, "NotSupportedChoice", "responsible_user_id", "The value you selected is not a valid choice."})
	}
	return pid, sid, errs
}

// applyLeadPatch applies a checked change; s.mu held.
func (s *Server) applyLeadPatch(l *lead, in leadIn, pid, sid int) {
	if in.Name != nil {
		l.name = *in.Name
	}
	if in.Price != nil {
		l.price = *in.Price
	}
	if in.ResponsibleUserID != nil {
		l.responsible = *in.ResponsibleUserID
	}
	now := s.now().Unix()
	if sid != l.status || pid != l.pipeline {
		l.pipeline, l.status = pid, sid
		l.closedAt = 0
		if sid == WonStatusID || sid == LostStatusID {
			l.closedAt = now
		}
	}
	l.updatedAt = now
}

func (s *Server) handlePatchLead(w http.ResponseWriter, r *http.Request) {
	patchOne(s, w, r, "/api/v4/leads/", s.leads, "Lead not found", func(l *lead, in leadIn) (int64, []vErr) {
		pid, sid, errs := s.checkLeadPatch(l, in, "0")
		if len(errs) > 0 {
			return 0, errs
		}
		s.applyLeadPatch(l, in, pid, sid)
		return l.updatedAt, nil
	})
}

// handlePatchLeads is PATCH /api/v4/leads: an array of changes, each
// with the lead's id (Docs leads-api, batch edit; SDK BaseEntity::update
// sends a collection there), answered with _embedded.leads [{id,
// updated_at, request_id}] (SDK processModelAction reads id and
// updated_at). A request with an invalid item is refused whole, as every
// write of the fake is (see the package doc); an unknown id is a
// validation error on "id" (UNVERIFIED: no recorded answer).
func (s *Server) handlePatchLeads(w http.ResponseWriter, r *http.Request) {
	patchMany(s, w, r, "leads", s.leads, "Lead not found", func(l *lead, in leadIn, rid string) (func() int64, []vErr) {
		pid, sid, errs := s.checkLeadPatch(l, in, rid)
		return func() int64 { s.applyLeadPatch(l, in, pid, sid); return l.updatedAt }, errs
	})
}

func (s *Server) handleComplex(w http.ResponseWriter, r *http.Request) {
	items, ok := decodeArray[leadIn](w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	type plan struct {
		l        *lead
		existing *contact
		created  *contact
		unsorted bool
	}
	var plans []plan
	var errs []vErr
	for i, in := range items {
		rid := reqID(in.RequestID, i)
		unsorted := in.Embedded.Metadata != nil
		l, e := s.newLead(in, rid, unsorted)
		errs = append(errs, e...)
		pl := plan{l: l, unsorted: unsorted}
		var ce []vErr
		pl.existing, pl.created, ce = s.embeddedContact(in.Embedded.Contacts, rid)
		errs = append(errs, ce...)
		plans = append(plans, pl)
	}
	if len(errs) > 0 {
		writeValidation(w, errs)
		return
	}
	var out []map[string]any
	for i, pl := range plans {
		pl.l.id = s.newID()
		s.leads[pl.l.id] = pl.l
		var cid any
		c := pl.existing
		if pl.created != nil {
			c = pl.created
			c.id = s.newID()
			c.unsorted = pl.unsorted
			s.contacts[c.id] = c
		}
		if c != nil {
			s.link(pl.l, c)
			cid = c.id
		}
		if pl.unsorted {
			uid := fmt.Sprintf("fake-unsorted-%d", pl.l.id)
			e := &unsortedEntry{UnsortedEntry: UnsortedEntry{UID: uid, SourceUID: uid, SourceName: "complex", Category: "forms",
				Pipeline: pl.l.pipeline, Lead: pl.l.id}, createdAt: pl.l.createdAt}
			if c != nil {
				e.Contacts = []int{c.id}
			}
			s.unsorted[uid] = e
		}
		out = append(out, map[string]any{"id": pl.l.id, "contact_id": cid, "company_id": nil,
			"request_id": []string{reqID(items[i].RequestID, i)}, "merged": false})
	}
	writeJSON(w, http.StatusOK, out)
}

// ---- Unsorted ----

func (s *Server) handleUnsortedForms(w http.ResponseWriter, r *http.Request) {
	items, ok := decodeArray[unsortedIn](w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	type plan struct {
		in       unsortedIn
		l        *lead
		existing *contact
		created  *contact
	}
	var plans []plan
	var errs []vErr
	seen := map[string]bool{}
	for i, in := range items {
		rid := reqID(in.RequestID, i)
		if in.SourceUID == "" {
			errs = append(errs, vErr{rid, "NotBlank", "source_uid", "This value should not be blank."})
		} else if seen[in.SourceUID] || slices.ContainsFunc(mapValues(s.unsorted), func(u *unsortedEntry) bool { return u.SourceUID == in.SourceUID }) {
			errs = append(errs, vErr{rid, "Duplicate", "source_uid", "Unsorted with this source_uid already exists"})
		}
		seen[in.SourceUID] = true
		if in.SourceName == "" {
			errs = append(errs, vErr{rid, "NotBlank", "source_name", "This value should not be blank."})
		}
		for _, k := range []string{"form_id", "form_name", "form_page", "form_sent_at"} {
			if v, ok := in.Metadata[k]; !ok || v == nil || v == "" {
				errs = append(errs, vErr{rid, "NotBlank", "metadata." + k, "This value should not be blank."})
			}
		}
		lin := leadIn{PipelineID: in.PipelineID}
		if len(in.Embedded.Leads) > 1 {
			errs = append(errs, vErr{rid, "TooManyItems", "_embedded.leads", "Only one lead is allowed"})
		} else if len(in.Embedded.Leads) == 1 {
			lin = in.Embedded.Leads[0]
			if lin.StatusID != nil {
				errs = append(errs, vErr{rid, "Extra", "_embedded.leads.0.status_id", "status_id is not allowed in Unsorted"})
			}
			lin.PipelineID = in.PipelineID
		}
		l, e := s.newLead(lin, rid, true)
		errs = append(errs, e...)
		pl := plan{in: in, l: l}
		var ce []vErr
		pl.existing, pl.created, ce = s.embeddedContact(in.Embedded.Contacts, rid)
		errs = append(errs, ce...)
		plans = append(plans, pl)
	}
	if len(errs) > 0 {
		writeValidation(w, errs)
		return
	}
	var out []map[string]any
	for i, pl := range plans {
		pl.l.id = s.newID()
		s.leads[pl.l.id] = pl.l
		e := &unsortedEntry{UnsortedEntry: UnsortedEntry{UID: fmt.Sprintf("fake-unsorted-%d", pl.l.id), SourceUID: pl.in.SourceUID,
			SourceName: pl.in.SourceName, Category: "forms", Pipeline: pl.l.pipeline, Lead: pl.l.id}, createdAt: pl.l.createdAt}
		c := pl.existing
		if pl.created != nil {
			c = pl.created
			c.id = s.newID()
			c.unsorted = true
			s.contacts[c.id] = c
		}
		contacts := []map[string]any{}
		if c != nil {
			s.link(pl.l, c)
			e.Contacts = []int{c.id}
			contacts = append(contacts, map[string]any{"id": c.id})
		}
		s.unsorted[e.UID] = e
		out = append(out, map[string]any{
			"uid": e.UID, "account_id": accountID, "request_id": reqID(pl.in.RequestID, i),
			"_embedded": map[string]any{"leads": []map[string]any{{"id": pl.l.id}}, "contacts": contacts, "companies": []any{}},
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"_total_items": len(out), "_embedded": map[string]any{"unsorted": out}})
}

// handleListUnsorted is GET /api/v4/leads/unsorted: pending entries
// (accepted ones leave the inbox), filters filter[uid], filter[category]
// and filter[pipeline_id] (official PHP SDK UnsortedFilter), pages as
// every list, 204 when empty (amocrm-api-php issue #122). Each entry
// carries uid, source_uid, source_name, category, pipeline_id,
// created_at, metadata and _embedded leads and contacts as {id}
// (SDK BaseUnsortedModel::fromArray).
func (s *Server) handleListUnsorted(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, limit, ok := pageParams(w, q)
	if !ok {
		return
	}
	cats := map[string]bool{}
	uids := map[string]bool{}
	for k, vs := range q {
		for _, v := range vs {
			switch {
			case k == "filter[category]" || strings.HasPrefix(k, "filter[category]["):
				cats[v] = true
			case k == "filter[uid]" || strings.HasPrefix(k, "filter[uid]["):
				uids[v] = true
			}
		}
	}
	pipeline, _ := strconv.Atoi(q.Get("filter[pipeline_id]"))
	s.mu.Lock()
	entries := mapValues(s.unsorted)
	slices.SortFunc(entries, func(a, b *unsortedEntry) int { return a.Lead - b.Lead })
	var items []map[string]any
	for _, e := range entries {
		if e.Accepted || (len(cats) > 0 && !cats[e.Category]) || (len(uids) > 0 && !uids[e.UID]) || (pipeline != 0 && e.Pipeline != pipeline) {
			continue
		}
		cs := []map[string]any{}
		for _, id := range e.Contacts {
			cs = append(cs, map[string]any{"id": id})
		}
		items = append(items, map[string]any{
			"uid": e.UID, "source_uid": e.SourceUID, "source_name": e.SourceName, "category": e.Category,
			"pipeline_id": e.Pipeline, "created_at": e.createdAt, "account_id": accountID,
			"metadata":  map[string]any{"form_id": e.SourceName, "form_name": e.SourceName},
			"_embedded": map[string]any{"leads": []map[string]any{{"id": e.Lead}}, "contacts": cs, "companies": []any{}},
		})
	}
	s.mu.Unlock()
	s.writePage(w, r, "unsorted", items, page, limit)
}

// rangeFilter reads filter[name][from] and filter[name][to] (the range
// form the SDK's BaseRangeFilter sends; amocrm-api-php issue #358).
func rangeFilter(q url.Values, name string) (from, to int64, ok bool) {
	f, t := q.Get("filter["+name+"][from]"), q.Get("filter["+name+"][to]")
	if f == "" && t == "" {
		return 0, 0, false
	}
	from, _ = strconv.ParseInt(f, 10, 64)
	to, err := strconv.ParseInt(t, 10, 64)
	if err != nil || t == "" {
		to = 1<<62 - 1
	}
	return from, to, true
}

// orderBy applies order[updated_at] or order[id] (asc|desc); the default
// is ascending ID.
func orderBy[T any](q url.Values, list []T, key func(T) (int64, int)) {
	desc := func(v string) bool { return strings.EqualFold(v, "desc") }
	switch {
	case q.Get("order[updated_at]") != "":
		d := desc(q.Get("order[updated_at]"))
		slices.SortStableFunc(list, func(a, b T) int {
			ta, ia := key(a)
			tb, ib := key(b)
			c := cmpInt64(ta, tb)
			if c == 0 {
				c = ia - ib
			}
			if d {
				c = -c
			}
			return c
		})
	case desc(q.Get("order[id]")):
		slices.SortStableFunc(list, func(a, b T) int { _, ia := key(a); _, ib := key(b); return ib - ia })
	}
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func (s *Server) handleAccept(w http.ResponseWriter, r *http.Request) {
	var in struct {
		UserID   *int `json:"user_id"`
		StatusID *int `json:"status_id"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if len(body) > 0 && json.Unmarshal(body, &in) != nil {
		badRequest(w, "Invalid request body")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.unsorted[r.PathValue("uid")]
	if !ok || e.Accepted {
		notFound(w, "Unsorted not found")
		return
	}
	l := s.leads[e.Lead]
	p, _ := s.pipeline(l.pipeline)
	target := firstOpenStatus(p)
	if in.StatusID != nil {
		st, ok := statusOf(p, *in.StatusID)
		if !ok || st.Type == 1 {
			writeValidation(w, []vErr{{"0", "NotSupportedChoice", "status_id", "The value you selected is not a valid choice."}})
			return
		}
		target = st
	}
	if in.UserID != nil {
		if !s.userExists(*in.UserID) {
			writeValidation(w, []vErr{{"0", "NotSupportedChoice", "user_id", "The value you selected is not a valid choice."}})
			return
		}
		l.responsible = *in.UserID
	}
	l.status = target.ID
	l.updatedAt = s.now().Unix()
	e.Accepted = true
	var cs []map[string]any
	for _, id := range e.Contacts {
		if c, ok := s.contacts[id]; ok {
			c.unsorted = false
		}
		cs = append(cs, map[string]any{"id": id})
	}
	writeJSON(w, http.StatusOK, map[string]any{"uid": e.UID, "pipeline_id": l.pipeline, "category": e.Category,
		"created_at": e.createdAt, "_embedded": map[string]any{"leads": []map[string]any{{"id": l.id}}, "contacts": cs, "companies": []any{}}})
}

// ---- tasks ----

func (s *Server) taskJSON(t *task) map[string]any {
	var result any = []any{}
	if t.Result != "" {
		result = map[string]any{"text": t.Result}
	}
	var et any
	if t.EntityType != "" {
		et = t.EntityType
	}
	return map[string]any{
		"id": t.ID, "created_by": 0, "updated_by": 0, "created_at": t.createdAt, "updated_at": t.updatedAt,
		"responsible_user_id": t.Responsible, "group_id": 0, "entity_id": t.EntityID, "entity_type": et,
		"duration": 0, "is_completed": t.Completed, "task_type_id": t.TaskType, "text": t.Text,
		"result": result, "complete_till": t.CompleteTill, "account_id": accountID,
		"_links": s.href("/api/v4/tasks/" + strconv.Itoa(t.ID)),
	}
}

func (s *Server) handleListTasks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, limit, ok := pageParams(w, q)
	if !ok {
		return
	}
	entityType := q.Get("filter[entity_type]")
	entityIDs, byEntity := idFilter(q, "entity_id")
	completed := q.Get("filter[is_completed]")
	s.mu.Lock()
	var items []map[string]any
	for _, id := range sortedKeys(s.tasks) {
		t := s.tasks[id]
		if entityType != "" && t.EntityType != entityType {
			continue
		}
		if byEntity && !entityIDs[t.EntityID] {
			continue
		}
		if (completed == "1" && !t.Completed) || (completed == "0" && t.Completed) {
			continue
		}
		items = append(items, s.taskJSON(t))
	}
	s.mu.Unlock()
	s.writePage(w, r, "tasks", items, page, limit)
}

func (s *Server) handleGetTask(w http.ResponseWriter, r *http.Request) {
	getOne(s, w, r, s.tasks, s.taskJSON)
}

func (s *Server) entityExists(typ string, id int) bool {
	switch typ {
	case "leads":
		_, ok := s.leads[id]
		return ok
	case "contacts":
		_, ok := s.contacts[id]
		return ok
	}
	return false
}

func (s *Server) handleCreateTasks(w http.ResponseWriter, r *http.Request) {
	items, ok := decodeArray[taskIn](w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []vErr
	var built []*task
	now := s.now().Unix()
	for i, in := range items {
		rid := reqID(in.RequestID, i)
		t := &task{createdAt: now, updatedAt: now}
		t.TaskType = 1
		if in.Text == nil || *in.Text == "" {
			errs = append(errs, vErr{rid, "NotBlank", "text", "This value should not be blank."})
		} else {
			t.Text = *in.Text
		}
		if in.CompleteTill == nil || *in.CompleteTill <= 0 {
			errs = append(errs, vErr{rid, "NotBlank", "complete_till", "This value should not be blank."})
		} else {
			t.CompleteTill = *in.CompleteTill
		}
		if in.EntityType != nil || in.EntityID != nil {
			switch {
			case in.EntityType == nil || (*in.EntityType != "leads" && *in.EntityType != "contacts"):
				errs = append(errs, vErr{rid, "NotSupportedChoice", "entity_type", "The value you selected is not a valid choice."})
			case in.EntityID == nil || !s.entityExists(*in.EntityType, *in.EntityID):
				errs = append(errs, vErr{rid, "NotSupportedChoice", "entity_id", "Entity not found"})
			default:
				t.EntityType, t.EntityID = *in.EntityType, *in.EntityID
			}
		}
		t.Responsible = s.users[0].ID
		if in.ResponsibleUserID != nil {
			if !s.userExists(*in.ResponsibleUserID) {
				errs = append(errs, vErr{rid, "NotSupportedChoice", "responsible_user_id", "The value you selected is not a valid choice."})
			}
			t.Responsible = *in.ResponsibleUserID
		}
		if in.TaskTypeID != nil {
			t.TaskType = *in.TaskTypeID
		}
		built = append(built, t)
	}
	if len(errs) > 0 {
		writeValidation(w, errs)
		return
	}
	var out []map[string]any
	for i, t := range built {
		t.ID = s.newID()
		s.tasks[t.ID] = t
		out = append(out, map[string]any{"id": t.ID, "request_id": reqID(items[i].RequestID, i), "_links": s.href("/api/v4/tasks/" + strconv.Itoa(t.ID))})
	}
	writeJSON(w, http.StatusOK, map[string]any{"_links": s.href("/api/v4/tasks"), "_embedded": map[string]any{"tasks": out}})
}

// checkTaskPatch validates a change of a task; s.mu held.
func (s *Server) checkTaskPatch(in taskIn, rid string) []vErr {
	var errs []vErr
	if in.ResponsibleUserID != nil && !s.userExists(*in.ResponsibleUserID) {
		errs = append(errs, vErr{rid, "NotSupportedChoice", "responsible_user_id", "The value you selected is not a valid choice."})
	}
	// Completing needs a result: the tasks API documentation
	// (amocrm.ru/developers/content/crm_platform/tasks-api) closes a task
	// with is_completed together with result.text; Kommo's complete-task
	// tools take the result as required. The exact refusal (status, code)
	// when result is missing is not recorded anywhere: unverified.
	if in.IsCompleted != nil && *in.IsCompleted && (in.Result == nil || strings.TrimSpace(in.Result.Text) == "") {
		errs = append(errs, vErr{rid, "NotBlank", "result.text", "This value should not be blank."})
	}
	return errs
}

// applyTaskPatch applies a checked change; s.mu held.
func (s *Server) applyTaskPatch(t *task, in taskIn) {
	if in.Text != nil {
		t.Text = *in.Text
	}
	if in.CompleteTill != nil {
		t.CompleteTill = *in.CompleteTill
	}
	if in.ResponsibleUserID != nil {
		t.Responsible = *in.ResponsibleUserID
	}
	if in.IsCompleted != nil {
		t.Completed = *in.IsCompleted
	}
	if in.Result != nil {
		t.Result = in.Result.Text
	}
	t.updatedAt = s.now().Unix()
}

func (s *Server) handlePatchTask(w http.ResponseWriter, r *http.Request) {
	patchOne(s, w, r, "/api/v4/tasks/", s.tasks, "Task not found", func(t *task, in taskIn) (int64, []vErr) {
		if errs := s.checkTaskPatch(in, "0"); len(errs) > 0 {
			return 0, errs
		}
		s.applyTaskPatch(t, in)
		return t.updatedAt, nil
	})
}

// handlePatchTasks is PATCH /api/v4/tasks: an array of changes, each
// with the task's id — completing tasks with is_completed and result
// (Docs tasks-api, batch edit; SDK Tasks::update sends TaskModel::toApi
// items there) — answered with _embedded.tasks [{id, updated_at,
// request_id}] (Kommo edit-tasks reference; SDK Tasks::processAction). A
// request with an invalid item is refused whole, as every write of the
// fake is; an unknown id is a validation error on "id" (UNVERIFIED: no
// recorded answer).
func (s *Server) handlePatchTasks(w http.ResponseWriter, r *http.Request) {
	patchMany(s, w, r, "tasks", s.tasks, "Task not found", func(t *task, in taskIn, rid string) (func() int64, []vErr) {
		return func() int64 { s.applyTaskPatch(t, in); return t.updatedAt }, s.checkTaskPatch(in, rid)
	})
}

// ---- notes ----

var noteTypes = map[string]bool{"common": true, "service_message": true, "call_in": true, "call_out": true, "sms_in": true, "sms_out": true}

func (s *Server) handleNotes(entity string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, _ := pathID(r)
		items, ok := decodeArray[noteIn](w, r)
		if !ok {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.entityExists(entity, id) {
			notFound(w, "Entity not found")
			return
		}
		var errs []vErr
		for i, in := range items {
			rid := reqID(in.RequestID, i)
			if !noteTypes[in.NoteType] {
				errs = append(errs, vErr{rid, "NotSupportedChoice", "note_type", "The value you selected is not a valid choice."})
			} else if in.Params.Text == "" {
				errs = append(errs, vErr{rid, "NotBlank", "params.text", "This value should not be blank."})
			}
		}
		if len(errs) > 0 {
			writeValidation(w, errs)
			return
		}
		var out []map[string]any
		for i, in := range items {
			n := Note{ID: s.newID(), EntityType: entity, EntityID: id, Type: in.NoteType, Text: in.Params.Text}
			s.notes = append(s.notes, n)
			out = append(out, map[string]any{"id": n.ID, "entity_id": id, "request_id": reqID(in.RequestID, i)})
		}
		writeJSON(w, http.StatusOK, map[string]any{"_embedded": map[string]any{"notes": out}})
	}
}

// embeddedContact resolves the one contact a complex or Unsorted request
// may embed: an existing contact by ID, or a new one (not yet stored).
func (s *Server) embeddedContact(cs []contactIn, rid string) (existing, created *contact, errs []vErr) {
	if len(cs) > 1 {
		return nil, nil, []vErr{{rid, "TooManyItems", "_embedded.contacts", "Only one contact is allowed"}}
	}
	if len(cs) == 0 {
		return nil, nil, nil
	}
	ci := cs[0]
	if ci.ID != 0 {
		c, ok := s.contacts[ci.ID]
		if !ok {
			return nil, nil, []vErr{{rid, "NotSupportedChoice", "_embedded.contacts.0.id", "Contact not found"}}
		}
		return c, nil, nil
	}
	c, e := s.newContact(ci, "_embedded.contacts.0.", rid)
	return nil, c, e
}
