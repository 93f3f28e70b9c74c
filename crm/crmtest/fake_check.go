package crmtest

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/crmbridge/crmbridge/crm"
)

// Input checks. The Fake refuses, with a *crm.InvalidError naming the
// fields (an error matching crm.ErrInvalid), exactly the input the amoCRM
// adapter refuses before it sends a request, so a host tested against
// the Fake meets the same refusals in production. Each check names what
// amoCRM itself is documented to do; where that is unknown it says
// UNVERIFIED: the adapter refuses the input defensively, and so does the
// Fake. The checks look at the input alone, never at the Fake's data.

// invalid reports refused fields of op's input.
func invalid(op string, fes ...crm.FieldError) error {
	return fmt.Errorf("crmtest: %w", &crm.InvalidError{Op: op, Fields: fes})
}

// itemPrefix names item i of a batch call in field paths ("[3]."), as
// the amoCRM adapter does (crm/amocrm/batch.go checkItems); "" for a
// single-item call.
func itemPrefix(batch bool, i int) string {
	if !batch {
		return ""
	}
	return "[" + strconv.Itoa(i) + "]."
}

// kindProblem mirrors the amoCRM adapter's own identity rule
// (crm/amocrm/client.go kindProblem, the one place it lives there): a
// Kind holding ':' is refused, because the adapter stores an identity as
// the text "kind:value" in one contact field (crm/amocrm/doc.go, Mapping
// to amoCRM) and reads it back split at the first ':'. An identity
// without Kind or Value is crm.Identity.Problems' to report (bad false).
func kindProblem(id crm.Identity, path string) (fe crm.FieldError, bad bool) {
	if id.Kind == "" || id.Value == "" || !strings.Contains(id.Kind, ":") {
		return crm.FieldError{}, false
	}
	return crm.FieldError{Path: path, Code: "Invalid", Detail: "Kind must not contain ':'"}, true
}

// checkNewContact returns the refused fields of a contact to create;
// prefix names the contact in paths ("", "NewContact.", "[2].NewContact.").
//
//   - A blank phone (empty or only spaces): refused by the amoCRM adapter
//     (crm/amocrm/client.go checkNewContact). What amoCRM does with an
//     empty PHONE value is UNVERIFIED.
//   - An identity without Kind or Value (crm.Identity's rule), or one
//     kindProblem refuses.
func checkNewContact(nc crm.NewContact, prefix string) []crm.FieldError {
	fes := nc.Problems(prefix)
	for i, id := range nc.Identities {
		if fe, bad := kindProblem(id, prefix+"Identities["+strconv.Itoa(i)+"]"); bad {
			fes = append(fes, fe)
		}
	}
	return fes
}

// checkNewTask returns the refused fields of a task to create; prefix
// names the item of a batch.
//
//   - Exactly one of Deal and Contact (the crm.Client contract).
//   - A blank Text: POST /api/v4/tasks requires text and complete_till
//     in every task, according to a third-party summary of Kommo's "Add
//     tasks" reference (withone.ai, Kommo, Add Tasks (Bulk); the official
//     page itself was not checked); the adapter refuses it before sending
//     (crm/amocrm/client.go taskOut). Whether amoCRM accepts a text of
//     spaces only is UNVERIFIED; the adapter refuses it too.
//   - A zero Deadline: "a task must have a responsible user and a
//     deadline (date and time)"
//     (https://www.amocrm.ru/developers/content/crm_platform/tasks-api,
//     Общая информация); refused by the adapter (taskOut).
func checkNewTask(nt crm.NewTask, prefix string) []crm.FieldError {
	return nt.Problems(prefix)
}

// checkNewDeal returns the refused fields of a deal to create; prefix
// names the item of a batch. nc is the deal's new contact as it will be
// created (see dealContact), or nil.
//
//   - Exactly one of Contact and NewContact (the crm.Client contract).
//   - An empty Pipeline or Stage. amoCRM itself would not refuse it: a
//     lead created without status_id goes to "the first stage of the
//     main pipeline" (https://www.amocrm.com/developers/content/api_v4/leads-2/,
//     status_id). The adapter refuses it (crm/amocrm/batch.go checkDeal)
//     rather than let a deal land silently in a stage the host did not
//     choose; a pipeline or stage that is set but unknown is
//     crm.ErrNotFound instead.
//   - The new contact, checked as CreateContact checks it.
func checkNewDeal(nd crm.NewDeal, nc *crm.NewContact, prefix string) []crm.FieldError {
	fes := nd.Problems(prefix)
	if nc != nil {
		fes = append(fes, checkNewContact(*nc, prefix+"NewContact.")...)
	}
	return fes
}

// dealContact returns the contact to create with nd, or nil when nd
// links an existing one. Without its own Responsible the contact gets
// the deal's, as the amoCRM adapter gives it (crm/amocrm/client.go
// CreateDeal: "A NewContact without Responsible gets the deal's"), so the
// client belongs to whoever owns the deal.
func dealContact(nd crm.NewDeal) *crm.NewContact {
	if nd.NewContact == nil {
		return nil
	}
	nc := *nd.NewContact
	if nc.Responsible == "" {
		nc.Responsible = nd.Responsible
	}
	return &nc
}

// checkNote returns the refused fields of a note to add.
//
//   - Exactly one of Deal and Contact (the crm.Noter contract).
//   - A blank Text: the adapter sends a "common" note whose params.text
//     holds it (https://www.amocrm.ru/developers/content/crm_platform/events-and-notes;
//     amocrm/amocrm-api-php src/AmoCRM/Models/NoteType/CommonNote.php
//     toApi) and refuses a blank one before sending (crm/amocrm/client.go
//     AddNote). What amoCRM answers to an empty params.text is
//     UNVERIFIED.
func checkNote(n crm.Note) []crm.FieldError {
	return n.Problems()
}
