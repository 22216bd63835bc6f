package token_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/switchboard/switchboard/internal/token"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func mint(t testing.TB, key ed25519.PrivateKey, c token.Claims, at time.Time) string {
	t.Helper()
	s, err := token.Mint(key, c, at)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerify(t *testing.T) {
	pub, priv := newKey(t)
	_, other := newKey(t)
	v, err := token.NewVerifier(pub, "chat.test")
	if err != nil {
		t.Fatal(err)
	}
	alice := token.Claims{User: "alice", Service: "chat.test", Expires: now.Add(time.Hour), Rooms: []string{"lobby"}}
	valid := mint(t, priv, alice, now)
	parts := strings.Split(valid, ".")
	// The same claims signed with HMAC, keyed by the public key: the
	// algorithm confusion attack.
	hs, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "aud": "chat.test", "exp": now.Add(time.Hour).Unix()}).SignedString([]byte(pub))
	if err != nil {
		t.Fatal(err)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "alice", "aud": "chat.test", "exp": now.Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	noExp, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"sub": "alice", "aud": "chat.test"}).SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	noSub, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"aud": "chat.test", "exp": now.Add(time.Hour).Unix()}).SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	// aud missing or empty: the token names no service.
	noAud, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"sub": "alice", "exp": now.Add(time.Hour).Unix()}).SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	emptyAud, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"sub": "alice", "aud": "", "exp": now.Add(time.Hour).Unix()}).SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	emptyAudList, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{"sub": "alice", "aud": []string{""}, "exp": now.Add(time.Hour).Unix()}).SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	es256, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "alice", "aud": "chat.test", "exp": now.Add(time.Hour).Unix()}).SignedString(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	unknownAlg := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"XY999","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2]
	tamperedClaims := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"mallory","aud":["chat.test"],"exp":` + "9999999999" + `}`))
	tests := []struct {
		name string
		in   string
		at   time.Time
		want error
	}{
		{"valid", valid, now, nil},
		{"valid within the leeway after exp", valid, now.Add(time.Hour + token.Leeway/2), nil},
		{"expired", valid, now.Add(time.Hour + token.Leeway + time.Second), token.ErrExpired},
		{"issued in the future", valid, now.Add(-time.Hour), token.ErrNotYetValid},
		{"forged: another key", mint(t, other, alice, now), now, token.ErrSignature},
		{"forged: claims changed", parts[0] + "." + tamperedClaims + "." + parts[2], now, token.ErrSignature},
		{"another service", mint(t, priv, token.Claims{User: "alice", Service: "other.test", Expires: now.Add(time.Hour)}, now), now, token.ErrAudience},
		{"HMAC keyed by the public key", hs, now, token.ErrSignature},
		{"alg none", none, now, token.ErrSignature},
		{"no exp", noExp, now, token.ErrClaims},
		{"no sub", noSub, now, token.ErrClaims},
		{"no aud", noAud, now, token.ErrAudience},
		{"aud empty", emptyAud, now, token.ErrAudience},
		{"aud a list of one empty name", emptyAudList, now, token.ErrAudience},
		{"another algorithm: ES256", es256, now, token.ErrSignature},
		{"an algorithm no library knows", unknownAlg, now, token.ErrMalformed},
		{"empty", "", now, token.ErrMalformed},
		{"not a JWT", "hello", now, token.ErrMalformed},
		{"too long", strings.Repeat("a", token.MaxLen+1), now, token.ErrMalformed},
		{"bad base64", "a.b.c", now, token.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(tt.in, tt.at)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify: %v, want %v", err, tt.want)
			}
			if tt.want != nil {
				return
			}
			want := alice
			want.Expires = alice.Expires.Truncate(time.Second)
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("claims (-got +want):\n%s", diff)
			}
		})
	}
}

func TestRoomAllowed(t *testing.T) {
	any := token.Claims{User: "a"}
	some := token.Claims{User: "a", Rooms: []string{"lobby", "ops"}}
	for _, tt := range []struct {
		c    token.Claims
		room string
		want bool
	}{{any, "x", true}, {some, "lobby", true}, {some, "ops", true}, {some, "x", false}} {
		if got := tt.c.RoomAllowed(tt.room); got != tt.want {
			t.Errorf("%v.RoomAllowed(%q) = %v", tt.c.Rooms, tt.room, got)
		}
	}
}

func TestMintRefusesBadClaims(t *testing.T) {
	_, priv := newKey(t)
	for _, c := range []token.Claims{
		{User: "", Service: "s", Expires: now.Add(time.Hour)},
		{User: "a\x00b", Service: "s", Expires: now.Add(time.Hour)},
		{User: "a", Service: "", Expires: now.Add(time.Hour)},
		{User: "a", Service: "s", Expires: now},
		// Rooms Verify refuses: a token every node would refuse.
		{User: "a", Service: "s", Expires: now.Add(time.Hour), Rooms: []string{""}},
		{User: "a", Service: "s", Expires: now.Add(time.Hour), Rooms: []string{"lobby", strings.Repeat("r", 65)}},
		// A room no join can name.
		{User: "a", Service: "s", Expires: now.Add(time.Hour), Rooms: []string{"ops room"}},
		// Rooms enough to sign a token past MaxLen, which Verify
		// refuses as malformed: a token no node would take.
		{User: "a", Service: "s", Expires: now.Add(time.Hour), Rooms: manyRooms(60)},
	} {
		if _, err := token.Mint(priv, c, now); !errors.Is(err, token.ErrClaims) {
			t.Errorf("Mint(%+v): %v, want ErrClaims", c, err)
		}
	}
}

// manyRooms is n room names of 64 bytes each.
func manyRooms(n int) []string {
	rooms := make([]string, n)
	for i := range rooms {
		rooms[i] = fmt.Sprintf("%064d", i)
	}
	return rooms
}

// FuzzVerify feeds the verifier arbitrary strings: it must never panic,
// and whatever it accepts must name a user and carry the fuzz key's
// signature (only the seeds minted below can).
func FuzzVerify(f *testing.F) {
	seed := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	pub := seed.Public().(ed25519.PublicKey)
	v, err := token.NewVerifier(pub, "fuzz.test")
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range []token.Claims{
		{User: "alice", Service: "fuzz.test", Expires: now.Add(time.Hour)},
		{User: "bob", Service: "fuzz.test", Expires: now.Add(time.Hour), Rooms: []string{"lobby"}},
	} {
		f.Add(mint(f, seed, c, now))
	}
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := v.Verify(s, now)
		if err != nil {
			return
		}
		if c.User == "" || c.Service != "fuzz.test" || c.Expires.IsZero() {
			t.Fatalf("accepted %q with claims %+v", s, c)
		}
	})
}

// TestKeySetVerifier: while an issuer changes keys the nodes hold both,
// and a token signed by either is accepted; one signed by any other key
// is a forgery.
func TestKeySetVerifier(t *testing.T) {
	oldPub, oldPriv := newKey(t)
	newPub, newPriv := newKey(t)
	_, otherPriv := newKey(t)
	v, err := token.NewKeySetVerifier([]ed25519.PublicKey{oldPub, newPub}, "chat.example")
	if err != nil {
		t.Fatal(err)
	}
	if v.Keys() != 2 {
		t.Errorf("Keys() = %d, want 2", v.Keys())
	}
	claims := token.Claims{User: "ann", Service: "chat.example", Expires: now.Add(time.Hour)}
	for _, tt := range []struct {
		name string
		key  ed25519.PrivateKey
		want error
	}{
		{"the old key", oldPriv, nil},
		{"the new key", newPriv, nil},
		{"another key", otherPriv, token.ErrSignature},
	} {
		tok, err := token.Mint(tt.key, claims, now)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(tok, now); !errors.Is(err, tt.want) {
			t.Errorf("%s: Verify = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := token.NewKeySetVerifier(nil, "chat.example"); err == nil {
		t.Error("a verifier without keys was made")
	}
}
