# Helpers that recognise names of settings that hold secrets.
package rampart.lib.secrets

# secret_name holds for names like DB_PASSWORD, apiKey or GITHUB_TOKEN, but
# not for names that point at a secret (PASSWORD_FILE, TOKEN_PATH) or name
# its owner (DB_USER, AWS_ACCESS_KEY_ID).
secret_name(name) if {
	regex.match(`(?i)(passw(or)?d|secret|token|api[_-]?key|private[_-]?key|access[_-]?key|credential|auth[_-]?key)`, name)
	not regex.match(`(?i)[_-]?(file|path|dir|url|uri|name|user|username|id|type|length|ttl|expiry|expires|endpoint)$`, name)
}
