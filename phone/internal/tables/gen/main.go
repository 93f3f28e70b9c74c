// Command gen writes phone's table.go from the phonenumbers metadata. It
// is run by go generate in package phone:
//
//	go generate ./phone
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/crmbridge/crmbridge/phone/internal/tables"
)

func main() {
	out := flag.String("o", "table.go", "output file")
	flag.Parse()
	src, err := tables.Generate()
	if err == nil {
		err = os.WriteFile(*out, src, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
