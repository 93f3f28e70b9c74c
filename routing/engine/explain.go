package engine

import (
	"strconv"
	"strings"
	"time"

	"github.com/crmbridge/crmbridge/channel"
	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/routing"
)

// Explanation says step by step what the engine decided for an event and
// why. It is built as values; String renders it on demand, so an event
// whose explanation nobody reads costs no text formatting.
type Explanation struct {
	// Steps are the steps taken, in the order the engine took them; nil
	// when the event returned before its first step.
	Steps []Step
}

// String renders the steps on one line, separated by "; ".
func (x Explanation) String() string {
	var b strings.Builder
	for i, s := range x.Steps {
		if i > 0 {
			b.WriteString("; ")
		}
		s.write(&b)
	}
	return b.String()
}

// Has reports whether a step of kind k was taken.
func (x Explanation) Has(k StepKind) bool {
	for _, s := range x.Steps {
		if s.Kind == k {
			return true
		}
	}
	return false
}

func (x *Explanation) add(s Step) { x.Steps = append(x.Steps, s) }

// StepKind names one kind of step; the fields of Step it uses are listed
// with each kind.
type StepKind uint8

// Step kinds.
const (
	StepDuplicate        StepKind = iota + 1 // the event was processed before: no second effect
	StepGroup                                // a group chat: not a client, nothing created
	StepKnownClient                          // the client is known to the engine: Contact
	StepLoadedClient                         // the client was read from the CRM: Contact, Deal
	StepNewClient                            // no contact in the CRM
	StepFoundEarlier                         // what an earlier delivery created was found in the CRM: Contact, Deal
	StepDistributed                          // the channel's distribution decided: Decision
	StepTurnKept                             // the round-robin turn reserved for this client earlier: User
	StepCreatedClient                        // created Contact and Deal at Pipeline/Stage (Text: "pipeline P stage S")
	StepCreatedDeal                          // created Deal for the existing Contact
	StepOwnerFollows                         // the contact's responsible follows the new deal's: User
	StepOpenDeal                             // the open Deal's responsible User is notified
	StepNoResponsible                        // the open Deal has no responsible user
	StepOfferClaimed                         // the chat's offer was claimed by User
	StepOfferPending                         // the chat is offered to Users and unclaimed
	StepNotOnChannel                         // the responsible User does not work Channel
	StepReassigned                           // the client (Deal, Contact) now belongs to User
	StepReturningNotify                      // all deals closed: User decides, no deal created
	StepReturningNewDeal                     // all deals closed: a new deal, as for a new client
	StepTaskOpen                             // the unanswered streak already has Task
	StepTaskCreated                          // created Task for User, due Time
	StepTaskFound                            // an open Task found in the CRM was adopted, not created again
	StepTaskMoot                             // a reply closed the streak meanwhile: Task completed
	StepTaskClosed                           // the reply closed the unanswered streak: Task completed
	StepChannelChosen                        // writing first from Channel (Text: why)
	StepMayWrite                             // User may write (Text: their role)
	StepClaim                                // the reply claimed the offered chat: Decision
	StepClaimLost                            // User replied outside the engine, but Decision's winner claimed first
	StepSent                                 // the message was sent
	StepRecorded                             // a reply sent outside the engine was recorded; nothing sent
	StepOwnEcho                              // the echo of a message the engine sent: already applied
	StepNotEmployeeReply                     // written by Text (an author kind) or by User without a role: no claim
	StepLinks                                // N of Of short links expanded (Text: an error, if any)
	StepBotReply                             // a Salesbot message: streak and claim unchanged
	StepReset                                // unread counter reset: no reply needed
	StepTaskAnswered                         // the message was answered already (Task done): no task
	StepWarning                              // Text: a problem that did not stop the event
	StepCovering                             // User writes covering for the responsible, who is away and stays responsible: Decision (rule cover)
	StepNoRecord                             // the engine has no record of the chat's client: nothing read
	StepDealClosed                           // the known Deal is closed or gone, no other deal of Contact open: the distribution forgot the client
	StepNewResponsible                       // the open Deal changed hands in the CRM: now User (Text: the previous responsible)
)

// Step is one step of an Explanation. Which fields are set depends on
// Kind (see the StepKind constants).
type Step struct {
	// Kind is what the step was; it says which other fields are set.
	Kind StepKind
	// User is the employee the step is about; "" when the kind names none.
	User crm.UserID
	// Users is the group the chat is offered to (StepOfferPending).
	Users []crm.UserID
	// Contact is the client's CRM contact the step is about, or "".
	Contact crm.ContactID
	// Deal is the CRM deal the step is about, or "".
	Deal crm.DealID
	// Task is the unanswered-message task the step is about, or "".
	Task crm.TaskID
	// Channel is the channel the step is about, or "".
	Channel channel.ID
	// Time is the new task's deadline (StepTaskCreated); zero otherwise.
	Time time.Time
	// N is how many short links were expanded (StepLinks).
	N int
	// Of is how many short links the message had (StepLinks).
	Of int
	// Text is free-form detail named by the kind (a role, a reason, a
	// warning, a previous responsible); "" when there is none.
	Text string
	// Decision is the distribution's or claim's decision the step reports
	// (StepDistributed, StepClaim, StepClaimLost, StepCovering); else nil.
	Decision *routing.Decision
}

// String renders the step.
func (s Step) String() string {
	var b strings.Builder
	s.write(&b)
	return b.String()
}

func (s Step) write(b *strings.Builder) {
	w := b.WriteString
	switch s.Kind {
	case StepDuplicate:
		w("already processed: no second effect")
	case StepGroup:
		w("group chat: not a client, no contact, deal or task")
	case StepKnownClient:
		w("client known to the engine (contact " + string(s.Contact) + ")")
	case StepLoadedClient:
		w("client read from the CRM (contact " + string(s.Contact))
		if s.Deal != "" {
			w(", open deal " + string(s.Deal))
		}
		w(")")
	case StepNewClient:
		w("new client: no contact in the CRM")
	case StepFoundEarlier:
		w("contact " + string(s.Contact) + " and deal " + string(s.Deal) + ", created by an earlier delivery of this message: not created again")
	case StepDistributed:
		if s.Decision != nil {
			w(s.Decision.String())
		} else {
			w("distributed")
		}
	case StepTurnKept:
		w("round robin: " + string(s.User) + ", the turn reserved for this client by an earlier delivery")
	case StepCreatedClient:
		w("created contact " + string(s.Contact) + " and deal " + string(s.Deal) + " at " + s.Text)
	case StepCreatedDeal:
		w("created deal " + string(s.Deal) + " for the existing contact " + string(s.Contact))
	case StepOwnerFollows:
		w("contact " + string(s.Contact) + " now belongs to " + string(s.User) + ", the new deal's responsible")
	case StepOpenDeal:
		w("open deal " + string(s.Deal) + ": its responsible " + string(s.User) + " is notified")
	case StepNoResponsible:
		w("open deal " + string(s.Deal) + " has no responsible user")
	case StepOfferClaimed:
		w("chat claimed by " + string(s.User))
	case StepOfferPending:
		w("the chat is offered to ")
		writeUsers(b, s.Users)
		w(" and unclaimed")
	case StepNotOnChannel:
		w("its responsible " + strconv.Quote(string(s.User)) + " does not work channel " + string(s.Channel))
	case StepReassigned:
		w("the client (deal " + strconv.Quote(string(s.Deal)) + ", contact " + string(s.Contact) + ") now belongs to " + string(s.User))
	case StepReturningNotify:
		w("returning client, all deals closed; policy notify_responsible: " + string(s.User) + " decides, no deal created")
	case StepReturningNewDeal:
		w("returning client, all deals closed; policy new_deal")
	case StepTaskOpen:
		w("unanswered streak already has task " + string(s.Task))
	case StepTaskCreated:
		w("created task " + string(s.Task) + " for " + strconv.Quote(string(s.User)) + ", due " + s.Time.Format("2006-01-02 15:04"))
	case StepTaskFound:
		w("open task " + string(s.Task) + " found in the CRM: the streak's task, not created again")
	case StepTaskMoot:
		w("a reply closed the streak meanwhile; task " + string(s.Task) + " completed")
	case StepTaskClosed:
		w("reply closed the unanswered streak; task " + string(s.Task) + " completed")
	case StepChannelChosen:
		w("channel " + string(s.Channel) + ": " + s.Text)
	case StepMayWrite:
		w(string(s.User) + " may write (" + s.Text + ")")
	case StepClaim:
		if s.Decision != nil {
			w(s.Decision.String())
		}
		w("; " + string(s.User) + " is now responsible in the CRM; the chat left the other managers")
	case StepClaimLost:
		w(string(s.User) + " replied outside the engine but ")
		if s.Decision != nil {
			w(string(s.Decision.User))
		}
		w(" had claimed the chat")
	case StepSent:
		w("sent")
	case StepRecorded:
		w("reply recorded; nothing sent")
	case StepOwnEcho:
		w("echo of a message the engine sent: already applied")
	case StepNotEmployeeReply:
		if s.Text != "" {
			w("written by " + s.Text + ": not an employee's reply")
		} else {
			w("reply by " + strconv.Quote(string(s.User)) + ", not an employee of channel " + string(s.Channel))
		}
	case StepLinks:
		w("expanded " + strconv.Itoa(s.N) + " of " + strconv.Itoa(s.Of) + " short links")
		if s.Text != "" {
			w(" (" + s.Text + ")")
		}
	case StepBotReply:
		w("sent; not an employee's reply: streak and claim unchanged")
	case StepReset:
		w("unread counter reset: no reply needed")
	case StepTaskAnswered:
		w("an unanswered streak from this message on was already answered (task " + string(s.Task) + " done): no task")
	case StepWarning:
		w("warning: " + s.Text)
	case StepCovering:
		w(string(s.User) + " covers")
		if s.Decision != nil {
			w(" for " + string(s.Decision.Why.Owner))
			if s.Decision.Why.Away != "" {
				w(", who is away (" + string(s.Decision.Why.Away) + ")")
			}
		}
		w("; the responsible stays")
	case StepNoRecord:
		w("the engine has no record of the chat's client: nothing read")
	case StepDealClosed:
		w("deal " + string(s.Deal) + " is closed or gone in the CRM and no other deal is open: offer, hold, escalation clock and place in the queue forgotten")
	case StepNewResponsible:
		w("open deal " + string(s.Deal) + " changed hands in the CRM: " + strconv.Quote(s.Text) + " to " + string(s.User))
	default:
		w("step " + strconv.Itoa(int(s.Kind)))
	}
}

func writeUsers(b *strings.Builder, us []crm.UserID) {
	b.WriteByte('[')
	for i, u := range us {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(string(u))
	}
	b.WriteByte(']')
}
