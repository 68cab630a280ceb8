package resource

import (
	"fmt"
	"regexp"
	"strings"
)

// secretKeyRe is a key of a secret: a file name in the secret's
// directory, spelled as Kubernetes spells Secret keys.
var secretKeyRe = regexp.MustCompile(`^[-._A-Za-z0-9]{1,253}$`)

// Validate checks that a reference can only name a file directly inside
// one secret's directory (<secrets dir>/<name>/<key>): the name is a DNS
// label and the key a plain file name that is not "." or ".." and does not
// start with "..", which Kubernetes reserves for the symlinks of a mounted
// Secret (..data). A key is optional here; callers that need one say so.
func (r SecretRef) Validate() error {
	if !nameRe.MatchString(r.Name) {
		return fmt.Errorf("%q is not a valid secret name (1-63 lowercase letters, digits or '-')", r.Name)
	}
	if r.Key != "" && (!secretKeyRe.MatchString(r.Key) || strings.HasPrefix(r.Key, "..") || r.Key == ".") {
		return fmt.Errorf("%q is not a valid key: letters, digits, '-', '_' or '.', not starting with '..'", r.Key)
	}
	return nil
}

// checkSecretRef reads a secretRef mapping at path, reporting every
// problem; keyRequired is for secrets that are one value (an HMAC key)
// rather than a set of files.
func checkSecretRef(o *object, path string, keyRequired bool, p *problems) *SecretRef {
	ref := &SecretRef{Name: o.str("name"), Key: o.str("key")}
	o.finish("name", "key")
	switch {
	case ref.Name == "":
		p.required(path+".name", "required: the name of the secret (a directory in the secrets directory)")
	case !nameRe.MatchString(ref.Name):
		p.add(path+".name", "%q is not a valid secret name (1-63 lowercase letters, digits or '-')", ref.Name)
	}
	switch {
	case ref.Key == "" && keyRequired:
		p.required(path+".key", "required: the key (a file in the secret's directory) that holds the value")
	case ref.Key != "":
		if err := (SecretRef{Name: "x", Key: ref.Key}).Validate(); err != nil {
			p.add(path+".key", "%v", err)
		}
	}
	return ref
}
