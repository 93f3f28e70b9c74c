package phone

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// Sentinel errors. Every error returned by [Parse] and [ParseChatID] is a
// *[ParseError] that matches exactly one of them with [errors.Is].
var (
	// ErrEmpty: the input holds nothing but whitespace and punctuation.
	ErrEmpty = errors.New("phone: empty number")
	// ErrTooShort: the number has fewer than [MinDigits] digits (for example
	// "112" or "+7").
	ErrTooShort = errors.New("phone: number too short")
	// ErrTooLong: the input is longer than [MaxInputRunes] runes, or the
	// number has more than [MaxDigits] digits (often two numbers typed into
	// one field).
	ErrTooLong = errors.New("phone: number too long")
	// ErrInvalid: the input is not a valid phone number under any reading the
	// options allow (no digits, unknown country code, unassigned range, or a
	// leading 8 with [Options.DisableEightAsSeven] set).
	ErrInvalid = errors.New("phone: invalid number")
)

// ParseError is the error type returned by [Parse] and [ParseChatID]. It
// matches its sentinel Err with [errors.Is] and unwraps to it; its message
// quotes the input.
type ParseError struct {
	// Input is the string that was parsed, unchanged.
	Input string
	// Err is one of ErrEmpty, ErrTooShort, ErrTooLong, ErrInvalid.
	Err error
	// Alternative is a valid reading that the options ruled out: with
	// [Options.DisableEightAsSeven] set, the +7 reading of a number written
	// with a leading 8 ("8 916 123-45-67" → +79161234567). Zero otherwise.
	Alternative Number
}

// Error returns a message naming the problem and quoting the input (inputs
// longer than 64 runes are shortened with "…").
func (e *ParseError) Error() string {
	in := e.Input
	if utf8.RuneCountInString(in) > MaxInputRunes {
		n := 0
		for i := range in {
			if n == MaxInputRunes {
				in = in[:i] + "…"
				break
			}
			n++
		}
	}
	msg := e.Err.Error() + " " + strconv.Quote(in)
	if e.Alternative.IsValid() {
		msg += " (a leading 8 read as +7 would give " + e.Alternative.E164() + ", but DisableEightAsSeven is set)"
	}
	return msg
}

// Unwrap returns the sentinel.
func (e *ParseError) Unwrap() error { return e.Err }

// Is reports whether target is e's sentinel.
func (e *ParseError) Is(target error) bool { return target == e.Err }
