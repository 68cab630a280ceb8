package resource

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Bcrypt costs a User's passwordHash may have: below 10 is too cheap to
// slow down a stolen log, above 14 makes every login take seconds.
const (
	MinBcryptCost = 10
	MaxBcryptCost = 14
)

// UserSpec is the spec of a User: a person who signs in with a password.
// The password itself is never in the resource (resources are kept in
// the log and every backup), only its bcrypt hash.
type UserSpec struct {
	PasswordHash string `json:"passwordHash"`
	ClusterAdmin bool   `json:"clusterAdmin"`
	Disabled     bool   `json:"disabled"`
}

// RobotSpec is the spec of a Robot: an account for automation, confined
// to one namespace with one role, authenticated by a generated secret of
// which only the SHA-256 hash is stored.
type RobotSpec struct {
	Namespace string `json:"namespace"`
	Role      string `json:"role"`
	// Expires is an RFC 3339 time in UTC; empty means the robot does not
	// expire.
	Expires    string `json:"expires,omitempty"`
	SecretHash string `json:"secretHash"`
	Disabled   bool   `json:"disabled"`
}

// ExpiresAt is the parsed Expires, the zero time when there is none.
func (s RobotSpec) ExpiresAt() time.Time {
	t, _ := time.Parse(time.RFC3339, s.Expires) // validated before
	return t
}

// User and Robot are stored documents decoded for authentication.
type User struct {
	Name       string
	Generation int64
	Spec       UserSpec
}

// Robot is a stored Robot document decoded for authentication.
type Robot struct {
	Name       string
	Generation int64
	Spec       RobotSpec
}

// DecodeUser decodes and re-validates a stored User document.
func DecodeUser(doc []byte) (User, error) {
	name, gen, spec, err := decodeStored(doc, "User", validateUser)
	if err != nil {
		return User{}, err
	}
	return User{Name: name, Generation: gen, Spec: spec.(UserSpec)}, nil
}

// DecodeRobot decodes and re-validates a stored Robot document.
func DecodeRobot(doc []byte) (Robot, error) {
	name, gen, spec, err := decodeStored(doc, "Robot", validateRobot)
	if err != nil {
		return Robot{}, err
	}
	return Robot{Name: name, Generation: gen, Spec: spec.(RobotSpec)}, nil
}

// CheckPasswordHash accepts a bcrypt hash ($2a$, $2b$ or $2y$) whose cost
// is within MinBcryptCost..MaxBcryptCost; the error says what to do.
func CheckPasswordHash(h string) error {
	if !strings.HasPrefix(h, "$2a$") && !strings.HasPrefix(h, "$2b$") && !strings.HasPrefix(h, "$2y$") {
		return errors.New("is not a bcrypt hash; never write a password into a resource: run `clusterctl user passwd NAME`, which stores only the hash")
	}
	cost, err := bcrypt.Cost([]byte(h))
	if err != nil || len(h) != 60 {
		return errors.New("is not a well-formed bcrypt hash ($2b$12$ and 53 more characters); run `clusterctl user passwd NAME` to set one")
	}
	if cost < MinBcryptCost || cost > MaxBcryptCost {
		return fmt.Errorf("has bcrypt cost %d; the cost must be between %d and %d", cost, MinBcryptCost, MaxBcryptCost)
	}
	return nil
}

// CheckSecretHash accepts "sha256:" and 64 lower-case hex digits.
func CheckSecretHash(h string) bool {
	hexPart, ok := strings.CutPrefix(h, "sha256:")
	if !ok || len(hexPart) != 64 || strings.ToLower(hexPart) != hexPart {
		return false
	}
	_, err := hex.DecodeString(hexPart)
	return err == nil
}

func validateUser(raw any, p *problems) any {
	o, ok := newObject("spec", raw, p)
	if !ok {
		if raw == nil {
			p.add("spec", "required: at least spec.passwordHash (set it with `clusterctl user passwd NAME`)")
		}
		return nil
	}
	s := UserSpec{PasswordHash: o.str("passwordHash")}
	if b := o.boolean("clusterAdmin"); b != nil {
		s.ClusterAdmin = *b
	}
	if b := o.boolean("disabled"); b != nil {
		s.Disabled = *b
	}
	for _, k := range []string{"password", "secret", "token"} {
		if _, present := o.m[k]; present {
			o.used[k] = true
			p.add(join("spec", k), "a password is never written into a resource (it is kept in the log and every backup); run `clusterctl user passwd NAME`, which stores only a bcrypt hash in spec.passwordHash")
		}
	}
	if _, present := o.m["role"]; present {
		o.used["role"] = true
		p.add("spec.role", "users get roles as members of a namespace (spec.members of the Namespace); for a cluster admin set spec.clusterAdmin: true")
	}
	switch {
	case s.PasswordHash == "":
		p.required("spec.passwordHash", "required: a bcrypt hash; run `clusterctl user passwd NAME` to set it")
	default:
		if err := CheckPasswordHash(s.PasswordHash); err != nil {
			p.add("spec.passwordHash", "%v", err)
		}
	}
	o.finish("passwordHash", "clusterAdmin", "disabled")
	return s
}

func validateRobot(raw any, p *problems) any {
	o, ok := newObject("spec", raw, p)
	if !ok {
		if raw == nil {
			p.add("spec", "required: spec.namespace, spec.role and spec.secretHash (`clusterctl robot create` writes them)")
		}
		return nil
	}
	s := RobotSpec{
		Namespace:  o.str("namespace"),
		Role:       o.str("role"),
		Expires:    o.str("expires"),
		SecretHash: o.str("secretHash"),
	}
	if b := o.boolean("disabled"); b != nil {
		s.Disabled = *b
	}
	for _, k := range []string{"secret", "password", "token"} {
		if _, present := o.m[k]; present {
			o.used[k] = true
			p.add(join("spec", k), "a robot's secret is never written into a resource; `clusterctl robot create` prints it once and stores only its SHA-256 in spec.secretHash")
		}
	}
	switch {
	case s.Namespace == "":
		p.required("spec.namespace", "required: the namespace the robot works in")
	case !nameRe.MatchString(s.Namespace):
		p.add("spec.namespace", "%q is not a namespace name (1-63 lowercase letters, digits or '-')", s.Namespace)
	}
	checkRole(s.Role, "spec.role", p)
	if s.Expires != "" {
		t, err := time.Parse(time.RFC3339, s.Expires)
		if err != nil {
			p.add("spec.expires", "%q is not an RFC 3339 time such as 2027-01-31T00:00:00Z", s.Expires)
		} else {
			s.Expires = t.UTC().Format(time.RFC3339)
		}
	}
	switch {
	case s.SecretHash == "":
		p.required("spec.secretHash", "required: sha256:<64 hex digits> of the robot's secret (`clusterctl robot create` writes it)")
	case !CheckSecretHash(s.SecretHash):
		p.add("spec.secretHash", "must be sha256: and 64 lower-case hex digits, the hash of the secret, never the secret itself")
	}
	o.finish("namespace", "role", "expires", "secretHash", "disabled")
	return s
}
