// Package phone normalises phone numbers typed into a CRM and matches them
// against messenger chat IDs. (Work in progress: full documentation follows.)
package phone
