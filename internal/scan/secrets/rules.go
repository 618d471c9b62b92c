package secrets

import (
	"encoding/base64"
	"hash/crc32"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/scan/report"
)

// Severity shorthands for the rule table.
const (
	critical = report.SeverityCritical
	high     = report.SeverityHigh
	medium   = report.SeverityMedium
	low      = report.SeverityLow
)

// spec is one row of the rule table; DefaultRules compiles it.
type spec struct {
	id, desc string
	re       string
	kw       []string
	sev      report.Severity
	entropy  float64
	group    int
	reach    int
	generic  bool
	check    func(string) bool
	quick    func([]byte) bool
	allow    []allowSpec
	// placeholders adds the allowlist of obvious placeholder values.
	placeholders bool
}

type allowSpec struct {
	target    Target
	regexes   []string
	stopwords []string
}

// Regex pieces shared by the table.
const (
	uuid = `[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`
	// end of a token made of [A-Za-z0-9_-] (a \b stops at '-').
	tokEnd = `(?:[^A-Za-z0-9_\-]|$)`
	// end of a base64 value.
	b64End = `(?:[^A-Za-z0-9+/=]|$)`
)

// assign matches a value assigned to a name containing key (an RE2
// alternation, matched case-insensitively): `key = "value"`,
// `KEY: value`, `"key": "value"`, `key => 'value'`, `--key value`.
func assign(key, value string) string {
	return `(?i:` + key + `)[\w.\-]{0,30}?[\s'"\x60]{0,3}(?:=|:=|::|:|=>|\?=|,|\s)[\s'"\x60]{0,5}(` + value +
		`)(?:[^A-Za-z0-9_\-+/=]|$)`
}

// connString matches user:password@host after one of schemes.
func connString(schemes string) string {
	return `(?i:\b(?:` + schemes + `)://)[^\s:@/'"<>\x60]{1,128}:([^\s@/'"<>\x60]{3,256})@[\w.\-\[\]:%]+`
}

// placeholderValues are values that stand for a secret without being one.
var placeholderValues = []string{
	`(?i)^(?:\$\{?[\w.:\-]+\}?|\$\(.*\)|%[sv]|%\(\w+\)s|<[^>]*>|\{\{.*\}\}|\{[\w.]*\}|\*+|x+|\.+|#+|_+|-+|` +
		`(?:my|your|the|db|user|admin|some|new|old|example|sample|dummy|fake|test|default)?[_\-]?` +
		`(?:pass|password|passwd|pwd|secret|token|key|changeme|changeit|example|placeholder|redacted|hidden|foobar|` +
		`foo|bar|baz|qux|hunter2)[_\-]?\d{0,3})$`,
}

// ruleTable is Rampart's own rule set, written from the providers'
// documented token formats.
var ruleTable = []spec{
	// Amazon Web Services.
	{id: "aws-access-key-id", desc: "AWS access key ID", sev: high,
		re: `\b((?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16})\b`, kw: []string{"akia", "asia", "abia", "acca", "a3t"},
		allow: []allowSpec{{regexes: []string{`EXAMPLE$`}}}},
	{id: "aws-secret-access-key", desc: "AWS secret access key", sev: critical, entropy: 3.5,
		re: assign(`aws[\w.\-]{0,20}?secret`, `[A-Za-z0-9/+]{40}`), kw: []string{"aws"},
		allow: []allowSpec{{regexes: []string{`EXAMPLEKEY$`}}}},
	{id: "aws-session-token", desc: "AWS session token", sev: high, entropy: 4,
		re: assign(`aws[\w.\-]{0,20}?session[\w.\-]{0,5}token`, `[A-Za-z0-9/+=]{100,1000}`), kw: []string{"aws"}},
	{id: "aws-bedrock-api-key", desc: "Amazon Bedrock API key", sev: high,
		re: `\b(ABSKQmVkcm9ja0FQSUtleS[A-Za-z0-9+/]{40,}={0,2})`, kw: []string{"absk"}},
	{id: "aws-mws-auth-token", desc: "Amazon MWS auth token", sev: high,
		re: `\b(amzn\.mws\.` + uuid + `)\b`, kw: []string{"amzn.mws."}},

	// Google.
	{id: "gcp-api-key", desc: "Google API key", sev: high,
		re: `\b(AIza[0-9A-Za-z_\-]{35})` + tokEnd, kw: []string{"aiza"}},
	{id: "gcp-oauth-client-secret", desc: "Google OAuth client secret", sev: high,
		re: `\b(GOCSPX-[0-9A-Za-z_\-]{28})` + tokEnd, kw: []string{"gocspx-"}},
	{id: "gcp-service-account-key", desc: "Google Cloud service account key", sev: critical,
		re: `"private_key_id"\s*:\s*"([0-9a-f]{40})"`, kw: []string{"private_key_id"}},
	{id: "google-oauth-access-token", desc: "Google OAuth access token", sev: high,
		re: `\b(ya29\.[0-9A-Za-z_\-]{30,})` + tokEnd, kw: []string{"ya29."}},
	{id: "google-oauth-refresh-token", desc: "Google OAuth refresh token", sev: high,
		re: `\b(1//0[0-9A-Za-z_\-]{40,})` + tokEnd, kw: []string{"1//0"}},
	{id: "firebase-cloud-messaging-key", desc: "Firebase Cloud Messaging server key", sev: high,
		re: `\b(AAAA[A-Za-z0-9_\-]{7}:APA91b[A-Za-z0-9_\-]{134})` + tokEnd, kw: []string{":apa91b"}},

	// Microsoft Azure.
	{id: "azure-storage-account-key", desc: "Azure storage account key", sev: critical,
		re: `(?i:AccountKey)\s*=\s*([A-Za-z0-9+/]{86}==)`, kw: []string{"accountkey"}},
	{id: "azure-ad-client-secret", desc: "Azure AD (Entra ID) client secret", sev: high, entropy: 3,
		re: `(?:^|[^A-Za-z0-9_~.\-])([A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{31,34})(?:[^A-Za-z0-9_~.\-]|$)`, kw: []string{"q~"}},
	{id: "azure-sas-token", desc: "Azure shared access signature", sev: high,
		re: `\bsv=\d{4}-\d\d-\d\d&[^\s"'<>]*?\bsig=([A-Za-z0-9%+/]{40,}(?:%3D|=)*)`, kw: []string{"sig="}},
	{id: "azure-shared-access-key", desc: "Azure Service Bus or Event Hubs shared access key", sev: high,
		re: `(?i:SharedAccessKey)\s*=\s*([A-Za-z0-9+/]{43}=)`, kw: []string{"sharedaccesskey"}},
	{id: "azure-devops-pat", desc: "Azure DevOps personal access token", sev: high,
		re: assign(`(?:devops|vsts|azdo)[\w.\-]{0,20}?(?:pat|token)`, `[a-z2-7]{52}`), kw: []string{"devops", "vsts", "azdo"}},

	// Other clouds and infrastructure.
	{id: "digitalocean-pat", desc: "DigitalOcean personal access token", sev: critical,
		re: `\b(dop_v1_[a-f0-9]{64})\b`, kw: []string{"dop_v1_"}},
	{id: "digitalocean-oauth-token", desc: "DigitalOcean OAuth access token", sev: high,
		re: `\b(doo_v1_[a-f0-9]{64})\b`, kw: []string{"doo_v1_"}},
	{id: "digitalocean-refresh-token", desc: "DigitalOcean OAuth refresh token", sev: high,
		re: `\b(dor_v1_[a-f0-9]{64})\b`, kw: []string{"dor_v1_"}},
	{id: "alibaba-access-key-id", desc: "Alibaba Cloud access key ID", sev: high,
		re: `\b(LTAI[A-Za-z0-9]{12,20})\b`, kw: []string{"ltai"}},
	{id: "alibaba-secret-key", desc: "Alibaba Cloud access key secret", sev: critical, entropy: 3.5,
		re: assign(`(?:alibaba|aliyun)`, `[A-Za-z0-9]{30}`), kw: []string{"alibaba", "aliyun"}},
	{id: "heroku-api-key-v2", desc: "Heroku API key", sev: high,
		re: `\b(HRKU-AA[0-9A-Za-z_\-]{58})` + tokEnd, kw: []string{"hrku-aa"}},
	{id: "heroku-api-key", desc: "Heroku API key (legacy)", sev: high,
		re: assign(`heroku`, uuid), kw: []string{"heroku"}},
	{id: "cloudflare-api-token", desc: "Cloudflare API token", sev: high, entropy: 3.5,
		re: assign(`cloudflare`, `[A-Za-z0-9_\-]{40}`), kw: []string{"cloudflare"}},
	{id: "cloudflare-origin-ca-key", desc: "Cloudflare Origin CA key", sev: high,
		re: `\b(v1\.0-[a-f0-9]{24}-[a-f0-9]{146})\b`, kw: []string{"v1.0-"}},
	{id: "scaleway-secret-key", desc: "Scaleway secret key", sev: high,
		re: assign(`(?:scaleway|scw)[\w.\-]{0,10}?secret`, uuid), kw: []string{"scaleway", "scw"}},
	{id: "vault-service-token", desc: "HashiCorp Vault service token", sev: critical,
		re: `\b(hvs\.[A-Za-z0-9_\-]{90,120})` + tokEnd, kw: []string{"hvs."}},
	{id: "vault-batch-token", desc: "HashiCorp Vault batch token", sev: high,
		re: `\b(hvb\.[A-Za-z0-9_\-]{138,300})` + tokEnd, kw: []string{"hvb."}},
	{id: "terraform-cloud-token", desc: "Terraform Cloud / HCP Terraform API token", sev: high,
		re: `\b([A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=\-]{60,70})` + tokEnd, kw: []string{".atlasv1."}},
	{id: "doppler-token", desc: "Doppler API token", sev: high,
		re: `\b(dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44})\b`,
		kw: []string{"dp.pt.", "dp.st.", "dp.sa.", "dp.ct.", "dp.scim.", "dp.audit."}},
	{id: "pulumi-access-token", desc: "Pulumi access token", sev: high,
		re: `\b(pul-[a-f0-9]{40})\b`, kw: []string{"pul-"}},
	{id: "databricks-token", desc: "Databricks personal access token", sev: high,
		re: `\b(dapi[a-f0-9]{32}(?:-\d)?)\b`, kw: []string{"dapi"}},
	{id: "supabase-token", desc: "Supabase access token", sev: high,
		re: `\b(sbp_[a-f0-9]{40})\b`, kw: []string{"sbp_"}},
	{id: "flyio-token", desc: "Fly.io access token", sev: high,
		re: `\b(fo1_[A-Za-z0-9_\-]{43})` + tokEnd, kw: []string{"fo1_"}},
	{id: "tailscale-key", desc: "Tailscale auth or API key", sev: high,
		re: `\b(tskey-(?:auth|api|client|scim|webhook)-[A-Za-z0-9]{10,}-[A-Za-z0-9]{20,})\b`, kw: []string{"tskey-"}},
	{id: "planetscale-token", desc: "PlanetScale token or password", sev: high,
		re: `\b(pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_.\-]{32,64})` + tokEnd, kw: []string{"pscale_"}},
	{id: "deno-deploy-token", desc: "Deno Deploy token", sev: high,
		re: `\b(dd[pw]_[A-Za-z0-9]{36})\b`, kw: []string{"ddp_", "ddw_"}},
	{id: "fastly-api-token", desc: "Fastly API token", sev: high, entropy: 3.5,
		re: assign(`fastly`, `[A-Za-z0-9_\-]{32}`), kw: []string{"fastly"}},
	{id: "netlify-token", desc: "Netlify access token", sev: high, entropy: 3.5,
		re: assign(`netlify`, `[A-Za-z0-9_\-]{40,46}`), kw: []string{"netlify"}},
	{id: "vercel-token", desc: "Vercel access token", sev: high, entropy: 3.5,
		re: assign(`vercel`, `[A-Za-z0-9]{24}`), kw: []string{"vercel"}},

	// Observability.
	{id: "grafana-cloud-token", desc: "Grafana Cloud token", sev: high,
		re: `\b(glc_[A-Za-z0-9+/]{32,400}={0,2})` + b64End, kw: []string{"glc_"}},
	{id: "grafana-service-account-token", desc: "Grafana service account token", sev: high,
		re: `\b(glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})\b`, kw: []string{"glsa_"}},
	{id: "grafana-api-key", desc: "Grafana API key", sev: high,
		re: `\b(eyJrIjoi[A-Za-z0-9]{70,400}={0,2})` + b64End, kw: []string{"eyjrijoi"}},
	{id: "newrelic-user-api-key", desc: "New Relic user API key", sev: high,
		re: `\b(NRAK-[A-Z0-9]{27})\b`, kw: []string{"nrak-"}},
	{id: "newrelic-browser-key", desc: "New Relic browser API key", sev: medium,
		re: `\b(NRJS-[a-f0-9]{19})\b`, kw: []string{"nrjs-"}},
	{id: "newrelic-insert-key", desc: "New Relic insights insert key", sev: high,
		re: `\b(NRII-[A-Za-z0-9_\-]{32})` + tokEnd, kw: []string{"nrii-"}},
	{id: "datadog-api-key", desc: "Datadog API key", sev: high,
		re: assign(`(?:datadog|dd[_\-]?api)`, `[a-f0-9]{32}`), kw: []string{"datadog", "dd_api", "dd-api", "ddapi"}},
	{id: "datadog-app-key", desc: "Datadog application key", sev: high,
		re: assign(`(?:datadog|dd[_\-]?app)`, `[a-f0-9]{40}`), kw: []string{"datadog", "dd_app", "dd-app", "ddapp"}},
	{id: "sentry-org-token", desc: "Sentry organization token", sev: high,
		re: `\b(sntrys_eyJ[A-Za-z0-9+/=_\-]{80,})`, kw: []string{"sntrys_"}},
	{id: "sentry-user-token", desc: "Sentry user auth token", sev: high,
		re: `\b(sntryu_[a-f0-9]{64})\b`, kw: []string{"sntryu_"}},
	{id: "dynatrace-api-token", desc: "Dynatrace API token", sev: high,
		re: `\b(dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64})\b`, kw: []string{"dt0c01."}},
	{id: "pagerduty-api-key", desc: "PagerDuty API key", sev: high, entropy: 3.5,
		re: assign(`pagerduty`, `[A-Za-z0-9_+\-]{20}`), kw: []string{"pagerduty"}},
	{id: "okta-api-token", desc: "Okta API token", sev: high,
		re: assign(`okta`, `00[A-Za-z0-9_\-]{40}`), kw: []string{"okta"}},

	// Source control, CI and package registries.
	{id: "github-pat", desc: "GitHub personal access token", sev: critical,
		re: `\b(ghp_[A-Za-z0-9]{36})\b`, kw: []string{"ghp_"}},
	{id: "github-fine-grained-pat", desc: "GitHub fine-grained personal access token", sev: critical,
		re: `\b(github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})\b`, kw: []string{"github_pat_"}},
	{id: "github-oauth-token", desc: "GitHub OAuth access token", sev: high,
		re: `\b(gho_[A-Za-z0-9]{36})\b`, kw: []string{"gho_"}},
	{id: "github-user-to-server-token", desc: "GitHub App user-to-server token", sev: high,
		re: `\b(ghu_[A-Za-z0-9]{36})\b`, kw: []string{"ghu_"}},
	{id: "github-server-to-server-token", desc: "GitHub App installation token", sev: high,
		re: `\b(ghs_[A-Za-z0-9]{36})\b`, kw: []string{"ghs_"}},
	{id: "github-refresh-token", desc: "GitHub refresh token", sev: high,
		re: `\b(ghr_[A-Za-z0-9]{76})\b`, kw: []string{"ghr_"}},
	{id: "gitlab-pat", desc: "GitLab personal access token", sev: critical,
		re: `\b(glpat-[A-Za-z0-9_\-]{20,}(?:\.[0-9a-z]{2}\.[0-9a-z]{7,9})?)` + tokEnd, kw: []string{"glpat-"}},
	{id: "gitlab-pipeline-trigger-token", desc: "GitLab pipeline trigger token", sev: high,
		re: `\b(glptt-[a-f0-9]{40})\b`, kw: []string{"glptt-"}},
	{id: "gitlab-runner-registration-token", desc: "GitLab runner registration token", sev: high,
		re: `\b(GR1348941[A-Za-z0-9_\-]{20})` + tokEnd, kw: []string{"gr1348941"}},
	{id: "gitlab-runner-token", desc: "GitLab runner authentication token", sev: high,
		re: `\b(glrt-[A-Za-z0-9_\-]{20,})` + tokEnd, kw: []string{"glrt-"}},
	{id: "gitlab-deploy-token", desc: "GitLab deploy token", sev: high,
		re: `\b(gldt-[A-Za-z0-9_\-]{20,})` + tokEnd, kw: []string{"gldt-"}},
	{id: "gitlab-feed-token", desc: "GitLab feed token", sev: medium,
		re: `\b(glft-[A-Za-z0-9_\-]{20})` + tokEnd, kw: []string{"glft-"}},
	{id: "gitlab-ci-job-token", desc: "GitLab CI/CD job token", sev: medium,
		re: `\b(glcbt-[0-9a-fA-F]{1,5}_[0-9A-Za-z_\-]{20})` + tokEnd, kw: []string{"glcbt-"}},
	{id: "gitlab-oauth-app-secret", desc: "GitLab OAuth application secret", sev: high,
		re: `\b(gloas-[a-f0-9]{64})\b`, kw: []string{"gloas-"}},
	{id: "gitlab-scim-token", desc: "GitLab SCIM token", sev: high,
		re: `\b(glsoat-[A-Za-z0-9_\-]{20})` + tokEnd, kw: []string{"glsoat-"}},
	{id: "gitlab-agent-token", desc: "GitLab agent for Kubernetes token", sev: high,
		re: `\b(glagent-[A-Za-z0-9_\-]{50})` + tokEnd, kw: []string{"glagent-"}},
	{id: "bitbucket-app-password", desc: "Bitbucket app password", sev: high,
		re: `\b(ATBB[A-Za-z0-9_=.\-]{28,32}[A-F0-9]{8})` + tokEnd, kw: []string{"atbb"}},
	{id: "atlassian-api-token", desc: "Atlassian API token", sev: high,
		re: `\b(ATATT3[A-Za-z0-9_=\-]{186})` + tokEnd, kw: []string{"atatt3"}},
	{id: "rampart-api-token", desc: "Rampart API token", sev: critical,
		re: `\b(rpt_[0-9A-Za-z]{46})\b`, kw: []string{"rpt_"}, check: validRampartToken,
		allow: nil},
	{id: "rampart-oauth-token", desc: "Rampart OAuth access token or code", sev: high,
		re: `\b(rpo_[A-Za-z0-9_\-]{60,1000})` + tokEnd, kw: []string{"rpo_"}},
	{id: "rampart-oauth-client-secret", desc: "Rampart OAuth client secret", sev: high,
		re: `\b(rps_[A-Za-z0-9_\-]{43})` + tokEnd, kw: []string{"rps_"}},
	{id: "npm-access-token", desc: "npm access token", sev: high,
		re: `\b(npm_[A-Za-z0-9]{36})\b`, kw: []string{"npm_"}},
	{id: "npmrc-auth-token", desc: "Registry auth token in an .npmrc", sev: high, generic: true, entropy: 3,
		re: `(?i:_authToken)\s*=\s*["']?([A-Za-z0-9_\-.+/=]{20,})`, kw: []string{"_authtoken"}},
	{id: "pypi-token", desc: "PyPI upload token", sev: high,
		re: `\b(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,})` + tokEnd, kw: []string{"pypi-ageichlwas5vcmc"}},
	{id: "rubygems-api-key", desc: "RubyGems API key", sev: high,
		re: `\b(rubygems_[a-f0-9]{48})\b`, kw: []string{"rubygems_"}},
	{id: "nuget-api-key", desc: "NuGet API key", sev: high,
		re: `\b(oy2[a-z0-9]{43})\b`, kw: []string{"oy2"}},
	{id: "dockerhub-pat", desc: "Docker Hub access token", sev: high,
		re: `\b(dckr_(?:pat|oat)_[A-Za-z0-9_\-]{27,})` + tokEnd, kw: []string{"dckr_pat_", "dckr_oat_"}},
	{id: "jfrog-api-key", desc: "JFrog Artifactory API key", sev: high,
		re: `\b(AKCp[A-Za-z0-9]{69})\b`, kw: []string{"akcp"}},
	{id: "jfrog-reference-token", desc: "JFrog reference token", sev: high,
		re: `\b(cmVmdGtuOjAxOj[A-Za-z0-9]{50,})\b`, kw: []string{"cmvmdgtuojaxoj"}},
	{id: "clojars-token", desc: "Clojars deploy token", sev: high,
		re: `\b(CLOJARS_[a-z0-9]{60})\b`, kw: []string{"clojars_"}},
	{id: "sonarqube-token", desc: "SonarQube token", sev: medium,
		re: `\b(sq[pua]_[a-f0-9]{40})\b`, kw: []string{"sqp_", "squ_", "sqa_"}},
	{id: "sourcegraph-token", desc: "Sourcegraph access token", sev: high,
		re: `\b(sgp_(?:[a-f0-9]{16}_)?[a-f0-9]{40})\b`, kw: []string{"sgp_"}},
	{id: "buildkite-token", desc: "Buildkite API token", sev: high,
		re: `\b(bkua_[a-f0-9]{40})\b`, kw: []string{"bkua_"}},
	{id: "circleci-token", desc: "CircleCI personal API token", sev: high,
		re: `\b(CCIPAT_[A-Za-z0-9]{22}_[a-f0-9]{40})\b`, kw: []string{"ccipat_"}},
	{id: "travis-ci-token", desc: "Travis CI API token", sev: medium, entropy: 3.5,
		re: assign(`travis`, `[A-Za-z0-9_\-]{22}`), kw: []string{"travis"}},
	{id: "octopus-deploy-api-key", desc: "Octopus Deploy API key", sev: high,
		re: `\b(API-[A-Z0-9]{26})\b`, kw: []string{"api-"}},
	{id: "harness-pat", desc: "Harness access token", sev: high,
		re: `\b(pat\.[A-Za-z0-9_\-]{22}\.[a-f0-9]{24}\.[A-Za-z0-9]{20})\b`, kw: []string{"pat."}},
	{id: "snyk-token", desc: "Snyk API token", sev: medium,
		re: assign(`snyk`, uuid), kw: []string{"snyk"}},
	{id: "codecov-token", desc: "Codecov upload token", sev: medium,
		re: assign(`codecov`, uuid), kw: []string{"codecov"}},

	// Work tools and SaaS APIs.
	{id: "figma-token", desc: "Figma personal access token", sev: medium,
		re: `\b(figd_[A-Za-z0-9_\-]{40})` + tokEnd, kw: []string{"figd_"}},
	{id: "linear-api-key", desc: "Linear API key", sev: medium,
		re: `\b(lin_api_[A-Za-z0-9]{40})\b`, kw: []string{"lin_api_"}},
	{id: "notion-token", desc: "Notion integration token", sev: medium,
		re: `\b(ntn_[0-9]{11}[A-Za-z0-9]{35})\b`, kw: []string{"ntn_"}},
	{id: "postman-api-key", desc: "Postman API key", sev: medium,
		re: `\b(PMAK-[a-f0-9]{24}-[a-f0-9]{34})\b`, kw: []string{"pmak-"}},
	{id: "contentful-pat", desc: "Contentful personal access token", sev: medium,
		re: `\b(CFPAT-[A-Za-z0-9_\-]{43})` + tokEnd, kw: []string{"cfpat-"}},
	{id: "typeform-token", desc: "Typeform personal access token", sev: medium,
		re: `\b(tfp_[A-Za-z0-9_.=\-]{59})` + tokEnd, kw: []string{"tfp_"}},
	{id: "frameio-token", desc: "Frame.io API token", sev: medium,
		re: `\b(fio-u-[A-Za-z0-9_=\-]{64})` + tokEnd, kw: []string{"fio-u-"}},
	{id: "dropbox-token", desc: "Dropbox access token", sev: high,
		re: `\b(sl\.(?:u\.)?[A-Za-z0-9_\-]{130,})` + tokEnd, kw: []string{"sl."}},
	{id: "hubspot-pat", desc: "HubSpot private app token", sev: high,
		re: `\b(pat-(?:na|eu)1-` + uuid + `)\b`, kw: []string{"pat-na1-", "pat-eu1-"}},
	{id: "1password-service-account-token", desc: "1Password service account token", sev: critical,
		re: `\b(ops_eyJ[A-Za-z0-9+/=_\-]{250,})`, kw: []string{"ops_eyj"}},
	{id: "1password-secret-key", desc: "1Password account secret key", sev: critical,
		re: `\b(A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5})\b`, kw: []string{"a3-"}},
	{id: "infracost-api-key", desc: "Infracost API key", sev: medium,
		re: `\b(ico-[A-Za-z0-9]{32})\b`, kw: []string{"ico-"}},
	{id: "prefect-api-key", desc: "Prefect API key", sev: medium,
		re: `\b(pnu_[A-Za-z0-9]{36})\b`, kw: []string{"pnu_"}},
	{id: "readme-api-key", desc: "ReadMe API key", sev: medium,
		re: `\b(rdme_[a-z0-9]{70})\b`, kw: []string{"rdme_"}},
	{id: "algolia-admin-key", desc: "Algolia admin API key", sev: high,
		re: assign(`algolia`, `[a-f0-9]{32}`), kw: []string{"algolia"}},
	{id: "launchdarkly-access-token", desc: "LaunchDarkly access token", sev: medium,
		re: `\b(api-` + uuid + `)\b`, kw: []string{"api-"}},
	{id: "mapbox-secret-token", desc: "Mapbox secret token", sev: high,
		re: `\b(sk\.eyJ[A-Za-z0-9_\-]{50,}\.[A-Za-z0-9_\-]{20,})` + tokEnd, kw: []string{"sk.eyj"}},
	{id: "cloudinary-url", desc: "Cloudinary URL with API secret", sev: high,
		re: `cloudinary://\d+:([A-Za-z0-9_\-]{20,})@[\w\-]+`, kw: []string{"cloudinary://"}},
	{id: "yandex-api-key", desc: "Yandex Cloud API key", sev: high,
		re: `\b(AQVN[A-Za-z0-9_\-]{35,38})` + tokEnd, kw: []string{"aqvn"}},
	{id: "twitter-bearer-token", desc: "X (Twitter) bearer token", sev: high,
		re: `\b(AAAAAAAAAAAAAAAAAAAAA[B-Za-z0-9%][A-Za-z0-9%]{29,})\b`, kw: []string{"aaaaaaaaaaaaaaaaaaaaa"}, check: twitterBearer},
	{id: "facebook-access-token", desc: "Facebook (Meta) access token", sev: high,
		re: `\b(EAA[A-Za-z0-9]{100,})\b`, kw: []string{"eaa"}},

	// AI providers.
	{id: "openai-api-key", desc: "OpenAI API key", sev: high,
		re: `\b(sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}T3BlbkFJ[A-Za-z0-9_\-]{20,})` + tokEnd, kw: []string{"t3blbkfj"}},
	{id: "anthropic-api-key", desc: "Anthropic API key", sev: high,
		re: `\b(sk-ant-(?:api03|admin01)-[A-Za-z0-9_\-]{93}AA)` + tokEnd, kw: []string{"sk-ant-"}},
	{id: "groq-api-key", desc: "Groq API key", sev: high,
		re: `\b(gsk_[A-Za-z0-9]{52})\b`, kw: []string{"gsk_"}},
	{id: "perplexity-api-key", desc: "Perplexity API key", sev: high,
		re: `\b(pplx-[A-Za-z0-9]{48})\b`, kw: []string{"pplx-"}},
	{id: "replicate-api-token", desc: "Replicate API token", sev: high,
		re: `\b(r8_[A-Za-z0-9]{37})\b`, kw: []string{"r8_"}},
	{id: "huggingface-token", desc: "Hugging Face access token", sev: high,
		re: `\b(hf_[A-Za-z]{34})\b`, kw: []string{"hf_"}},
	{id: "huggingface-org-token", desc: "Hugging Face organization API token", sev: high,
		re: `\b(api_org_[A-Za-z]{34})\b`, kw: []string{"api_org_"}},
	{id: "xai-api-key", desc: "xAI API key", sev: high,
		re: `\b(xai-[A-Za-z0-9]{80})\b`, kw: []string{"xai-"}},

	// Chat and messaging.
	{id: "slack-bot-token", desc: "Slack bot token", sev: high,
		re: `\b(xoxb-[0-9]{10,13}-[0-9]{10,13}-[A-Za-z0-9]{24,34})\b`, kw: []string{"xoxb-"}},
	{id: "slack-user-token", desc: "Slack user token", sev: high,
		re: `\b(xox[pe](?:-[0-9]{10,13}){3}-[A-Za-z0-9]{28,34})\b`, kw: []string{"xoxp-", "xoxe-"}},
	{id: "slack-app-token", desc: "Slack app-level token", sev: high,
		re: `\b(xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]{32,})\b`, kw: []string{"xapp-"}},
	{id: "slack-config-token", desc: "Slack configuration token", sev: high,
		re: `\b(xoxe\.xox[bp]-\d-[A-Z0-9]{163,166})\b`, kw: []string{"xoxe.xox"}},
	{id: "slack-config-refresh-token", desc: "Slack configuration refresh token", sev: high,
		re: `\b(xoxe-\d-[A-Z0-9]{146})\b`, kw: []string{"xoxe-"}},
	{id: "slack-legacy-token", desc: "Slack legacy token", sev: high,
		re: `\b(xox[aors]-\d+-[0-9A-Za-z\-]{10,})\b`, kw: []string{"xoxa-", "xoxo-", "xoxr-", "xoxs-"}},
	{id: "slack-webhook-url", desc: "Slack incoming webhook URL", sev: medium,
		re: `hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9+/]{43,56})`, kw: []string{"hooks.slack.com"}},
	{id: "discord-webhook-url", desc: "Discord webhook URL", sev: medium,
		re: `discord(?:app)?\.com/api/webhooks/\d+/([A-Za-z0-9_\-]{68})` + tokEnd, kw: []string{"discord.com/api/webhooks", "discordapp.com/api/webhooks"}},
	{id: "discord-bot-token", desc: "Discord bot token", sev: high,
		re: assign(`discord`, `[MNO][A-Za-z0-9_\-]{23,25}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,38}`), kw: []string{"discord"}},
	{id: "telegram-bot-token", desc: "Telegram bot token", sev: high,
		re: `\b(\d{8,10}:AA[0-9A-Za-z_\-]{33})` + tokEnd, kw: []string{":aa"}},
	{id: "teams-webhook-url", desc: "Microsoft Teams incoming webhook URL", sev: medium,
		re: `webhook\.office\.com/webhookb2/[a-z0-9\-]{36}@[a-z0-9\-]{36}/IncomingWebhook/([a-z0-9]{32})/`, kw: []string{"webhook.office.com"}},
	{id: "zapier-webhook-url", desc: "Zapier webhook URL", sev: medium,
		re: `hooks\.zapier\.com/hooks/catch/\d+/([a-z0-9]{6,})`, kw: []string{"hooks.zapier.com"}},
	{id: "twilio-auth-token", desc: "Twilio auth token or API secret", sev: high, entropy: 3,
		re: assign(`twilio`, `[0-9a-f]{32}`), kw: []string{"twilio"}},

	// Mail.
	{id: "sendgrid-api-key", desc: "SendGrid API key", sev: high,
		re: `\b(SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43})` + tokEnd, kw: []string{"sg."}},
	{id: "mailgun-api-key", desc: "Mailgun API key", sev: high,
		re: `\b(key-[a-f0-9]{32})\b`, kw: []string{"key-"}},
	{id: "mailgun-private-key", desc: "Mailgun private API key", sev: high,
		re: assign(`mailgun`, `[a-f0-9]{32}-[a-f0-9]{8}-[a-f0-9]{8}`), kw: []string{"mailgun"}},
	{id: "mailchimp-api-key", desc: "Mailchimp API key", sev: high,
		re: `\b([a-f0-9]{32}-us\d{1,2})\b`, kw: []string{"-us"}},
	{id: "mandrill-api-key", desc: "Mandrill API key", sev: high, entropy: 3,
		re: assign(`mandrill`, `md-[A-Za-z0-9_\-]{22}`), kw: []string{"mandrill"}},
	{id: "brevo-api-key", desc: "Brevo (Sendinblue) API key", sev: high,
		re: `\b(xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16})\b`, kw: []string{"xkeysib-"}},
	{id: "postmark-server-token", desc: "Postmark server token", sev: high,
		re: assign(`postmark`, uuid), kw: []string{"postmark"}},
	{id: "sparkpost-api-key", desc: "SparkPost API key", sev: high,
		re: assign(`sparkpost`, `[a-f0-9]{40}`), kw: []string{"sparkpost"}},
	{id: "mailjet-secret-key", desc: "Mailjet API secret", sev: high,
		re: assign(`mailjet`, `[a-f0-9]{32}`), kw: []string{"mailjet"}},

	// Payments.
	{id: "stripe-secret-key", desc: "Stripe live secret key", sev: critical,
		re: `\b(sk_live_[0-9A-Za-z]{24,99})\b`, kw: []string{"sk_live_"}},
	{id: "stripe-restricted-key", desc: "Stripe live restricted key", sev: high,
		re: `\b(rk_live_[0-9A-Za-z]{24,99})\b`, kw: []string{"rk_live_"}},
	{id: "stripe-test-key", desc: "Stripe test-mode secret key", sev: low,
		re: `\b([sr]k_test_[0-9A-Za-z]{24,99})\b`, kw: []string{"sk_test_", "rk_test_"}},
	{id: "stripe-webhook-secret", desc: "Stripe webhook signing secret", sev: high,
		re: `\b(whsec_[A-Za-z0-9]{32,})\b`, kw: []string{"whsec_"}},
	{id: "square-access-token", desc: "Square access token", sev: critical,
		re: `(?:^|[^A-Za-z0-9+/_\-])((?:EAAA[A-Za-z0-9_\-]{60}|sq0atp-[A-Za-z0-9_\-]{22}))(?:[^A-Za-z0-9+/=_\-]|$)`, kw: []string{"eaaa", "sq0atp-"}},
	{id: "square-oauth-secret", desc: "Square OAuth secret", sev: high,
		re: `\b(sq0csp-[A-Za-z0-9_\-]{43})` + tokEnd, kw: []string{"sq0csp-"}},
	{id: "braintree-access-token", desc: "Braintree (PayPal) access token", sev: critical,
		re: `\b(access_token\$(?:production|sandbox)\$[0-9a-z]{16}\$[0-9a-f]{32})\b`, kw: []string{"access_token$"}},
	{id: "paypal-client-secret", desc: "PayPal REST client secret", sev: high, entropy: 3.5,
		re: assign(`paypal`, `E[A-Za-z0-9_\-]{79}`), kw: []string{"paypal"}},
	{id: "razorpay-key-secret", desc: "Razorpay key secret", sev: high, entropy: 3.5,
		re: assign(`razorpay`, `[A-Za-z0-9]{24}`), kw: []string{"razorpay"}},
	{id: "flutterwave-secret-key", desc: "Flutterwave secret key", sev: high,
		re: `\b(FLWSECK(?:_TEST)?-[a-h0-9]{32}-X)`, kw: []string{"flwseck"}},
	{id: "plaid-access-token", desc: "Plaid access token", sev: high,
		re: `\b(access-(?:sandbox|development|production)-` + uuid + `)\b`,
		kw: []string{"access-sandbox-", "access-development-", "access-production-"}},
	{id: "shippo-api-token", desc: "Shippo API token", sev: medium,
		re: `\b(shippo_(?:live|test)_[a-f0-9]{40})\b`, kw: []string{"shippo_"}},
	{id: "easypost-api-key", desc: "EasyPost API key", sev: medium,
		re: `\b(EZ[AT]K[A-Za-z0-9]{54})\b`, kw: []string{"ezak", "eztk"}},
	{id: "gocardless-access-token", desc: "GoCardless access token", sev: high,
		re: assign(`gocardless`, `(?:live|sandbox)_[A-Za-z0-9_=\-]{40}`), kw: []string{"gocardless"}},
	{id: "mollie-api-key", desc: "Mollie API key", sev: high,
		re: assign(`mollie`, `(?:live|test)_[A-Za-z0-9]{30}`), kw: []string{"mollie"}},
	{id: "shopify-access-token", desc: "Shopify access token", sev: high,
		re: `\b(shpat_[a-fA-F0-9]{32})\b`, kw: []string{"shpat_"}},
	{id: "shopify-custom-app-token", desc: "Shopify custom app access token", sev: high,
		re: `\b(shpca_[a-fA-F0-9]{32})\b`, kw: []string{"shpca_"}},
	{id: "shopify-private-app-token", desc: "Shopify private app access token", sev: high,
		re: `\b(shppa_[a-fA-F0-9]{32})\b`, kw: []string{"shppa_"}},
	{id: "shopify-shared-secret", desc: "Shopify shared secret", sev: high,
		re: `\b(shpss_[a-fA-F0-9]{32})\b`, kw: []string{"shpss_"}},

	// Private keys.
	{id: "private-key", desc: "Private key (PEM)", sev: critical, reach: 16 << 10, entropy: 4,
		re: `-----BEGIN (?:(?:RSA|DSA|EC|ENCRYPTED) )?PRIVATE KEY-----(?:\\[rn]|\s)*([A-Za-z0-9+/=][\s\S]{63,}?)-----END (?:(?:RSA|DSA|EC|ENCRYPTED) )?PRIVATE KEY-----`,
		kw: []string{"private key-----"}},
	{id: "openssh-private-key", desc: "OpenSSH private key", sev: critical, reach: 16 << 10, entropy: 4,
		re: `-----BEGIN OPENSSH PRIVATE KEY-----(?:\\[rn]|\s)*([A-Za-z0-9+/=][\s\S]{63,}?)-----END OPENSSH PRIVATE KEY-----`,
		kw: []string{"openssh private key"}},
	{id: "pgp-private-key", desc: "PGP private key block", sev: critical, reach: 64 << 10, entropy: 4,
		re: `-----BEGIN PGP PRIVATE KEY BLOCK-----[\s\S]*?(?:\r?\n|\\n)(?:\r?\n|\\n)([A-Za-z0-9+/=][\s\S]{63,}?)-----END PGP PRIVATE KEY BLOCK-----`,
		kw: []string{"pgp private key block"}},
	{id: "putty-private-key", desc: "PuTTY private key", sev: critical, reach: 8 << 10, entropy: 4,
		re: `PuTTY-User-Key-File-\d+: [\w\-]+\r?\n[\s\S]{0,1000}?Private-Lines: \d+\r?\n((?:[A-Za-z0-9+/=]{1,64}\r?\n)+)`,
		kw: []string{"putty-user-key-file-"}},
	{id: "base64-private-key", desc: "Base64-encoded PEM private key", sev: critical,
		re: `\b(LS0tLS1CRUdJTi[A-Za-z0-9+/]{0,60}?(?:IFBSSVZBVEUgS0VZ|QUklWQVRFIEtFW|UFJJVkFURSBLRV)[A-Za-z0-9+/]{64,}={0,2})`,
		kw: []string{"ls0tls1crudjti"}},
	{id: "age-secret-key", desc: "age secret key", sev: critical,
		re: `\b(AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58})\b`, kw: []string{"age-secret-key-1"}},
	{id: "wireguard-private-key", desc: "WireGuard private key", sev: critical,
		re: `(?i:PrivateKey)\s*=\s*([A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=)`, kw: []string{"privatekey"}},
	{id: "kubeconfig-client-key", desc: "Client key in a kubeconfig", sev: critical,
		re: `(?i:client-key-data)\s*:\s*["']?([A-Za-z0-9+/]{64,}={0,2})`, kw: []string{"client-key-data"}},

	// Tokens of standard formats.
	{id: "jwt", desc: "JSON Web Token", sev: medium,
		re: `\b(ey[JI][A-Za-z0-9_\-]{8,}\.ey[JI][A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{16,})` + tokEnd, kw: []string{"eyj", "eyi"}},

	// Connection strings with passwords.
	{id: "postgres-connection-string", desc: "PostgreSQL connection string with password", sev: high, placeholders: true,
		re: connString(`postgres|postgresql|pgsql`), kw: []string{"postgres://", "postgresql://", "pgsql://"}},
	{id: "mysql-connection-string", desc: "MySQL connection string with password", sev: high, placeholders: true,
		re: connString(`mysql|mariadb|mysql\+\w+`), kw: []string{"mysql://", "mariadb://", "mysql+"}},
	{id: "mongodb-connection-string", desc: "MongoDB connection string with password", sev: high, placeholders: true,
		re: connString(`mongodb|mongodb\+srv`), kw: []string{"mongodb://", "mongodb+srv://"}},
	{id: "redis-connection-string", desc: "Redis connection string with password", sev: high, placeholders: true,
		re: connString(`redis|rediss`), kw: []string{"redis://", "rediss://"}},
	{id: "amqp-connection-string", desc: "AMQP (RabbitMQ) connection string with password", sev: high, placeholders: true,
		re: connString(`amqp|amqps`), kw: []string{"amqp://", "amqps://"}},
	{id: "mssql-connection-string", desc: "SQL Server connection string with password", sev: high, placeholders: true,
		re: connString(`sqlserver|mssql`), kw: []string{"sqlserver://", "mssql://"}},
	{id: "jdbc-connection-string", desc: "JDBC connection string with password", sev: high, placeholders: true,
		re: `(?i:jdbc:[a-z0-9:]+://)[^\s'"]*?[;?&](?i:password)=([^;&\s'"]{3,})`, kw: []string{"jdbc:"}},
	{id: "ado-connection-string", desc: "ADO.NET/ODBC connection string with password", sev: high, placeholders: true,
		re: `(?i:(?:Server|Data Source|Host)\s*=[^;'"\n]+;[^'"\n]*?(?:Password|Pwd)\s*=)([^;'"\s]{3,})`,
		kw: []string{"password=", "pwd="}},
	{id: "url-password", desc: "Password in a URL", sev: medium, placeholders: true, generic: true, check: urlPassword,
		re: connString(`https?|ftps?|sftp|smtps?|ldaps?|git|ssh|nats|kafka|mqtts?|wss?|couchdb|neo4j|influxdb|elasticsearch|clickhouse|cockroachdb|snowflake`),
		kw: []string{"://"}},

	// Generic assignments of high-entropy values.
	{id: "http-basic-auth", desc: "HTTP basic authorization header", sev: medium, generic: true, check: basicAuth,
		re: `(?i:authorization["']?\s*[:=]\s*["']?basic\s+)([A-Za-z0-9+/]{12,}={0,2})`, kw: []string{"authorization"}},
	{id: "http-bearer-token", desc: "HTTP bearer authorization header", sev: medium, generic: true, entropy: 3.5, placeholders: true,
		re: `(?i:authorization["']?\s*[:=]\s*["']?bearer\s+)([A-Za-z0-9_\-.~+/]{20,}={0,2})`, kw: []string{"authorization"}},
	{id: "generic-api-key", desc: "Generic API key or secret", sev: medium, generic: true, entropy: 3.7, placeholders: true,
		check: genericValue, quick: quotedRun(16, tokenChars),
		re: `(?i:(?:api|access|auth|client|app|private|secret|signing|encryption|master|service)[_.\-]?(?:key|token|secret)|` +
			`(?:access|auth|api|bearer|refresh|session|bot)[_.\-]?token|secret|credentials?)[\w.\-]{0,20}?["'\x60]?\s{0,3}` +
			`(?:=|:=|:|=>|\?=)\s{0,3}["'\x60]([A-Za-z0-9_\-+/.=~]{16,128})["'\x60]`,
		kw:    []string{"key", "token", "secret", "credential"},
		allow: []allowSpec{genericAllow}},
	{id: "generic-env-secret", desc: "Secret in an environment assignment", sev: medium, generic: true, entropy: 3.5, placeholders: true,
		check: genericValue,
		re: `(?m)^\s*(?:export\s+)?[A-Z0-9_]*(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)[A-Z0-9_]*=` +
			`([A-Za-z0-9_\-+/=.~:@%]{16,128})\s*$`,
		kw:    []string{"key", "token", "secret", "password", "passwd", "credential"},
		allow: []allowSpec{genericAllow}},
	{id: "generic-password", desc: "Hard-coded password", sev: medium, generic: true, entropy: 3, placeholders: true,
		check: genericPassword, quick: quotedRun(8, passwordChars),
		re:    `(?i:pass(?:word|wd|phrase)|\bpwd)[\w.\-]{0,20}?["'\x60]?\s{0,3}(?:=|:=|:|=>)\s{0,3}["'\x60]([^\s"'\x60$<>{}%\\]{8,128})["'\x60]`,
		kw:    []string{"pass", "pwd"},
		allow: []allowSpec{genericAllow}},
}

// Character sets of quoted values, for quotedRun.
var (
	tokenChars    = charSet(`ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/.=~`)
	passwordChars = func() *[256]bool {
		s := new([256]bool)
		for c := 0x21; c < 0x7f; c++ {
			s[c] = true
		}
		for _, c := range "\"'`$<>{}%\\" {
			s[c] = false
		}
		for c := 0x80; c < 0x100; c++ {
			s[c] = true
		}
		return s
	}()
)

func charSet(chars string) *[256]bool {
	s := new([256]bool)
	for i := 0; i < len(chars); i++ {
		s[chars[i]] = true
	}
	return s
}

// quotedRun returns a test for a quoted string of at least n characters
// of set: what the generic rules' values need, and what most lines that
// merely mention "key" or "token" lack.
func quotedRun(n int, set *[256]bool) func([]byte) bool {
	return func(b []byte) bool {
		for i := 0; i < len(b); i++ {
			c := b[i]
			if c != '"' && c != '\'' && c != '`' {
				continue
			}
			j := i + 1
			for j < len(b) && set[b[j]] {
				j++
			}
			if j-i-1 >= n && j < len(b) && (b[j] == '"' || b[j] == '\'' || b[j] == '`') {
				return true
			}
		}
		return false
	}
}

// genericAllow drops values that are obviously not secrets.
var genericAllow = allowSpec{
	regexes: []string{
		`^[a-zA-Z_.\-]+$`, // words only
		`^[A-Z0-9_]+$`,    // constant names
		`(?i)0123456|123456789|abcdefg|qwerty|xxxxxx|aaaaaa|000000|111111|\.\.\.`,
		`^(?:[a-z]+[A-Z][a-z0-9]*)+$`,                      // camelCase identifiers
		`^[\w\-]+(?:\.[\w\-]+)+$` + `|^[\w\-]*/[\w\-/.]*$`, // dotted names, paths
		`^[0-9.\-_/:+]+$`,                                  // numbers, dates, versions
	},
	stopwords: []string{"example", "sample", "dummy", "placeholder", "changeme", "redacted", "your_", "your-",
		"insert", "replace", "xxxx", "test", "fake", "mock", "fixture"},
}

// genericValue requires a generic secret to mix letters and digits.
func genericValue(s string) bool {
	var letter, digit bool
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
			digit = true
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
			letter = true
		}
	}
	return letter && digit
}

// genericPassword requires a password to have at least two of lower case,
// upper case, digits and symbols.
func genericPassword(s string) bool {
	var kinds [4]bool
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z':
			kinds[0] = true
		case 'A' <= c && c <= 'Z':
			kinds[1] = true
		case '0' <= c && c <= '9':
			kinds[2] = true
		default:
			kinds[3] = true
		}
	}
	n := 0
	for _, k := range kinds {
		if k {
			n++
		}
	}
	return n >= 2
}

// twitterBearer requires the part of an X bearer token after its run of
// A's to look random: base64 runs of zeros in test data have the prefix
// too.
func twitterBearer(s string) bool {
	rest := strings.TrimLeft(s, "A")
	return len(rest) >= 30 && entropy([]byte(rest)) > 3.5
}

// urlPassword accepts a password from a URL that, once percent-decoded,
// looks like a real one: not a placeholder, and not a word with a few
// letters swapped ("p%40ssword").
func urlPassword(s string) bool {
	if d, err := url.PathUnescape(s); err == nil {
		s = d
	}
	return realPassword(s)
}

// realPassword accepts passwords of 8 characters or more, mixing kinds of
// character, with some entropy and none of the words test data uses.
func realPassword(s string) bool {
	if len(s) < 8 || !genericPassword(s) || entropy([]byte(s)) <= 3 {
		return false
	}
	l := strings.ToLower(s)
	for _, w := range []string{"passw", "p@ss", "pa$$", "secret", "example", "dummy", "fake", "test", "changeme", "xxxx"} {
		if strings.Contains(l, w) {
			return false
		}
	}
	return true
}

// basicAuth accepts HTTP basic credentials that decode to "user:password"
// with a real-looking password.
func basicAuth(s string) bool {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "=")); err != nil {
			return false
		}
	}
	if !utf8.Valid(b) {
		return false
	}
	user, pass, ok := strings.Cut(string(b), ":")
	if !ok || user == "" {
		return false
	}
	for _, r := range string(b) {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return realPassword(pass)
}

// base62 is the digit alphabet of Rampart token checksums.
const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// validRampartToken checks the CRC-32 checksum that ends every Rampart
// API token: "rpt_" + 40 base62 characters + the CRC-32 (IEEE) of
// everything before it, written in 6 base62 digits.
func validRampartToken(tok string) bool {
	if len(tok) != 50 || !strings.HasPrefix(tok, "rpt_") {
		return false
	}
	return RampartChecksum(tok[:44]) == tok[44:]
}

// RampartChecksum returns the 6-character checksum that identity appends
// to a Rampart API token body (exported for test generators).
func RampartChecksum(s string) string {
	n := crc32.ChecksumIEEE([]byte(s))
	var out [6]byte
	for i := 5; i >= 0; i-- {
		out[i] = base62[n%62]
		n /= 62
	}
	return string(out[:])
}

var (
	compileOnce sync.Once
	compiled    []Rule
)

// DefaultRules returns Rampart's own rules. The regexes are compiled once
// and shared (a *regexp.Regexp is safe for concurrent use); the slice and
// rules are the caller's to change.
func DefaultRules() []Rule {
	compileOnce.Do(func() {
		compiled = make([]Rule, 0, len(ruleTable))
		for _, s := range ruleTable {
			r := Rule{
				ID: s.id, Description: s.desc, Regex: regexp.MustCompile(s.re), SecretGroup: s.group,
				Keywords: s.kw, Entropy: s.entropy, Severity: s.sev, Check: s.check, Reach: s.reach, Generic: s.generic,
				quick: s.quick,
			}
			if s.group == 0 && r.Regex.NumSubexp() > 0 {
				r.SecretGroup = 1
			}
			for _, a := range s.allow {
				r.Allowlists = append(r.Allowlists, compileAllow(a))
			}
			if s.placeholders {
				r.Allowlists = append(r.Allowlists, compileAllow(allowSpec{regexes: placeholderValues}))
			}
			compiled = append(compiled, r)
		}
	})
	out := slices.Clone(compiled)
	for i := range out {
		out[i].Keywords = slices.Clone(out[i].Keywords)
		out[i].Allowlists = slices.Clone(out[i].Allowlists)
	}
	return out
}

func compileAllow(a allowSpec) Allowlist {
	al := Allowlist{RegexTarget: a.target, StopWords: a.stopwords}
	for _, re := range a.regexes {
		al.Regexes = append(al.Regexes, regexp.MustCompile(re))
	}
	return al
}
