// Command lindungi-oidc is the OpenID provider of development and the tests: the example provider
// of github.com/zitadel/oidc/v3 (its in-memory storage, login page and protocol endpoints) with
// Lindungi's people as users and its missions as client-credentials clients, read from the same
// missions.yaml and users.yaml as the development credentials (password or secret: dev-<id>).
//
// Every access token is a JWT for the audience "lindungi" (LINDUNGI_OIDC_AUDIENCE) carrying
// lindungi_roles, lindungi_provinces (region users) and lindungi_mission (mission clients and
// mission users): what shared/oidc.py maps onto the same Principal the hashed credentials give.
// Client "other-app" (secret dev-other-app) gets tokens for another audience only: the tests use
// it to show that services refuse them.
//
// Not for production: users, secrets and the signing key live in memory and the key is new at
// each start (services fetch it again from the JWKS on an unknown kid).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"go.yaml.in/yaml/v3"
)

const consoleClientID = "lindungi-console"

type entry struct {
	ID        string   `yaml:"id"`
	Name      string   `yaml:"name"`
	Roles     []string `yaml:"roles"`
	Provinces []string `yaml:"provinces"`
	Countries []string `yaml:"countries"`
}

// person is who may sign in (a user of users.yaml or a mission of missions.yaml) and what their
// tokens say about them.
type person struct {
	entry
	mission bool
}

func (p person) claims() map[string]any {
	c := map[string]any{"name": p.Name}
	if p.mission {
		c["lindungi_roles"] = []string{"mission"}
		c["lindungi_mission"] = p.ID
		return c
	}
	c["lindungi_roles"] = p.Roles
	if len(p.Provinces) > 0 {
		c["lindungi_provinces"] = p.Provinces
	}
	return c
}

func load(dir string) (map[string]person, error) {
	people := map[string]person{}
	for _, f := range []struct {
		file, key string
		mission   bool
	}{{"users.yaml", "users", false}, {"missions.yaml", "missions", true}} {
		data, err := os.ReadFile(filepath.Join(dir, f.file))
		if err != nil {
			return nil, err
		}
		var doc map[string][]entry
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", f.file, err)
		}
		for _, e := range doc[f.key] {
			people[e.ID] = person{entry: e, mission: f.mission}
		}
	}
	return people, nil
}

// users is the storage.UserStore of the example storage: username = id, password = dev-<id>.
type users map[string]*storage.User

func (u users) GetUserByID(id string) *storage.User         { return u[id] }
func (u users) GetUserByUsername(name string) *storage.User { return u[name] }
func (u users) ExampleClientID() string                     { return "service" }

// machine is a client-credentials client (a mission's system, or "other-app").
type machine struct {
	id, secret string
	audience   []string
}

func (m *machine) GetID() string                       { return m.id }
func (m *machine) RedirectURIs() []string              { return nil }
func (m *machine) PostLogoutRedirectURIs() []string    { return nil }
func (m *machine) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (m *machine) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (m *machine) ResponseTypes() []oidc.ResponseType  { return nil }
func (m *machine) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeClientCredentials}
}
func (m *machine) LoginURL(string) string                                       { return "" }
func (m *machine) AccessTokenType() op.AccessTokenType                          { return op.AccessTokenTypeJWT }
func (m *machine) IDTokenLifetime() time.Duration                               { return time.Hour }
func (m *machine) DevMode() bool                                                { return true }
func (m *machine) ClockSkew() time.Duration                                     { return 0 }
func (m *machine) IDTokenUserinfoClaimsAssertion() bool                         { return false }
func (m *machine) IsScopeAllowed(string) bool                                   { return false }
func (m *machine) RestrictAdditionalIdTokenScopes() func([]string) []string     { return keep }
func (m *machine) RestrictAdditionalAccessTokenScopes() func([]string) []string { return keep }

func keep(s []string) []string { return s }

// jwtClient is the console's client: the example's web client, with JWT access tokens and
// redirect URIs on any loopback port (tests start the console on free ports).
type jwtClient struct{ op.Client }

func (c jwtClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }
func (c jwtClient) RedirectURIGlobs() []string {
	return []string{"http://127.0.0.1:*/auth/oidc/callback", "http://localhost:*/auth/oidc/callback"}
}
func (c jwtClient) PostLogoutRedirectURIGlobs() []string { return []string{"http://127.0.0.1:*/**"} }

// authRequest adds the API audience to the access token's audience, never to the ID token's
// (an ID token is for the console alone and must not serve as a bearer token at the services).
// The op package asks the same request for both: for the access token right after our
// CreateAccessToken (which sets forAccess), for the ID token after that; GetAudience answers
// with the API audience once after each CreateAccessToken.
type authRequest struct {
	*storage.AuthRequest
	audience  string
	forAccess bool
}

func (a *authRequest) GetAudience() []string {
	if a.forAccess {
		a.forAccess = false
		return []string{a.AuthRequest.ApplicationID, a.audience}
	}
	return []string{a.AuthRequest.ApplicationID}
}

// lindungiStorage is the example storage with Lindungi's clients, audience and claims.
type lindungiStorage struct {
	*storage.Storage
	people   map[string]person
	machines map[string]*machine
	audience string
	lifetime time.Duration // of access tokens (the example's are 5 minutes)
}

func (s *lindungiStorage) wrap(r op.AuthRequest, err error) (op.AuthRequest, error) {
	if err != nil {
		return nil, err
	}
	if inner, ok := r.(*storage.AuthRequest); ok {
		return &authRequest{AuthRequest: inner, audience: s.audience}, nil
	}
	return r, nil
}

// forAccess marks a wrapped request as about to be asked for an access token's audience and
// gives the example storage its own request.
func forAccess(r op.TokenRequest) op.TokenRequest {
	if a, ok := r.(*authRequest); ok {
		a.forAccess = true
		return a.AuthRequest
	}
	return r
}

func (s *lindungiStorage) CreateAuthRequest(ctx context.Context, r *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	return s.wrap(s.Storage.CreateAuthRequest(ctx, r, userID))
}

func (s *lindungiStorage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	return s.wrap(s.Storage.AuthRequestByID(ctx, id))
}

func (s *lindungiStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	return s.wrap(s.Storage.AuthRequestByCode(ctx, code))
}

func (s *lindungiStorage) CreateAccessToken(ctx context.Context, r op.TokenRequest) (string, time.Time, error) {
	id, _, err := s.Storage.CreateAccessToken(ctx, forAccess(r))
	return id, time.Now().Add(s.lifetime), err
}

func (s *lindungiStorage) CreateAccessAndRefreshTokens(ctx context.Context, r op.TokenRequest, current string) (string, string, time.Time, error) {
	return s.Storage.CreateAccessAndRefreshTokens(ctx, forAccess(r), current)
}

func (s *lindungiStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	if m, ok := s.machines[id]; ok {
		return m, nil
	}
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return jwtClient{c}, nil
}

func (s *lindungiStorage) ClientCredentials(_ context.Context, id, secret string) (op.Client, error) {
	m, ok := s.machines[id]
	if !ok || m.secret != secret {
		return nil, errors.New("wrong client id or secret")
	}
	return m, nil
}

func (s *lindungiStorage) ClientCredentialsTokenRequest(_ context.Context, id string, scopes []string) (op.TokenRequest, error) {
	m, ok := s.machines[id]
	if !ok {
		return nil, errors.New("wrong client id or secret")
	}
	return &oidc.JWTTokenRequest{Subject: m.id, Audience: m.audience, Scopes: scopes}, nil
}

func (s *lindungiStorage) GetPrivateClaimsFromScopes(_ context.Context, userID, _ string, _ []string) (map[string]any, error) {
	if p, ok := s.people[userID]; ok {
		return p.claims(), nil
	}
	return map[string]any{}, nil
}

func (s *lindungiStorage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, r op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, info, r, scopes); err != nil {
		return err
	}
	if p, ok := s.people[r.GetSubject()]; ok {
		info.Name = p.Name
		for k, v := range p.claims() {
			info.AppendClaims(k, v)
		}
	}
	return nil
}

func main() {
	port := flag.String("port", "9096", "port on 127.0.0.1")
	issuer := flag.String("issuer", "", "issuer URL (default http://127.0.0.1:<port>/)")
	dir := flag.String("credentials", "shared/data", "folder with missions.yaml and users.yaml")
	audience := flag.String("audience", "lindungi", "audience of every Lindungi access token")
	lifetime := flag.Duration("token-lifetime", time.Hour, "lifetime of access tokens")
	consoleSecret := flag.String("console-secret", "dev-"+consoleClientID, "the console client's secret")
	flag.Parse()
	if *issuer == "" {
		*issuer = fmt.Sprintf("http://127.0.0.1:%s/", *port)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	people, err := load(*dir)
	if err != nil {
		logger.Error("cannot read the directory", "error", err)
		os.Exit(1)
	}
	store := users{}
	machines := map[string]*machine{
		"other-app": {id: "other-app", secret: "dev-other-app", audience: []string{"other-app"}},
	}
	ids := make([]string, 0, len(people))
	for id, p := range people {
		ids = append(ids, id)
		store[id] = &storage.User{ID: id, Username: id, Password: "dev-" + id, FirstName: p.Name, EmailVerified: true}
		if p.mission {
			machines[id] = &machine{id: id, secret: "dev-" + id, audience: []string{id, *audience}}
		}
	}
	sort.Strings(ids)
	storage.RegisterClients(storage.WebClient(consoleClientID, *consoleSecret, "http://127.0.0.1:8000/auth/oidc/callback"))
	s := &lindungiStorage{Storage: storage.NewStorage(store), people: people, machines: machines, audience: *audience, lifetime: *lifetime}
	router := exampleop.SetupServer(*issuer, s, logger, false)
	server := &http.Server{Addr: "127.0.0.1:" + *port, Handler: router, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "lindungi-oidc: issuer %s, %d people, audience %s\n", *issuer, len(ids), *audience)
	if err := server.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("server stopped", "error", err)
		os.Exit(1)
	}
}
