package identity

import "crypto/rand"

// HashPassword returns the argon2id hash (PHC string) Rampart stores for
// a password, with the parameters identity uses for its own users. Other
// user stores (end-user realms) use it so that every password Rampart
// keeps is hashed the same way.
func HashPassword(password string) (string, error) { return hashPassword(rand.Reader, password) }

// CheckPassword reports whether password matches a hash made by
// HashPassword (in constant time), and whether the hash should be
// replaced because its parameters are older than the current ones.
func CheckPassword(hash, password string) (ok, rehash bool) { return checkPassword(hash, password) }

// ValidatePassword enforces identity's password policy (length, not a
// common password, not the account name).
func ValidatePassword(account, password string) error { return validatePassword(account, password) }
