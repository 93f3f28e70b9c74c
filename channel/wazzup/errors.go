package wazzup

import (
	"errors"
	"fmt"
	"strings"

	"github.com/crmbridge/crmbridge/channel"
)

// APIError is a failure response of the Wazzup API, with the vendor's code
// kept. It matches (errors.Is) exactly one sentinel of package channel,
// chosen from Status and Code as the package documentation's table says.
type APIError struct {
	// Op is the request, e.g. "POST /v3/message".
	Op string
	// Status is the HTTP status code.
	Status int
	// Code is Wazzup's error code ("CHANNEL_NOT_FOUND"), empty when the
	// body had none.
	Code string
	// Description is Wazzup's short English description, if any.
	Description string
	// RequestID is Wazzup's request ID, if any; quote it to support.
	RequestID string
	// Fields names the rejected request fields (data.fields), if any.
	Fields []string
}

// Error implements the error interface.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "wazzup: %s: %d", e.Op, e.Status)
	if e.Code != "" {
		b.WriteString(" ")
		b.WriteString(e.Code)
	}
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	if len(e.Fields) > 0 {
		fmt.Fprintf(&b, " (fields: %s)", strings.Join(e.Fields, ", "))
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [request %s]", e.RequestID)
	}
	return b.String()
}

// Is reports whether target is the channel sentinel this error is
// classified as, or ErrWindowClosed for the codes of a closed reply
// window.
func (e *APIError) Is(target error) bool {
	return target == e.Sentinel() || (target == ErrWindowClosed && windowCode(e.Code))
}

// ErrWindowClosed matches a send refused, or a delivery failed, because
// the messenger's reply window is closed: 24_HOURS_EXCEEDED on the
// WhatsApp Business API 24 hours after the client's last message,
// 7_DAYS_EXCEEDED on Instagram. Such errors also match
// channel.ErrRejected. On WhatsApp Business only an approved template
// may be sent until the client writes again.
var ErrWindowClosed = errors.New("wazzup: the messenger's reply window is closed")

// windowCode reports whether code says the reply window is closed.
func windowCode(code string) bool {
	switch normCode(code) {
	case normCode("24_HOURS_EXCEEDED"), normCode("7_DAYS_EXCEEDED"):
		return true
	}
	return false
}

// Sentinel returns the channel sentinel (channel.ErrInvalid,
// channel.ErrNotFound, …) this error is classified as.
func (e *APIError) Sentinel() error {
	return classify(e.Status, e.Code)
}

// normCode folds the two spellings Wazzup uses for one code
// ("REPEATED_CRM_MESSAGE_ID", "repeatedCrmMessageId") into one key.
func normCode(code string) string {
	return strings.ToLower(strings.ReplaceAll(code, "_", ""))
}

// codeRepeated is the normalised code of a repeated crmMessageId.
var codeRepeated = normCode("REPEATED_CRM_MESSAGE_ID")

// codeClass maps Wazzup's documented send error codes (normalised) to the
// channel sentinels. Codes not listed fall back on the HTTP status.
var codeClass = func() map[string]error {
	m := map[string]error{}
	add := func(err error, codes ...string) {
		for _, c := range codes {
			m[normCode(c)] = err
		}
	}
	add(channel.ErrInvalid,
		"INVALID_MESSAGE_DATA", "VALIDATION_ERROR", "WRONG_TRANSPORT",
		"MESSAGE_WRONG_CONTENT_TYPE", "MESSAGE_ONLY_TEXT_OR_CONTENT",
		"MESSAGES_ONLY_TEXT_OR_CONTENT", "MESSAGE_NOTHING_TO_SEND",
		"MESSAGE_TEXT_TOO_LONG", "MESSAGES_TOO_LONG_INSTAGRAM",
		"MESSAGES_TOO_LONG_TELEGRAM", "MESSAGES_TOO_LONG_WABA",
		"MESSAGES_TOO_LONG_VK", "MESSAGES_TOO_LONG_AVITO",
		"MESSAGES_TOO_LONG_VIBER", "MESSAGES_TOO_LONG_WABA_HEADER",
		"MESSAGES_TOO_LONG_WABA_TEMPLATE",
		"MESSAGES_UNSUPPORTED_CONTENT_TYPE_INSTAPI",
		"MESSAGES_CONTENT_CAN_NOT_BE_BLANK", "MESSAGES_CONTENT_SIZE_EXCEEDED",
		"MESSAGES_CONTENT_SIZE_EXCEEDED_WABA",
		"MESSAGES_CONTENT_SIZE_EXCEEDED_TELEGRAM",
		"MESSAGES_TEXT_CAN_NOT_BE_BLANK", "MESSAGE_DOWNLOAD_CONTENT_ERROR",
		"REFERENCE_MESSAGE_NOT_FOUND", "TOO_MANY_ENTITIES", "INVALID_USERS_DATA",
		"uriNotValid")
	add(channel.ErrNotFound, "CHANNEL_NOT_FOUND")
	add(channel.ErrRejected,
		"BALANCE_IS_EMPTY", "CHANNEL_BLOCKED", "CHANNEL_WAPI_REJECTED",
		"CHANNEL_NO_MONEY", "CHANNEL_LIMIT_EXCEEDED", "MESSAGES_NOT_TEXT_FIRST",
		"MESSAGES_IS_SPAM", "MESSAGES_ABNORMAL_SEND",
		"MESSAGES_INVALID_CONTACT_TYPE", "CHAT_NO_ACCESS", "TEMPLATE_REJECTED",
		"BAD_CONTACT", "CHATID_IGSID_MISMATCH", "24_HOURS_EXCEEDED",
		"7_DAYS_EXCEEDED", "testPostNotPassed")
	add(channel.ErrUnavailable,
		"MESSAGE_CHANNEL_UNAVAILABLE", "MESSAGES_CAN_NOT_ADD", "UNKNOWN_ERROR",
		"UNKNOWN_ERROR_WITH_TRACE_ID")
	return m
}()

// classify picks the channel sentinel for a failure response.
func classify(status int, code string) error {
	switch {
	case status == 401 || status == 403:
		return channel.ErrUnauthorized
	case status == 429:
		return channel.ErrRateLimited
	case status >= 500:
		return channel.ErrUnavailable
	}
	if err, ok := codeClass[normCode(code)]; ok {
		return err
	}
	switch {
	case status == 404:
		return channel.ErrNotFound
	case status == 408:
		return channel.ErrUnavailable
	}
	return channel.ErrRejected
}

// errNoKey is returned by NewSender without an API key.
var errNoKey = errors.New("wazzup: Options.APIKey is empty")
