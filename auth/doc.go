// Package auth holds cairn's authentication and authorization: bearer
// tokens, the roles they carry, and the one table that says which roles may
// call each procedure and HTTP route of every cairn process.
//
// # Tokens
//
// A token is 32 random bytes, written "cairn-" followed by their base64url
// form. Callers send it as "authorization: Bearer TOKEN". Only its SHA-256
// is ever stored: the journal records tokens as TokenCreated events holding
// the hash, a name and a role, so every master checks tokens against the
// same table, and a revocation reaches every master as soon as it applies
// the TokenRevoked event. Workers check against the table they follow from
// the masters (AuthService.WatchTokens).
//
// # Roles and rules
//
// rules.go maps every procedure and route to a class of callers (Class),
// and each class to the roles in it; a test walks every procedure of every
// cairn service descriptor, so a procedure without a rule fails the tests.
// A call without a token is refused with Unauthenticated (HTTP 401), one
// whose token's role is not in the class with PermissionDenied (403).
// Health and reflection stay open, for probes and grpcurl's discovery.
//
// # Insecure
//
// A process started with --insecure checks nothing: every call is served
// as the principal "insecure" with the admin role. The process logs a
// warning and sets cairn_auth_insecure to 1.
package auth
