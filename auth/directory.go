package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/berth-registry/berth/fsm"
	"github.com/berth-registry/berth/fsm/resource"
)

// ViewDirectory reads namespaces, users and robots from an FSM view. A
// request makes its decision from one view, so it sees one state.
type ViewDirectory struct {
	View *fsm.View
}

// Namespace implements Namespaces.
func (d ViewDirectory) Namespace(name string) (resource.NamespaceSpec, bool, error) {
	r, ok := d.View.Resource("Namespace", name)
	if !ok {
		return resource.NamespaceSpec{}, false, nil
	}
	ns, err := resource.DecodeNamespace(r.Document)
	if err != nil {
		return resource.NamespaceSpec{}, false, err
	}
	return ns.Spec, true, nil
}

// User returns a stored User.
func (d ViewDirectory) User(name string) (resource.UserSpec, bool, error) {
	r, ok := d.View.Resource("User", name)
	if !ok {
		return resource.UserSpec{}, false, nil
	}
	u, err := resource.DecodeUser(r.Document)
	return u.Spec, err == nil, err
}

// Robot returns a stored Robot.
func (d ViewDirectory) Robot(name string) (resource.RobotSpec, bool, error) {
	r, ok := d.View.Resource("Robot", name)
	if !ok {
		return resource.RobotSpec{}, false, nil
	}
	rb, err := resource.DecodeRobot(r.Document)
	return rb.Spec, err == nil, err
}

// Accounts reads the identities that may sign in.
type Accounts interface {
	User(name string) (spec resource.UserSpec, ok bool, err error)
	Robot(name string) (spec resource.RobotSpec, ok bool, err error)
}

// ErrDisabled and ErrExpired say why an account with the right
// credentials is refused. Tell the client only ErrBadCredentials; log
// these.
var (
	ErrDisabled = errors.New("account disabled")
	ErrExpired  = errors.New("robot expired")
)

// AuthenticateUser checks a user's password. An unknown user costs the
// same bcrypt comparison as a wrong password. The error wraps
// ErrBadCredentials for a wrong name or password and ErrDisabled for a
// disabled user, who is told nothing more than a wrong password.
func AuthenticateUser(acc Accounts, name, password string) (Identity, error) {
	spec, ok, err := acc.User(name)
	if err != nil {
		return Identity{}, fmt.Errorf("user %s: %w", name, err)
	}
	hash := ""
	if ok {
		hash = spec.PasswordHash
	}
	if err := VerifyPassword(hash, password); err != nil {
		return Identity{}, err
	}
	if spec.Disabled {
		return Identity{}, fmt.Errorf("%w: user %s: %w", ErrBadCredentials, name, ErrDisabled)
	}
	return Identity{Kind: UserIdentity, Name: name, ClusterAdmin: spec.ClusterAdmin}, nil
}

// AuthenticateRobot checks a robot's secret in constant time and refuses
// a disabled or expired robot (at now).
func AuthenticateRobot(acc Accounts, name, secret string, now time.Time) (Identity, error) {
	spec, ok, err := acc.Robot(name)
	if err != nil {
		return Identity{}, fmt.Errorf("robot %s: %w", name, err)
	}
	if !ok || !VerifyRobotSecret(spec.SecretHash, secret) {
		return Identity{}, ErrBadCredentials
	}
	if spec.Disabled {
		return Identity{}, fmt.Errorf("%w: robot %s: %w", ErrBadCredentials, name, ErrDisabled)
	}
	if exp := spec.ExpiresAt(); !exp.IsZero() && !now.Before(exp) {
		return Identity{}, fmt.Errorf("%w: robot %s expired at %s: %w", ErrBadCredentials, name, spec.Expires, ErrExpired)
	}
	return Identity{Kind: RobotIdentity, Name: name, Namespace: spec.Namespace, Role: spec.Role}, nil
}
