package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"

	"github.com/berth-registry/berth/auth"
)

// passwordCost is the bcrypt cost of hashes clusterctl makes: about 60 ms
// to check on today's hardware, which the registry pays once a minute per
// client (its credential cache) and an attacker pays per guess.
const passwordCost = 12

func userCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage users (kind: User)"}
	var stdin, clusterAdmin bool
	passwd := &cobra.Command{
		Use:   "passwd NAME",
		Short: "Set a user's password, creating the user if needed",
		Long: `Set NAME's password. The password is hashed here with bcrypt and only the
hash is sent: the plain password never reaches the registry, its log or its
disk. A new user is created; an existing user keeps its other settings.`,
		Example: `  clusterctl user passwd alice
  echo "$PASSWORD" | clusterctl user passwd ci-bot --password-stdin`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeNamesOf(g, "User"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			pw, err := readPassword(cmd, stdin)
			if err != nil {
				return err
			}
			hash, err := bcrypt.GenerateFromPassword([]byte(pw), passwordCost)
			if err != nil {
				return fmt.Errorf("hash password: %w", err)
			}
			doc, _, err := g.existing(cmd, "User", name)
			if err != nil {
				return err
			}
			spec := specOf(doc)
			spec["passwordHash"] = string(hash)
			if cmd.Flags().Changed("cluster-admin") {
				spec["clusterAdmin"] = clusterAdmin
			}
			return g.applyDoc(cmd, doc)
		},
	}
	passwd.Flags().BoolVar(&stdin, "password-stdin", false, "read the password from stdin (one line)")
	passwd.Flags().BoolVar(&clusterAdmin, "cluster-admin", false, "make the user a cluster admin (or, =false, not)")
	cmd.AddCommand(passwd)
	return cmd
}

func robotCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "robot", Short: "Manage robot accounts (kind: Robot)"}
	var ns, role, expires string
	create := &cobra.Command{
		Use:   "create NAME --namespace NS --role ROLE [--expires 90d]",
		Short: "Create a robot and print its secret once",
		Long: `Create a robot account confined to one namespace with one role. Its secret
is generated here and printed once; only its SHA-256 hash is stored. Sign in
with the robot's name as user name and the secret as password.

Names are 1-63 lower-case letters, digits and '-': nothing a shell treats
specially.`,
		Example: `  clusterctl robot create ci-team-a --namespace team-a --role developer --expires 90d
  docker login registry.example.com -u ci-team-a --password-stdin <<< "$SECRET"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := auth.CheckRobotName(name); err != nil {
				return err
			}
			if ns == "" || role == "" {
				return errors.New("robot create needs --namespace and --role (admin, maintainer, developer or guest)")
			}
			doc, found, err := g.existing(cmd, "Robot", name)
			if err != nil {
				return err
			}
			if found {
				return fmt.Errorf("robot %s exists: use `clusterctl robot rotate %s` for a new secret, or delete it first", name, name)
			}
			spec := specOf(doc)
			spec["namespace"], spec["role"] = ns, role
			if expires != "" {
				at, err := expiryTime(expires, time.Now())
				if err != nil {
					return err
				}
				spec["expires"] = at
			}
			return g.newRobotSecret(cmd, name, doc)
		},
	}
	create.Flags().StringVar(&ns, "namespace", "", "the namespace the robot acts in")
	create.Flags().StringVar(&role, "role", "", "admin, maintainer, developer or guest")
	create.Flags().StringVar(&expires, "expires", "", "lifetime such as 90d or 720h, or an RFC 3339 time (default: never)")
	rotate := &cobra.Command{
		Use:               "rotate NAME",
		Short:             "Give a robot a new secret (the old secret stops working at once; tokens already issued with it expire within auth.tokenttl)",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeNamesOf(g, "Robot"),
		RunE: func(cmd *cobra.Command, args []string) error {
			doc, found, err := g.existing(cmd, "Robot", args[0])
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("robot %s does not exist: create it with `clusterctl robot create`", args[0])
			}
			return g.newRobotSecret(cmd, args[0], doc)
		},
	}
	cmd.AddCommand(create, rotate)
	return cmd
}

func (g *globals) newRobotSecret(cmd *cobra.Command, name string, doc map[string]any) error {
	secret, hash, err := auth.NewRobotSecret(nil)
	if err != nil {
		return err
	}
	specOf(doc)["secretHash"] = hash
	if err := g.applyDoc(cmd, doc); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(out, "robot %s: its secret is shown once; store it now.\n\n  user:   %s\n  secret: %s\n\n", name, name, secret)
		return nil
	}
	// Not a terminal: the secret alone, for a script to capture.
	fmt.Fprintln(out, secret)
	return nil
}

// expiryTime turns "90d", "720h" or an RFC 3339 time into RFC 3339 UTC.
func expiryTime(s string, now time.Time) (string, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return "", fmt.Errorf("--expires %q: use a number of days such as 90d", s)
		}
		return now.Add(time.Duration(n) * 24 * time.Hour).UTC().Format(time.RFC3339), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(d).UTC().Format(time.RFC3339), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC().Format(time.RFC3339), nil
	}
	return "", fmt.Errorf("--expires %q: use 90d, 720h or an RFC 3339 time", s)
}

// existing returns the stored document of kind/name, or a new one
// (found false).
func (g *globals) existing(cmd *cobra.Command, kind, name string) (doc map[string]any, found bool, err error) {
	err = g.call(cmd.Context(), "GET", resourcePath(kind, name), nil, &doc)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == 404 {
		return map[string]any{"apiVersion": "berth.dev/v1", "kind": kind, "metadata": map[string]any{"name": name}, "spec": map[string]any{}}, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if _, ok := doc["metadata"].(map[string]any); !ok {
		return nil, false, fmt.Errorf("%s %s: the server's answer has no metadata", kind, name)
	}
	return doc, true, nil
}

func specOf(doc map[string]any) map[string]any {
	spec, ok := doc["spec"].(map[string]any)
	if !ok {
		spec = map[string]any{}
		doc["spec"] = spec
	}
	return spec
}

// applyDoc applies one document, keeping only what apply takes: the
// kind, the name and labels, and the spec.
func (g *globals) applyDoc(cmd *cobra.Command, doc map[string]any) error {
	meta, _ := doc["metadata"].(map[string]any)
	clean := map[string]any{"name": meta["name"]}
	if l, ok := meta["labels"]; ok {
		clean["labels"] = l
	}
	b, err := json.Marshal(map[string]any{"apiVersion": "berth.dev/v1", "kind": doc["kind"], "metadata": clean, "spec": doc["spec"]})
	if err != nil {
		return err
	}
	var out struct {
		Results []applyResult `json:"results"`
	}
	if err := g.call(cmd.Context(), "POST", "/admin/v1/apply", bytes.NewReader(b), &out); err != nil {
		return err
	}
	printApplied(cmd.ErrOrStderr(), out.Results)
	return nil
}

// readPassword reads a password without echo from a terminal (twice), or
// one line from stdin.
func readPassword(cmd *cobra.Command, fromStdin bool) (string, error) {
	in := cmd.InOrStdin()
	f, isFile := in.(*os.File)
	if fromStdin || !isFile || !term.IsTerminal(int(f.Fd())) {
		line, err := bufio.NewReader(io.LimitReader(in, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password: %w", err)
		}
		return checkPassword(strings.TrimRight(line, "\r\n"))
	}
	fmt.Fprint(cmd.ErrOrStderr(), "New password: ")
	a, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(cmd.ErrOrStderr())
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	fmt.Fprint(cmd.ErrOrStderr(), "Again: ")
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(cmd.ErrOrStderr())
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if !bytes.Equal(a, b) {
		return "", errors.New("the passwords differ; nothing changed")
	}
	return checkPassword(string(a))
}

func checkPassword(pw string) (string, error) {
	switch {
	case len(pw) < 8:
		return "", errors.New("password: at least 8 characters")
	case len(pw) > 72:
		return "", errors.New("password: at most 72 bytes (bcrypt ignores the rest)")
	case strings.HasPrefix(pw, auth.RobotSecretPrefix):
		return "", fmt.Errorf("password: must not start with %q, which marks robot secrets", auth.RobotSecretPrefix)
	}
	return pw, nil
}
