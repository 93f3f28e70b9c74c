package phone

// parseFast is the fast path of Parse. ok is false when the input is not
// one of the shapes it handles; the caller then takes the library path.
func parseFast(s string, opt Options) (n Number, err error, ok bool) {
	return Number{}, nil, false
}

// parseChatFast is the fast path of ParseChatID.
func parseChatFast(id string) (n Number, err error, ok bool) {
	return Number{}, nil, false
}
