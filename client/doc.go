// Package client is Switchboard's Go client: it reaches a service's common
// address, gets the directory of every node, picks a node itself, attaches
// to it, and keeps the session alive across failures.
package client
