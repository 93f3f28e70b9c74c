package phone_test

import (
	"errors"
	"fmt"

	"github.com/crmbridge/crmbridge/phone"
)

// A Moscow landline written with a leading 8 is also a valid Vietnamese
// number. Parse picks the reading the options prefer and says so.
func ExampleParse_ambiguous() {
	n, err := phone.Parse("8 (495) 123-45-67", phone.Options{})
	if err != nil {
		panic(err)
	}
	fmt.Println(n, n.Region(), n.Ambiguous())
	fmt.Println("or", n.Alternative(), n.Alternative().Region())

	// With the "leading 8 counts as +7" setting off, the tie goes the other way.
	n, _ = phone.Parse("8 (495) 123-45-67", phone.Options{DisableEightAsSeven: true})
	fmt.Println(n, n.Region(), "or", n.Alternative())
	// Output:
	// +74951234567 RU true
	// or +84951234567 VN
	// +84951234567 VN or +74951234567
}

func ExampleParse() {
	for _, s := range []string{"8 (916) 123-45-67", "89161234567;", "+7 495 123-45-67 доб. 12", "8 10 86 138 0013 8000", "112"} {
		n, err := phone.Parse(s, phone.Options{})
		fmt.Printf("%q → %v %v\n", s, n, err)
	}
	// Output:
	// "8 (916) 123-45-67" → +79161234567 <nil>
	// "89161234567;" → +79161234567 <nil>
	// "+7 495 123-45-67 доб. 12" → +74951234567 ext. 12 <nil>
	// "8 10 86 138 0013 8000" → +8613800138000 <nil>
	// "112" →  phone: number too short "112"
}

func ExampleMatch() {
	chat, _ := phone.ParseChatID("79161234567") // a WhatsApp chat ID
	contact := []string{"+7 903 765-43-21", "8 (916) 123-45-67"}

	i, ok := phone.Match(chat, contact, phone.Options{})
	fmt.Println(i, ok)
	i, ok = phone.Match(chat, contact, phone.Options{DisableEightAsSeven: true})
	fmt.Println(i, ok)
	// Output:
	// 1 true
	// -1 false
}

func ExampleParseError() {
	_, err := phone.Parse("8 916 123-45-67", phone.Options{DisableEightAsSeven: true})
	fmt.Println(errors.Is(err, phone.ErrInvalid))
	if pe, ok := errors.AsType[*phone.ParseError](err); ok {
		fmt.Println(pe.Input, "→ could be", pe.Alternative)
	}
	// Output:
	// true
	// 8 916 123-45-67 → could be +79161234567
}
