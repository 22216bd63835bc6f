// Package wire defines Switchboard's client protocol messages and their
// newline-delimited JSON codec (protocol version 1, docs/protocol.md).
//
// Every message is one JSON object on one line with an "op" field. A
// LineReader cuts a byte stream into lines no longer than a limit; Decode
// turns one line into a Message and says, with a *Error carrying a protocol
// error code, what was wrong with it; Append encodes a Message as one line.
//
// The package is pure: it reads from an io.Reader it is given and never
// opens a connection. A LineReader is used by one goroutine at a time.
package wire
