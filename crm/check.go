package crm

import (
	"strconv"
	"strings"
)

// The checks below are the input rules of the [Client] contract: every
// adapter refuses what they report with an error matching ErrInvalid
// (an [*InvalidError] naming the fields) before it writes anything, and
// may refuse more where its CRM cannot store a value. Adapters and fakes
// call them so that they refuse the same input. Paths start with prefix:
// "" for a value on its own, "[3]." for item 3 of a batch, "NewContact."
// for a deal's new contact.

// Problems returns what makes nc invalid under the contract: a blank
// phone, an identity without Kind or Value. nil when nc is valid.
func (nc NewContact) Problems(prefix string) []FieldError {
	var fes []FieldError
	for i, p := range nc.Phones {
		if strings.TrimSpace(p) == "" {
			fes = append(fes, FieldError{Path: prefix + "Phones[" + strconv.Itoa(i) + "]", Code: "Required", Detail: "empty phone"})
		}
	}
	for i, id := range nc.Identities {
		if fe, ok := id.problem(prefix + "Identities[" + strconv.Itoa(i) + "]"); !ok {
			fes = append(fes, fe)
		}
	}
	return fes
}

// problem reports whether id can be stored and searched for: Kind and
// Value set. ok false: fe names the field at path.
func (id Identity) problem(path string) (fe FieldError, ok bool) {
	if id.Kind == "" || id.Value == "" {
		return FieldError{Path: path, Code: "Required", Detail: "Kind and Value are required"}, false
	}
	return FieldError{}, true
}

// Problems returns what makes id invalid under the contract (Kind or
// Value empty), with the path "Identity"; nil when id is valid.
func (id Identity) Problems() []FieldError {
	if fe, ok := id.problem("Identity"); !ok {
		return []FieldError{fe}
	}
	return nil
}

// Problems returns what makes d itself invalid under the contract: not
// exactly one of Contact and NewContact, an empty Pipeline or Stage
// (never left to the CRM's default). The new contact's own problems are
// its Problems(prefix + "NewContact."). nil when d is valid. A pipeline,
// stage or user the CRM does not know is ErrNotFound, not a problem of
// the input.
func (d NewDeal) Problems(prefix string) []FieldError {
	var fes []FieldError
	if (d.Contact == "") == (d.NewContact == nil) {
		fes = append(fes, FieldError{Path: prefix + "Contact", Code: "OneOf", Detail: "exactly one of Contact and NewContact must be set"})
	}
	if d.Pipeline == "" {
		fes = append(fes, FieldError{Path: prefix + "Pipeline", Code: "Required"})
	}
	if d.Stage == "" {
		fes = append(fes, FieldError{Path: prefix + "Stage", Code: "Required"})
	}
	return fes
}

// Problems returns what makes t invalid under the contract: not exactly
// one of Deal and Contact, a blank Text, a zero Deadline. nil when t is
// valid.
func (t NewTask) Problems(prefix string) []FieldError {
	fes := oneTarget(prefix, t.Deal, t.Contact)
	if strings.TrimSpace(t.Text) == "" {
		fes = append(fes, FieldError{Path: prefix + "Text", Code: "Required"})
	}
	if t.Deadline.IsZero() {
		fes = append(fes, FieldError{Path: prefix + "Deadline", Code: "Required"})
	}
	return fes
}

// Problems returns what makes n invalid under the contract: not exactly
// one of Deal and Contact, a blank Text. nil when n is valid.
func (n Note) Problems() []FieldError {
	fes := oneTarget("", n.Deal, n.Contact)
	if strings.TrimSpace(n.Text) == "" {
		fes = append(fes, FieldError{Path: "Text", Code: "Required"})
	}
	return fes
}

// oneTarget reports a task's or a note's target unless exactly one of
// deal and contact is set.
func oneTarget(prefix string, deal DealID, contact ContactID) []FieldError {
	if (deal == "") == (contact == "") {
		return []FieldError{{Path: prefix + "Deal", Code: "OneOf", Detail: "exactly one of Deal and Contact must be set"}}
	}
	return nil
}
