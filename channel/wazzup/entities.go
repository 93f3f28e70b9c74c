package wazzup

// User is an employee as Wazzup knows them (POST /v3/users): the ID is
// the CRM user's ID, which Wazzup shows as the author of messages sent
// with that crmUserId and uses as responsibleUserId.
type User struct {
	// ID is the CRM user ID, at most 100 characters.
	ID string `json:"id"`
	// Name is shown in Wazzup's chat window, at most 200 characters.
	Name string `json:"name"`
	// Phone, international digits, lets the user log in to Wazzup's
	// mobile app; optional.
	Phone string `json:"phone,omitempty"`
}

// ContactChat is one chat of a contact (contactData[] of a contact).
type ContactChat struct {
	// ChatType is Wazzup's chat type: whatsapp, telegram, instagram, vk,
	// avito, viber, max ([ChatType] of the channel's kind).
	ChatType string `json:"chatType"`
	// ChatID is the client's chat ID; for Telegram it may be empty when
	// Username or Phone is set.
	ChatID string `json:"chatId,omitempty"`
	// Username is a Telegram username without "@".
	Username string `json:"username,omitempty"`
	// Phone is a Telegram contact's phone, international digits.
	Phone string `json:"phone,omitempty"`
}

// Contact is a client as Wazzup knows them (POST /v3/contacts): Wazzup
// shows the contact's chats to its responsible user.
type Contact struct {
	// ID is the CRM contact ID, at most 100 characters.
	ID string `json:"id"`
	// ResponsibleUserID is the ID of the User responsible for the client.
	ResponsibleUserID string `json:"responsibleUserId"`
	// Name is at most 200 characters.
	Name string `json:"name"`
	// Chats are the client's chats (at least one).
	Chats []ContactChat `json:"contactData"`
	// URI links to the contact in the CRM, at most 200 characters.
	URI string `json:"uri,omitempty"`
}

// Deal is a deal as Wazzup knows it (POST /v3/deals); Wazzup lists the
// deals of a contact in the chat window, and a deal's responsible user
// sees the contact's chats too.
type Deal struct {
	// ID is the CRM deal ID, at most 100 characters.
	ID string `json:"id"`
	// ResponsibleUserID is the ID of the User responsible for the deal.
	ResponsibleUserID string `json:"responsibleUserId"`
	// Name is at most 200 characters.
	Name string `json:"name"`
	// URI links to the deal in the CRM.
	URI string `json:"uri"`
	// Contacts are the IDs of the deal's contacts.
	Contacts []string `json:"contacts"`
	// Closed is true for a won or lost deal.
	Closed bool `json:"closed"`
}
