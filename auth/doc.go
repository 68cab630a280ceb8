// Package auth is the core of Berth's authentication and authorization:
// Docker token scopes, short-lived JWTs signed by a cluster key and
// verified against a key set (Berth's own keys and external issuers),
// sealing of private keys under the cluster secret, password and robot
// credentials, and the role table with the decision that turns an
// identity and the scopes it asks for into the access it gets.
//
// It does no HTTP and no I/O: clocks and randomness are injected, state
// comes through the Directory interface (an FSM view in a node), so every
// decision is a function of its inputs and can be tested as such. The
// node wires it into the OCI API.
package auth
