// Package token mints and verifies the signed tokens that name a
// Switchboard user: a JWT (RFC 7519) signed with Ed25519 ("alg": "EdDSA")
// whose claims are
//
//	sub    the user name (required)
//	aud    the service's common name (required; a node accepts only its own)
//	exp    when the token stops being accepted (required)
//	iat    when it was minted
//	nbf    not before (optional)
//	rooms  the rooms the user may join (optional; absent or empty: any)
//
// The issuer holds the private key and the nodes only the public one, so
// a node that is broken into cannot mint tokens. Any JWT library that
// signs EdDSA can mint tokens for Switchboard; Mint is what `switchboard
// token` uses.
//
// The package is internal: clients carry tokens as opaque strings and
// never parse them, and issuers may use any JWT library, so the format
// (documented in docs/security.md) is the contract, not this API.
//
// Verify is pure: it takes the time as an argument and touches no file
// or network, and is safe for concurrent use.
package token

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard/switchboard/wire"
)

// MaxLen is the longest token accepted, in bytes.
const MaxLen = 4096

// Leeway is the clock skew allowed between the issuer and the nodes when
// checking exp and nbf.
const Leeway = 30 * time.Second

// Errors Verify returns, for errors.Is. Each says what is wrong without
// echoing the token.
var (
	// ErrMalformed: not a JWT (an alg no JWT library knows included), or
	// claims of the wrong types.
	ErrMalformed = errors.New("token: malformed")
	// ErrSignature: not signed with EdDSA by one of the service's keys:
	// forged, from another issuer, or of another algorithm (none, HMAC,
	// RSA, ECDSA).
	ErrSignature = errors.New("token: signature not valid for this service's key")
	// ErrExpired: past its exp.
	ErrExpired = errors.New("token: expired")
	// ErrNotYetValid: before its nbf.
	ErrNotYetValid = errors.New("token: not valid yet")
	// ErrAudience: made for another service, or for none (no aud, or an
	// empty one).
	ErrAudience = errors.New("token: not made for this service (aud)")
	// ErrClaims: a required claim is missing or invalid (sub, exp, rooms).
	ErrClaims = errors.New("token: missing or invalid claims")
)

// Claims is what a token says.
type Claims struct {
	// User is the user name (sub).
	User string
	// Service is the service the token is for (aud).
	Service string
	// Expires is when the token stops being accepted (exp).
	Expires time.Time
	// Rooms lists the rooms the user may join; empty means any.
	Rooms []string
}

// RoomAllowed reports whether the claims let the user join room.
func (c Claims) RoomAllowed(room string) bool {
	return len(c.Rooms) == 0 || slices.Contains(c.Rooms, room)
}

// jwtClaims is the JSON form.
type jwtClaims struct {
	jwt.RegisteredClaims
	Rooms []string `json:"rooms,omitempty"`
}

// Mint signs c with key. c.User, c.Service and c.Expires are required;
// now becomes iat. Claims that Verify would refuse (a user or a room
// name it does not take) are refused here, so that no token is minted
// that every node refuses, and so are rooms no join can name
// (wire.RoomNameProblem).
func Mint(key ed25519.PrivateKey, c Claims, now time.Time) (string, error) {
	if err := checkUser(c.User); err != nil {
		return "", err
	}
	for _, r := range c.Rooms {
		// Stricter than Verify, which takes what issuers already minted:
		// a room no join can name would be a token's claim for nothing.
		if why := wire.RoomNameProblem(r); why != "" {
			return "", fmt.Errorf("token: minting: room %q: %s: %w", r, why, ErrClaims)
		}
	}
	if c.Service == "" {
		return "", fmt.Errorf("token: minting: no service: %w", ErrClaims)
	}
	if !c.Expires.After(now) {
		return "", fmt.Errorf("token: minting: expiry %v is not after %v: %w", c.Expires, now, ErrClaims)
	}
	if len(key) != ed25519.PrivateKeySize {
		return "", fmt.Errorf("token: minting: the key is not an Ed25519 private key: %w", ErrClaims)
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   c.User,
			Audience:  jwt.ClaimStrings{c.Service},
			ExpiresAt: jwt.NewNumericDate(c.Expires),
			IssuedAt:  jwt.NewNumericDate(now),
		},
		Rooms: c.Rooms,
	})
	s, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("token: signing: %w", err)
	}
	if len(s) > MaxLen {
		// Verify refuses it as malformed: a token no node would take.
		return "", fmt.Errorf("token: minting: %d bytes, more than the %d a node takes (fewer or shorter rooms): %w", len(s), MaxLen, ErrClaims)
	}
	return s, nil
}

// Subject returns the user a token names (its sub), reading it without
// checking the signature or any other claim: for a client that needs
// the name to attach under before a node verifies the token. A token
// that does not parse, or names no user a node takes, is an error
// (ErrMalformed, ErrClaims).
func Subject(s string) (string, error) {
	if s == "" || len(s) > MaxLen {
		return "", fmt.Errorf("token: empty or longer than %d bytes: %w", MaxLen, ErrMalformed)
	}
	var c jwtClaims
	if _, _, err := jwt.NewParser().ParseUnverified(s, &c); err != nil {
		return "", fmt.Errorf("token: reading its user: %w: %v", ErrMalformed, err)
	}
	if err := checkUser(c.Subject); err != nil {
		return "", err
	}
	return c.Subject, nil
}

// Verifier checks tokens for one service.
type Verifier struct {
	keys    jwt.VerificationKeySet
	service string
}

// NewVerifier returns a verifier of tokens signed by key for service.
func NewVerifier(key ed25519.PublicKey, service string) (*Verifier, error) {
	return NewKeySetVerifier([]ed25519.PublicKey{key}, service)
}

// NewKeySetVerifier returns a verifier of tokens signed by any of keys
// for service: while an issuer moves to a new key, the nodes accept
// tokens signed by the old one or the new.
func NewKeySetVerifier(keys []ed25519.PublicKey, service string) (*Verifier, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("token: a verifier needs a key: %w", ErrClaims)
	}
	v := &Verifier{service: service}
	for _, key := range keys {
		if len(key) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("token: the key is not an Ed25519 public key: %w", ErrClaims)
		}
		v.keys.Keys = append(v.keys.Keys, key)
	}
	if service == "" {
		return nil, fmt.Errorf("token: a verifier needs the service name: %w", ErrClaims)
	}
	return v, nil
}

// Keys is how many keys v accepts tokens from.
func (v *Verifier) Keys() int { return len(v.keys.Keys) }

// Verify checks s at time now and returns its claims. Its errors wrap one
// of the package's sentinels.
func (v *Verifier) Verify(s string, now time.Time) (Claims, error) {
	if s == "" || len(s) > MaxLen {
		return Claims{}, fmt.Errorf("token: empty or longer than %d bytes: %w", MaxLen, ErrMalformed)
	}
	var jc jwtClaims
	_, err := jwt.ParseWithClaims(s, &jc, func(*jwt.Token) (any, error) { return v.keys, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithAudience(v.service),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenMalformed), errors.Is(err, jwt.ErrTokenUnverifiable):
		return Claims{}, fmt.Errorf("%w", ErrMalformed)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return Claims{}, fmt.Errorf("%w", ErrSignature)
	case errors.Is(err, jwt.ErrTokenExpired):
		return Claims{}, fmt.Errorf("%w", ErrExpired)
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return Claims{}, fmt.Errorf("%w", ErrNotYetValid)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return Claims{}, fmt.Errorf("%w (want %q)", ErrAudience, v.service)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && !slices.ContainsFunc(jc.Audience, func(a string) bool { return a != "" }):
		// No aud, or only "": the token names no service.
		return Claims{}, fmt.Errorf("%w: it names none (want %q)", ErrAudience, v.service)
	default:
		return Claims{}, fmt.Errorf("%w", ErrClaims)
	}
	if err := checkUser(jc.Subject); err != nil {
		return Claims{}, err
	}
	if err := checkRooms(jc.Rooms); err != nil {
		return Claims{}, err
	}
	return Claims{User: jc.Subject, Service: v.service, Expires: jc.ExpiresAt.Time, Rooms: jc.Rooms}, nil
}

// checkRooms applies the rule for the rooms a token allows: each name 1
// to wire.MaxRoomName bytes, as the protocol's room names are.
func checkRooms(rooms []string) error {
	for _, r := range rooms {
		if r == "" || len(r) > wire.MaxRoomName {
			return fmt.Errorf("token: a room name in rooms is empty or longer than %d bytes: %w", wire.MaxRoomName, ErrClaims)
		}
	}
	return nil
}

// checkUser applies the protocol's rule for user names: 1 to 64 bytes,
// no control characters or U+FFFD.
func checkUser(user string) error {
	if user == "" || len(user) > 64 || strings.IndexFunc(user, func(r rune) bool {
		return unicode.IsControl(r) || r == unicode.ReplacementChar
	}) >= 0 {
		return fmt.Errorf("token: the user (sub) is empty, longer than 64 bytes or has control characters: %w", ErrClaims)
	}
	return nil
}
