package httpapi_test

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/httpapi"
)

// This file checks every API route against every kind of caller. The
// expectations below are written from the product's rules, not from authz,
// so that a wrong action in routes.go or a wrong decision in authz shows up
// as an unexpected allow or deny.

// role is an org or project role as this test understands it.
type role int

const (
	none role = iota
	reader
	developer
	maintainer
	owner
)

func (r role) String() string {
	return [...]string{"none", "reader", "developer", "maintainer", "owner"}[r]
}

// access says who may call a route.
type access struct {
	level level
	role  role // at org and project level: the least role needed
}

type level int

const (
	anyone    level = iota + 1 // anonymous callers too
	signedIn                   // any signed-in user or service account
	people                     // any signed-in person, not service accounts
	self                       // any signed-in caller, acting on their own account
	siteAdmin                  // site administrators only
	orgLevel                   // a role in the org named by {org}
	projLevel                  // a role in {org}/{project}: the org role or a project grant
)

var (
	public     = access{level: anyone}
	anyUser    = access{level: signedIn}
	humans     = access{level: people}
	ownAccount = access{level: self}
	admins     = access{level: siteAdmin}
)

func org(r role) access     { return access{level: orgLevel, role: r} }
func project(r role) access { return access{level: projLevel, role: r} }

// expect is a route's row: who may call it, the token scope it needs ("" for
// public routes) and the body to send when the default does not fit. The
// default body is "{}" for routes that take one: it passes authorisation and
// then fails validation (a 400 counts as allowed), so nothing changes.
type expect struct {
	who   access
	scope string
	body  string
}

var loginBody = `{"username":"signer","password":"` + apptest.UserPassword + `","token_name":"matrix"}`

// routeRules lists every API route. A route without a row fails the test:
// classify new routes here (one line each). Path wildcards are filled from
// the fixtures where pathValue knows them ({org}, {project}, {team},
// {username}, service-account {name} and token {id}) and with a name of
// nothing otherwise, which is enough to check authorisation.
var routeRules = map[string]expect{
	"POST /api/v1/auth/login":         {public, "", loginBody},
	"GET /api/v1/scopes":              {public, "", ""},
	"GET /api/v1/openapi.json":        {public, "", ""},
	"GET /api/v1/user":                {ownAccount, "user:read", ""},
	"PATCH /api/v1/user":              {ownAccount, "user:write", ""},
	"POST /api/v1/user/password":      {ownAccount, "admin", ""},
	"GET /api/v1/user/tokens":         {ownAccount, "user:read", ""},
	"POST /api/v1/user/tokens":        {ownAccount, "user:write", ""},
	"DELETE /api/v1/user/tokens/{id}": {ownAccount, "user:write", ""},

	"GET /api/v1/users":              {anyUser, "user:read", ""},
	"POST /api/v1/users":             {admins, "admin", ""},
	"GET /api/v1/users/{username}":   {anyUser, "user:read", ""},
	"PATCH /api/v1/users/{username}": {admins, "admin", ""},

	"GET /api/v1/orgs":                             {anyUser, "org:read", ""},
	"POST /api/v1/orgs":                            {humans, "org:write", ""},
	"GET /api/v1/orgs/{org}":                       {org(reader), "org:read", ""},
	"PATCH /api/v1/orgs/{org}":                     {org(owner), "org:write", ""},
	"DELETE /api/v1/orgs/{org}":                    {org(owner), "org:write", ""},
	"GET /api/v1/orgs/{org}/members":               {org(reader), "org:read", ""},
	"PUT /api/v1/orgs/{org}/members/{username}":    {org(owner), "org:write", ""},
	"DELETE /api/v1/orgs/{org}/members/{username}": {org(owner), "org:write", ""},
	"GET /api/v1/orgs/{org}/audit":                 {org(owner), "audit:read", ""},

	"GET /api/v1/orgs/{org}/teams":                              {org(reader), "org:read", ""},
	"POST /api/v1/orgs/{org}/teams":                             {org(owner), "org:write", ""},
	"DELETE /api/v1/orgs/{org}/teams/{team}":                    {org(owner), "org:write", ""},
	"GET /api/v1/orgs/{org}/teams/{team}/members":               {org(reader), "org:read", ""},
	"PUT /api/v1/orgs/{org}/teams/{team}/members/{username}":    {org(owner), "org:write", ""},
	"DELETE /api/v1/orgs/{org}/teams/{team}/members/{username}": {org(owner), "org:write", ""},

	"GET /api/v1/orgs/{org}/projects":                                      {org(reader), "org:read", ""},
	"POST /api/v1/orgs/{org}/projects":                                     {org(maintainer), "org:write", ""},
	"GET /api/v1/orgs/{org}/projects/{project}":                            {project(reader), "org:read", ""},
	"DELETE /api/v1/orgs/{org}/projects/{project}":                         {project(owner), "org:write", ""},
	"GET /api/v1/orgs/{org}/projects/{project}/grants":                     {project(reader), "org:read", ""},
	"PUT /api/v1/orgs/{org}/projects/{project}/grants/users/{username}":    {project(maintainer), "org:write", ""},
	"DELETE /api/v1/orgs/{org}/projects/{project}/grants/users/{username}": {project(maintainer), "org:write", ""},
	"PUT /api/v1/orgs/{org}/projects/{project}/grants/teams/{team}":        {project(maintainer), "org:write", ""},
	"DELETE /api/v1/orgs/{org}/projects/{project}/grants/teams/{team}":     {project(maintainer), "org:write", ""},

	"GET /api/v1/orgs/{org}/service-accounts":                       {org(reader), "org:read", ""},
	"POST /api/v1/orgs/{org}/service-accounts":                      {org(owner), "org:write", ""},
	"DELETE /api/v1/orgs/{org}/service-accounts/{name}":             {org(owner), "org:write", ""},
	"GET /api/v1/orgs/{org}/service-accounts/{name}/tokens":         {org(owner), "org:write", ""},
	"POST /api/v1/orgs/{org}/service-accounts/{name}/tokens":        {org(owner), "org:write", ""},
	"DELETE /api/v1/orgs/{org}/service-accounts/{name}/tokens/{id}": {org(owner), "org:write", ""},

	"GET /api/v1/audit":         {admins, "audit:read", ""},
	"GET /api/v1/audit/export":  {admins, "audit:read", ""},
	"POST /api/v1/audit/verify": {admins, "audit:read", ""},

	"GET /api/v1/orgs/{org}/idps":                        {org(reader), "org:read", ""},
	"POST /api/v1/orgs/{org}/idps":                       {org(owner), "org:write", ""},
	"GET /api/v1/orgs/{org}/idps/{name}":                 {org(reader), "org:read", ""},
	"GET /api/v1/orgs/{org}/realm":                       {org(owner), "org:read", ""},
	"PUT /api/v1/orgs/{org}/realm":                       {org(owner), "org:write", ""},
	"DELETE /api/v1/orgs/{org}/realm":                    {org(owner), "org:write", ""},
	"POST /api/v1/orgs/{org}/realm/rotate-key":           {org(owner), "org:write", ""},
	"GET /api/v1/orgs/{org}/realm/users":                 {org(owner), "org:read", ""},
	"DELETE /api/v1/orgs/{org}/realm/users/{id}":         {org(owner), "org:write", ""},
	"POST /api/v1/orgs/{org}/realm/users/{id}/reset-mfa": {org(owner), "org:write", ""},
	"GET /api/v1/orgs/{org}/realm/providers":             {org(owner), "org:read", ""},
	"PUT /api/v1/orgs/{org}/realm/providers/{name}":      {org(owner), "org:write", ""},
	"DELETE /api/v1/orgs/{org}/realm/providers/{name}":   {org(owner), "org:write", ""},
	"GET /api/v1/realms/{org}/jwks":                      {public, "", ""},
	"DELETE /api/v1/orgs/{org}/idps/{name}":              {org(owner), "org:write", ""},

	"GET /api/v1/oidc/clients":         {admins, "admin", ""},
	"POST /api/v1/oidc/clients":        {admins, "admin", ""},
	"GET /api/v1/oidc/clients/{id}":    {admins, "admin", ""},
	"DELETE /api/v1/oidc/clients/{id}": {admins, "admin", ""},
	"GET /api/v1/oidc/keys":            {admins, "admin", ""},
	"POST /api/v1/oidc/keys/rotate":    {admins, "admin", ""},

	"GET /api/v1/orgs/{org}/workitems":             {org(reader), "repo:read", ""},
	"POST /api/v1/orgs/{org}/workitems":            {org(developer), "repo:write", ""},
	"GET /api/v1/orgs/{org}/workitems/{number}":    {org(reader), "repo:read", ""},
	"PATCH /api/v1/orgs/{org}/workitems/{number}":  {org(developer), "repo:write", ""},
	"DELETE /api/v1/orgs/{org}/workitems/{number}": {org(maintainer), "repo:write", ""},

	"GET /api/v1/orgs/{org}/alerts":                                      {org(developer), "repo:read", ""},
	"GET /api/v1/orgs/{org}/alerts/overview":                             {org(developer), "repo:read", ""},
	"POST /api/v1/orgs/{org}/alerts/scan":                                {org(maintainer), "repo:write", ""},
	"GET /api/v1/orgs/{org}/alerts/{id}":                                 {org(developer), "repo:read", ""},
	"POST /api/v1/orgs/{org}/alerts/{id}/dismiss":                        {org(maintainer), "repo:write", ""},
	"POST /api/v1/orgs/{org}/alerts/{id}/reopen":                         {org(maintainer), "repo:write", ""},
	"POST /api/v1/orgs/{org}/alerts/{id}/workitem":                       {org(developer), "repo:write", ""},
	"GET /api/v1/gateway/routes":                                         {admins, "admin", ""},
	"GET /api/v1/gateway/routes/{name}":                                  {admins, "admin", ""},
	"PUT /api/v1/gateway/routes/{name}":                                  {admins, "admin", ""},
	"DELETE /api/v1/gateway/routes/{name}":                               {admins, "admin", ""},
	"DELETE /api/v1/gateway/routes/by-id/{id}":                           {admins, "admin", ""},
	"GET /api/v1/gateway/events":                                         {admins, "audit:read", ""},
	"GET /api/v1/orgs/{org}/projects/{project}/gateway/routes":           {project(reader), "org:read", ""},
	"GET /api/v1/orgs/{org}/projects/{project}/gateway/routes/{name}":    {project(reader), "org:read", ""},
	"PUT /api/v1/orgs/{org}/projects/{project}/gateway/routes/{name}":    {org(owner), "org:write", ""},
	"DELETE /api/v1/orgs/{org}/projects/{project}/gateway/routes/{name}": {org(owner), "org:write", ""},
	// Delivery (package deploy): readers see environments, releases and
	// deployments; developers release and deploy; maintainers approve;
	// owners set environments, their rules and service connections.
	"GET /api/v1/orgs/{org}/projects/{project}/environments":                     {project(reader), "pipeline:read", ""},
	"GET /api/v1/orgs/{org}/projects/{project}/environments/{env}":               {project(reader), "pipeline:read", ""},
	"PUT /api/v1/orgs/{org}/projects/{project}/environments/{env}":               {project(owner), "org:write", ""},
	"DELETE /api/v1/orgs/{org}/projects/{project}/environments/{env}":            {project(owner), "org:write", ""},
	"PUT /api/v1/orgs/{org}/projects/{project}/environments/{env}/connection":    {project(owner), "org:write", ""},
	"DELETE /api/v1/orgs/{org}/projects/{project}/environments/{env}/connection": {project(owner), "org:write", ""},
	"GET /api/v1/orgs/{org}/projects/{project}/environments/{env}/instances":     {project(reader), "pipeline:read", ""},
	"POST /api/v1/orgs/{org}/projects/{project}/environments/{env}/rollback":     {project(developer), "pipeline:write", ""},
	"GET /api/v1/orgs/{org}/projects/{project}/releases":                         {project(reader), "pipeline:read", ""},
	"POST /api/v1/orgs/{org}/projects/{project}/releases":                        {project(developer), "pipeline:write", ""},
	"GET /api/v1/orgs/{org}/projects/{project}/releases/{number}":                {project(reader), "pipeline:read", ""},
	"GET /api/v1/orgs/{org}/projects/{project}/releases/{number}/diff":           {project(reader), "pipeline:read", ""},
	"GET /api/v1/orgs/{org}/projects/{project}/deployments":                      {project(reader), "pipeline:read", ""},
	"POST /api/v1/orgs/{org}/projects/{project}/deployments":                     {project(developer), "pipeline:write", ""},
	"GET /api/v1/orgs/{org}/projects/{project}/deployments/{id}":                 {project(reader), "pipeline:read", ""},
	"POST /api/v1/orgs/{org}/projects/{project}/deployments/{id}/approvals":      {project(maintainer), "pipeline:write", ""},
	// Source hosting (package scm): the fixture repository {repo} belongs
	// to the org directly, so org roles decide.
	"GET /api/v1/orgs/{org}/repos":                                                        {org(reader), "org:read", ""},
	"POST /api/v1/orgs/{org}/repos":                                                       {org(maintainer), "repo:write", ""},
	"GET /api/v1/orgs/{org}/repos/{repo}":                                                 {org(reader), "repo:read", ""},
	"PATCH /api/v1/orgs/{org}/repos/{repo}":                                               {org(maintainer), "repo:write", ""},
	"DELETE /api/v1/orgs/{org}/repos/{repo}":                                              {org(owner), "repo:write", ""},
	"GET /api/v1/orgs/{org}/repos/{repo}/branches":                                        {org(reader), "repo:read", ""},
	"GET /api/v1/orgs/{org}/repos/{repo}/commits":                                         {org(reader), "repo:read", ""},
	"GET /api/v1/orgs/{org}/repos/{repo}/protections":                                     {org(reader), "repo:read", ""},
	"PUT /api/v1/orgs/{org}/repos/{repo}/protections":                                     {org(maintainer), "repo:write", ""},
	"DELETE /api/v1/orgs/{org}/repos/{repo}/protections":                                  {org(maintainer), "repo:write", ""},
	"GET /api/v1/orgs/{org}/repos/{repo}/statuses/{sha}":                                  {org(reader), "repo:read", ""},
	"POST /api/v1/orgs/{org}/repos/{repo}/statuses/{sha}":                                 {org(developer), "repo:write", ""},
	"GET /api/v1/orgs/{org}/repos/{repo}/pulls":                                           {org(reader), "repo:read", ""},
	"POST /api/v1/orgs/{org}/repos/{repo}/pulls":                                          {org(developer), "repo:write", ""},
	"GET /api/v1/orgs/{org}/repos/{repo}/pulls/{number}":                                  {org(reader), "repo:read", ""},
	"PATCH /api/v1/orgs/{org}/repos/{repo}/pulls/{number}":                                {org(developer), "repo:write", ""},
	"GET /api/v1/orgs/{org}/repos/{repo}/pulls/{number}/files":                            {org(reader), "repo:read", ""},
	"GET /api/v1/orgs/{org}/repos/{repo}/pulls/{number}/findings":                         {org(reader), "repo:read", ""},
	"GET /api/v1/orgs/{org}/repos/{repo}/pulls/{number}/reviews":                          {org(reader), "repo:read", ""},
	"POST /api/v1/orgs/{org}/repos/{repo}/pulls/{number}/reviews":                         {org(developer), "repo:write", ""},
	"GET /api/v1/orgs/{org}/repos/{repo}/pulls/{number}/comments":                         {org(reader), "repo:read", ""},
	"POST /api/v1/orgs/{org}/repos/{repo}/pulls/{number}/comments":                        {org(developer), "repo:write", ""},
	"PUT /api/v1/orgs/{org}/repos/{repo}/pulls/{number}/merge":                            {org(developer), "repo:write", ""},
	"GET /api/v1/orgs/{org}/repos/{repo}/hooks":                                           {org(maintainer), "repo:write", ""},
	"POST /api/v1/orgs/{org}/repos/{repo}/hooks":                                          {org(maintainer), "repo:write", ""},
	"DELETE /api/v1/orgs/{org}/repos/{repo}/hooks/{id}":                                   {org(maintainer), "repo:write", ""},
	"GET /api/v1/orgs/{org}/repos/{repo}/hooks/{id}/deliveries":                           {org(maintainer), "repo:write", ""},
	"POST /api/v1/orgs/{org}/repos/{repo}/hooks/{id}/deliveries/{delivery}/redeliver":     {org(maintainer), "repo:write", ""},
	"GET /api/v1/orgs/{org}/hooks":                                                        {org(owner), "org:write", ""},
	"POST /api/v1/orgs/{org}/hooks":                                                       {org(owner), "org:write", ""},
	"DELETE /api/v1/orgs/{org}/hooks/{id}":                                                {org(owner), "org:write", ""},
	"GET /api/v1/orgs/{org}/hooks/{id}/deliveries":                                        {org(owner), "org:write", ""},
	"POST /api/v1/orgs/{org}/hooks/{id}/deliveries/{delivery}/redeliver":                  {org(owner), "org:write", ""},
	"GET /api/v1/user/ssh-keys":                                                           {ownAccount, "user:read", ""},
	"POST /api/v1/user/ssh-keys":                                                          {ownAccount, "user:write", ""},
	"DELETE /api/v1/user/ssh-keys/{id}":                                                   {ownAccount, "user:write", ""},
	"GET /api/v1/policy":                                                                  {anyUser, "org:read", ""},
	"POST /api/v1/policy/reload":                                                          {admins, "admin", ""},
	"GET /api/v1/policy/gates/{gate}/schema":                                              {anyUser, "org:read", ""},
	"POST /api/v1/orgs/{org}/policy/decisions":                                            {org(developer), "policy:decide", ""},
	"POST /api/v1/orgs/{org}/policy/evaluate":                                             {org(reader), "org:read", ""},
	"GET /api/v1/orgs/{org}/policy/decisions":                                             {org(reader), "org:read", ""},
	"GET /api/v1/orgs/{org}/policy/decisions/{id}":                                        {org(reader), "org:read", ""},
	"POST /api/v1/orgs/{org}/admission/{environment}":                                     {org(developer), "policy:decide", ""},
	"GET /api/v1/orgs/{org}/exceptions":                                                   {org(reader), "org:read", ""},
	"POST /api/v1/orgs/{org}/exceptions":                                                  {org(owner), "org:write", ""},
	"DELETE /api/v1/orgs/{org}/exceptions/{number}":                                       {org(owner), "org:write", ""},
	"GET /api/v1/orgs/{org}/registry/repositories":                                        {org(reader), "registry:pull", ""},
	"GET /api/v1/orgs/{org}/registry/repositories/{repo}":                                 {org(reader), "registry:pull", ""},
	"PUT /api/v1/orgs/{org}/registry/repositories/{repo}":                                 {org(maintainer), "registry:push", `{"public":false}`},
	"POST /api/v1/orgs/{org}/registry/repositories/{repo}/retention":                      {org(maintainer), "registry:push", ""},
	"POST /api/v1/orgs/{org}/registry/repositories/{repo}/signatures":                     {org(developer), "registry:push", ""},
	"GET /api/v1/orgs/{org}/registry/repositories/{repo}/manifests/{digest}/verification": {org(reader), "registry:pull", ""},
	"GET /api/v1/orgs/{org}/registry/repositories/{repo}/manifests/{digest}/report":       {org(reader), "registry:pull", ""},
	"GET /api/v1/orgs/{org}/registry/repositories/{repo}/manifests/{digest}/sbom":         {org(reader), "registry:pull", ""},
	"GET /api/v1/orgs/{org}/registry/quota":                                               {org(reader), "registry:pull", ""},
	"PUT /api/v1/orgs/{org}/registry/quota":                                               {org(owner), "org:write", `{"max_bytes":0}`},
	"GET /api/v1/registry/signing-key":                                                    {public, "", ""},
	"POST /api/v1/registry/gc":                                                            {admins, "admin", ""},
	// Pipelines (package pipeline), on the fixture repository.
	"GET /api/v1/orgs/{org}/repos/{repo}/pipelines/runs":                               {org(reader), "pipeline:read", ""},
	"POST /api/v1/orgs/{org}/repos/{repo}/pipelines/runs":                              {org(developer), "pipeline:write", ""},
	"GET /api/v1/orgs/{org}/repos/{repo}/pipelines/runs/{number}":                      {org(reader), "pipeline:read", ""},
	"POST /api/v1/orgs/{org}/repos/{repo}/pipelines/runs/{number}/cancel":              {org(developer), "pipeline:write", ""},
	"POST /api/v1/orgs/{org}/repos/{repo}/pipelines/runs/{number}/rerun":               {org(developer), "pipeline:write", ""},
	"GET /api/v1/orgs/{org}/repos/{repo}/pipelines/runs/{number}/jobs/{job}/log":       {org(reader), "pipeline:read", ""},
	"GET /api/v1/orgs/{org}/repos/{repo}/pipelines/runs/{number}/jobs/{job}/artifacts": {org(reader), "pipeline:read", ""},
	"POST /api/v1/runners/jobs":                                                        {admins, "runner", `{"runner":"r1","executors":["host"],"wait_seconds":1}`},
	"GET /api/v1/runners/jobs/{job}/source":                                            {admins, "runner", ""},
	"POST /api/v1/runners/jobs/{job}/log":                                              {admins, "runner", ""},
	"POST /api/v1/runners/jobs/{job}/finish":                                           {admins, "runner", ""},
	// The vault: roles manage secrets; reading a value also needs a vault
	// policy (the fixtures have none, so reveals end in 404 or 403 after
	// authorisation — see internal/vault's tests).
	"GET /api/v1/orgs/{org}/secrets":                                                {org(reader), "vault:read", ""},
	"GET /api/v1/orgs/{org}/secrets/{name}":                                         {org(reader), "vault:read", ""},
	"PUT /api/v1/orgs/{org}/secrets/{name}":                                         {org(maintainer), "vault:write", ""},
	"DELETE /api/v1/orgs/{org}/secrets/{name}":                                      {org(maintainer), "vault:write", ""},
	"POST /api/v1/orgs/{org}/secrets/{name}/reveal":                                 {org(reader), "vault:read", ""},
	"GET /api/v1/orgs/{org}/secrets/{name}/versions":                                {org(reader), "vault:read", ""},
	"POST /api/v1/orgs/{org}/secrets/{name}/rotate":                                 {org(maintainer), "vault:write", ""},
	"POST /api/v1/orgs/{org}/secrets/{name}/rollback":                               {org(maintainer), "vault:write", ""},
	"GET /api/v1/orgs/{org}/projects/{project}/secrets":                             {project(reader), "vault:read", ""},
	"GET /api/v1/orgs/{org}/projects/{project}/secrets/{name}":                      {project(reader), "vault:read", ""},
	"PUT /api/v1/orgs/{org}/projects/{project}/secrets/{name}":                      {project(maintainer), "vault:write", ""},
	"DELETE /api/v1/orgs/{org}/projects/{project}/secrets/{name}":                   {project(maintainer), "vault:write", ""},
	"POST /api/v1/orgs/{org}/projects/{project}/secrets/{name}/reveal":              {project(reader), "vault:read", ""},
	"GET /api/v1/orgs/{org}/projects/{project}/secrets/{name}/versions":             {project(reader), "vault:read", ""},
	"POST /api/v1/orgs/{org}/projects/{project}/secrets/{name}/rotate":              {project(maintainer), "vault:write", ""},
	"POST /api/v1/orgs/{org}/projects/{project}/secrets/{name}/rollback":            {project(maintainer), "vault:write", ""},
	"GET /api/v1/orgs/{org}/projects/{project}/envs/{env}/secrets":                  {project(reader), "vault:read", ""},
	"GET /api/v1/orgs/{org}/projects/{project}/envs/{env}/secrets/{name}":           {project(reader), "vault:read", ""},
	"PUT /api/v1/orgs/{org}/projects/{project}/envs/{env}/secrets/{name}":           {project(maintainer), "vault:write", ""},
	"DELETE /api/v1/orgs/{org}/projects/{project}/envs/{env}/secrets/{name}":        {project(maintainer), "vault:write", ""},
	"POST /api/v1/orgs/{org}/projects/{project}/envs/{env}/secrets/{name}/reveal":   {project(reader), "vault:read", ""},
	"GET /api/v1/orgs/{org}/projects/{project}/envs/{env}/secrets/{name}/versions":  {project(reader), "vault:read", ""},
	"POST /api/v1/orgs/{org}/projects/{project}/envs/{env}/secrets/{name}/rotate":   {project(maintainer), "vault:write", ""},
	"POST /api/v1/orgs/{org}/projects/{project}/envs/{env}/secrets/{name}/rollback": {project(maintainer), "vault:write", ""},
	"GET /api/v1/orgs/{org}/vault/policies":                                         {org(reader), "vault:read", ""},
	"PUT /api/v1/orgs/{org}/vault/policies/{name}":                                  {org(owner), "vault:write", ""},
	"DELETE /api/v1/orgs/{org}/vault/policies/{name}":                               {org(owner), "vault:write", ""},
	"GET /api/v1/orgs/{org}/vault/leaks":                                            {org(reader), "vault:read", ""},
	"GET /api/v1/orgs/{org}/projects/{project}/vault/settings":                      {project(reader), "vault:read", ""},
	"PATCH /api/v1/orgs/{org}/projects/{project}/vault/settings":                    {project(maintainer), "vault:write", ""},
	"GET /api/v1/orgs/{org}/projects/{project}/signing-keys":                        {project(reader), "vault:read", ""},
	"POST /api/v1/orgs/{org}/projects/{project}/signing-keys":                       {project(maintainer), "vault:write", ""},
	"GET /api/v1/orgs/{org}/projects/{project}/signing-keys/{name}":                 {project(reader), "vault:read", ""},
	"DELETE /api/v1/orgs/{org}/projects/{project}/signing-keys/{name}":              {project(maintainer), "vault:write", ""},
	"POST /api/v1/orgs/{org}/projects/{project}/signing-keys/{name}/sign":           {project(maintainer), "vault:write", ""},
	"GET /api/v1/vault/site-key":                                                    {public, "", ""},
	"GET /api/v1/vault/kek":                                                         {admins, "admin", ""},
	"POST /api/v1/vault/kek/rotate":                                                 {admins, "admin", ""},
}

// allows reports whether the row lets s call the route on org target
// ("" for routes outside orgs).
func (a access) allows(s *subject, target string) bool {
	if a.level == anyone {
		return true
	}
	if s.user == "" {
		return false
	}
	if s.siteAdmin { // site administrators may do everything
		return true
	}
	switch a.level {
	case signedIn, self:
		return true
	case people:
		return !s.service
	case orgLevel:
		return s.orgRoles[target] >= a.role
	case projLevel:
		return max(s.orgRoles[target], s.projectRoles[target+"/"+fixtureProject]) >= a.role
	}
	return false
}

var wildcardRE = regexp.MustCompile(`\{([a-z]+)\}`)

// TestRoutes_AuthorisationMatrix calls every route of the running app as
// every kind of caller, on their own org and on another, and fails on any
// allow or deny the table does not expect.
func TestRoutes_AuthorisationMatrix(t *testing.T) { eachStore(t, testAuthorisationMatrix) }

func testAuthorisationMatrix(t *testing.T, store apptest.Option) {
	start := time.Now()
	w := newWorld(t, store)
	routes := w.a.API.Routes()
	seen := map[string]bool{}
	for _, rt := range routes {
		key := rt.Method + " " + rt.Path
		seen[key] = true
		rule, ok := routeRules[key]
		if !ok {
			t.Errorf("route %s has no row in routeRules: say who may call it", key)
			continue
		}
		if rule.who.level == orgLevel || rule.who.level == projLevel {
			if rule.who.role == none || !strings.Contains(rt.Path, "{org}") {
				t.Errorf("row %s: org and project rules need a role and an {org} in the path", key)
				continue
			}
		}
		t.Run(strings.ReplaceAll(key, "/", "_"), func(t *testing.T) {
			targets := []string{""}
			if strings.Contains(rt.Path, "{org}") {
				targets = []string{"acme", "globex"}
			}
			for _, s := range w.subjects {
				for _, target := range targets {
					w.check(t, rt, rule, s, target)
				}
			}
		})
	}
	for key := range routeRules {
		if !seen[key] {
			t.Errorf("routeRules has a row for %s, which the app does not serve", key)
		}
	}
	t.Logf("%d routes checked in %s", len(routes), time.Since(start).Round(time.Millisecond))
}

// TestRoutes_TokenScopes checks that a token lacking a route's scope is
// refused even for a caller who may otherwise use the route, and that the
// scope alone is enough.
func TestRoutes_TokenScopes(t *testing.T) {
	w := newWorld(t)
	var scopes []string
	var list []httpapi.Scope
	w.a.Client(t, "").Must(http.StatusOK, "GET", httpapi.Prefix+"/scopes", nil).Decode(t, &list)
	for _, sc := range list {
		scopes = append(scopes, sc.Name)
	}
	for _, rt := range w.a.API.Routes() {
		key := rt.Method + " " + rt.Path
		rule, ok := routeRules[key]
		if !ok || rule.scope == "" {
			continue // missing rows fail TestRoutes_AuthorisationMatrix
		}
		t.Run(strings.ReplaceAll(key, "/", "_"), func(t *testing.T) {
			target := ""
			if strings.Contains(rt.Path, "{org}") {
				target = "acme"
			}
			// The acme owner, or the site admin where even an owner may not.
			s := w.subject("owner")
			if !rule.who.allows(s, target) {
				s = w.subject("admin")
			}
			var without []string
			for _, sc := range scopes {
				if sc != rule.scope && sc != "admin" {
					without = append(without, sc)
				}
			}
			lacking := *s
			lacking.token = w.scopedToken(t, s.user, without)
			before := w.a.Mark(t)
			res := w.call(t, rt, rule, &lacking, target)
			if res.Status != http.StatusForbidden {
				t.Errorf("%s as %s with a token lacking %q = %d, want 403: %s", key, s.user, rule.scope, res.Status, brief(res.Body))
				w.afterCall(t, rt, true)
			} else {
				if p := problemOf(t, res); !strings.Contains(p.Detail, rule.scope) {
					t.Errorf("%s without scope: detail %q does not name the scope %q", key, p.Detail, rule.scope)
				}
				before.Unchanged(t)
			}

			only := *s
			only.token = w.scopedToken(t, s.user, []string{rule.scope})
			res = w.call(t, rt, rule, &only, target)
			if res.Status == http.StatusUnauthorized || res.Status == http.StatusForbidden || res.Status >= 500 {
				t.Errorf("%s as %s with only %q = %d, want it allowed: %s", key, s.user, rule.scope, res.Status, brief(res.Body))
			}
			w.afterCall(t, rt, true)
		})
	}
}

// check makes one call and compares the outcome with the table.
func (w *world) check(t *testing.T, rt httpapi.Route, rule expect, s *subject, target string) {
	t.Helper()
	who := s.label()
	if target != "" {
		who += " on " + target
	}
	head := w.auditHead(t)
	res := w.call(t, rt, rule, s, target)
	if res.Status >= 500 {
		t.Errorf("%s %s as %s = %d: %s", rt.Method, rt.Path, who, res.Status, brief(res.Body))
	}
	denied := res.Status == http.StatusUnauthorized || res.Status == http.StatusForbidden
	want := rule.who.allows(s, target)
	switch {
	case want && denied:
		t.Errorf("%s %s as %s = %d, want allowed: %s", rt.Method, rt.Path, who, res.Status, brief(res.Body))
	case !want && !denied:
		t.Errorf("UNEXPECTED ALLOW: %s %s as %s = %d: %s", rt.Method, rt.Path, who, res.Status, brief(res.Body))
	case !denied && res.Status == http.StatusNotFound && w.realPath(rt.Path, s, target):
		// Every path value names an existing fixture: a 404 means a
		// fixture was lost, and later cases would prove nothing.
		t.Errorf("%s %s as %s = 404 on existing fixtures: %s", rt.Method, rt.Path, who, brief(res.Body))
	case denied:
		wantStatus := http.StatusForbidden
		if s.user == "" {
			wantStatus = http.StatusUnauthorized
		}
		if res.Status != wantStatus {
			t.Errorf("%s %s as %s = %d, want %d: %s", rt.Method, rt.Path, who, res.Status, wantStatus, brief(res.Body))
		}
		if p := problemOf(t, res); p.Detail == "" {
			t.Errorf("%s %s as %s: denial without a detail: %s", rt.Method, rt.Path, who, brief(res.Body))
		}
		// A refused call changes nothing, so it leaves no successful
		// audit entry behind.
		for _, e := range w.auditSince(t, head) {
			if e.Outcome == audit.Success {
				t.Errorf("%s %s as %s was refused but audited %s %s", rt.Method, rt.Path, who, e.Action, e.TargetName)
			}
		}
	}
	w.afterCall(t, rt, !denied)
}

// call sends rt as s, with path values from the fixtures of target.
func (w *world) call(t *testing.T, rt httpapi.Route, rule expect, s *subject, target string) apptest.Response {
	t.Helper()
	path := wildcardRE.ReplaceAllStringFunc(rt.Path, func(m string) string {
		v, _ := w.pathValue(m[1:len(m)-1], rt.Path, s, target)
		return v
	})
	var body any
	switch {
	case rule.body != "":
		body = rule.body
	case rt.Request != nil:
		body = "{}"
	}
	return w.a.Client(t, s.token).Do(rt.Method, path, body)
}

// pathValue fills a path wildcard with an existing fixture, so that an
// allowed call reaches real data. fixture is false when the value names
// nothing: a wildcard this test has no fixture for, whose value does not
// matter for authorisation (it happens before the handler looks it up).
func (w *world) pathValue(name, path string, s *subject, target string) (value string, fixture bool) {
	switch name {
	case "org":
		return target, true
	case "project":
		return fixtureProject, true
	case "team":
		return fixtureTeam, true
	case "repo":
		// The fixture is a git repository; there is no image repository
		// fixture, so registry routes may answer 404 after authorising.
		if !strings.Contains(path, "/registry/") {
			return fixtureRepo, true
		}
	case "username":
		return bystander, true
	case "name":
		if strings.Contains(path, "/service-accounts/{name}") {
			return target + "-bot-" + disposableBot, true
		}
	case "id":
		switch {
		case strings.Contains(path, "/service-accounts/{name}/tokens/{id}"):
			return strconv.FormatInt(w.botTokens[target], 10), true
		case strings.Contains(path, "/user/tokens/{id}") && s.user != "":
			return strconv.FormatInt(s.spareID, 10), true
		}
	}
	return "no-such-" + name, false
}

// realPath reports whether every wildcard of path is filled with an
// existing fixture for s.
func (w *world) realPath(path string, s *subject, target string) bool {
	for _, m := range wildcardRE.FindAllStringSubmatch(path, -1) {
		if _, ok := w.pathValue(m[1], path, s, target); !ok {
			return false
		}
	}
	return true
}

// brief shortens a response body for a failure message.
func brief(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// afterCall restores the fixtures after a call that may have changed them.
func (w *world) afterCall(t *testing.T, rt httpapi.Route, allowed bool) {
	t.Helper()
	if allowed && rt.Method != http.MethodGet {
		w.restore(t)
	}
}

func (s *subject) label() string {
	switch {
	case s.user == "":
		return "anonymous"
	case s.service:
		return "service account " + s.user
	}
	return s.user
}

func (w *world) subject(name string) *subject {
	i := slices.IndexFunc(w.subjects, func(s *subject) bool { return s.user == name })
	return w.subjects[i]
}

// TestRoutes_CrossReferences names, in a path of one's own org or account,
// things that belong to another org or user: each is refused and changes
// nothing.
func TestRoutes_CrossReferences(t *testing.T) {
	w := newWorld(t)
	p := httpapi.Prefix
	globexBotToken := strconv.FormatInt(w.botTokens["globex"], 10)
	tests := []struct {
		name, as, method, path, body string
		status                       int
	}{
		{"list another org's bot tokens", "owner", "GET", p + "/orgs/acme/service-accounts/globex-bot-deploy/tokens", "", 404},
		{"mint a token for another org's bot", "owner", "POST", p + "/orgs/acme/service-accounts/globex-bot-deploy/tokens", `{"name":"x","scopes":["repo:read"]}`, 404},
		{"delete another org's bot", "owner", "DELETE", p + "/orgs/acme/service-accounts/globex-bot-deploy", "", 404},
		{"revoke another org's bot token", "owner", "DELETE", p + "/orgs/acme/service-accounts/acme-bot-deploy/tokens/" + globexBotToken, "", 404},
		{"revoke another user's token", "owner", "DELETE", p + "/user/tokens/" + strconv.FormatInt(w.subject("maintainer").spareID, 10), "", 404},
		{"add another org's bot as member", "owner", "PUT", p + "/orgs/acme/members/globex-bot-deploy", `{"role":"reader"}`, 400},
		{"grant a project role to another org's bot", "owner", "PUT", p + "/orgs/acme/projects/web/grants/users/globex-bot-deploy", `{"role":"reader"}`, 400},
		{"add a non-member to a team", "owner", "PUT", p + "/orgs/acme/teams/devs/members/outsider", "", 400},
		{"remove a non-member from a team", "owner", "DELETE", p + "/orgs/acme/teams/devs/members/globex-owner", "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := w.auditHead(t)
			var body any
			if tt.body != "" {
				body = tt.body
			}
			res := w.a.Client(t, w.subject(tt.as).token).Do(tt.method, tt.path, body)
			if res.Status != tt.status {
				t.Fatalf("%s %s = %d, want %d: %s", tt.method, tt.path, res.Status, tt.status, brief(res.Body))
			}
			if p := problemOf(t, res); p.Detail == "" {
				t.Errorf("no detail: %s", brief(res.Body))
			}
			for _, e := range w.auditSince(t, head) {
				t.Errorf("refused call audited %s %s %s", e.Action, e.Outcome, e.TargetName)
			}
			w.restore(t)
		})
	}
}

// TestRoutes_NoGrantAboveOwnRole checks that whoever may hand out project
// roles cannot hand out one above their own (and so cannot promote
// themselves).
func TestRoutes_NoGrantAboveOwnRole(t *testing.T) {
	w := newWorld(t)
	grants := httpapi.Prefix + "/orgs/acme/projects/web/grants/"
	tests := []struct {
		name, as, path, role string
		status               int
	}{
		{"project maintainer makes self owner", "projlead", grants + "users/projlead", "owner", 403},
		{"project maintainer makes another owner", "projlead", grants + "users/bystander", "owner", 403},
		{"maintainer through a team makes the team owner", "teamlead", grants + "teams/devs", "owner", 403},
		{"org maintainer makes another owner", "maintainer", grants + "users/bystander", "owner", 403},
		{"project maintainer grants maintainer", "projlead", grants + "users/bystander", "maintainer", 204},
		{"org maintainer grants maintainer to a team", "maintainer", grants + "teams/devs", "maintainer", 204},
		{"org owner grants owner", "owner", grants + "users/bystander", "owner", 204},
		{"site admin grants owner", "admin", grants + "users/bystander", "owner", 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := w.auditHead(t)
			res := w.a.Client(t, w.subject(tt.as).token).Do("PUT", tt.path, `{"role":"`+tt.role+`"}`)
			if res.Status != tt.status {
				t.Fatalf("PUT %s as %s = %d, want %d: %s", tt.path, tt.as, res.Status, tt.status, brief(res.Body))
			}
			if tt.status == http.StatusForbidden {
				if p := problemOf(t, res); !strings.Contains(p.Detail, tt.role) {
					t.Errorf("detail %q does not explain the refused role", p.Detail)
				}
				for _, e := range w.auditSince(t, head) {
					t.Errorf("refused grant audited %s %s %s", e.Action, e.Outcome, e.TargetName)
				}
			}
			w.restore(t)
		})
	}
}

// TestRoutes_NoRevokingAboveOwnRole: a grant above the caller's role can be
// neither lowered nor taken away by them.
func TestRoutes_NoRevokingAboveOwnRole(t *testing.T) {
	w := newWorld(t)
	grants := httpapi.Prefix + "/orgs/acme/projects/web/grants/"
	admin := w.a.Client(t, w.subject("admin").token)
	admin.Must(http.StatusNoContent, "PUT", grants+"users/bystander", `{"role":"owner"}`)
	admin.Must(http.StatusNoContent, "PUT", grants+"teams/devs", `{"role":"owner"}`)
	defer w.restore(t)
	lead := w.a.Client(t, w.subject("projlead").token)
	for _, tt := range []struct{ method, path, body string }{
		{"DELETE", grants + "users/bystander", ""},
		{"PUT", grants + "users/bystander", `{"role":"reader"}`},
		{"DELETE", grants + "teams/devs", ""},
		{"PUT", grants + "teams/devs", `{"role":"reader"}`},
	} {
		var body any
		if tt.body != "" {
			body = tt.body
		}
		if res := lead.Do(tt.method, tt.path, body); res.Status != http.StatusForbidden {
			t.Errorf("%s %s by a project maintainer = %d, want 403: %s", tt.method, tt.path, res.Status, brief(res.Body))
		}
	}
	var gs []httpapi.Grant
	admin.Must(http.StatusOK, "GET", strings.TrimSuffix(grants, "/"), nil).Decode(t, &gs)
	owners := 0
	for _, g := range gs {
		if g.Role == "owner" {
			owners++
		}
	}
	if owners != 2 {
		t.Errorf("grants after refused changes = %+v, want both owner grants intact", gs)
	}
}
