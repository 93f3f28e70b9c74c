module github.com/crmbridge/crmbridge

go 1.26.0

require (
	github.com/google/go-cmp v0.7.0
	github.com/nyaruka/phonenumbers v1.8.1
	golang.org/x/net v0.62.0
	golang.org/x/text v0.43.0
	golang.org/x/time v0.16.0
)

require google.golang.org/protobuf v1.36.11 // indirect
