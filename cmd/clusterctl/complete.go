package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-registry/berth/fsm/resource"
)

// completionTimeout bounds the admin call that completing a name makes:
// the shell waits for it, and an unreachable server must not hang a Tab.
const completionTimeout = 2 * time.Second

// maxCompletionList bounds what a completion reads of a list answer.
const maxCompletionList = 8 << 20

// completeKindAndNames completes a command whose arguments are KIND then
// NAME (up to names of them; 0 is any number): first the kinds, in every
// spelling the server takes, then the names of that kind that the server
// holds. It never prints anything of its own: a server that cannot be
// reached, or a kind it does not know, just completes nothing.
func completeKindAndNames(g *globals, names int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		const none = cobra.ShellCompDirectiveNoFileComp
		if len(args) == 0 {
			return completeKinds(toComplete), none
		}
		if names > 0 && len(args) > names {
			return nil, none
		}
		kind, ok := resource.CanonicalKind(args[0])
		if !ok {
			return nil, none
		}
		// Completion runs no PersistentPreRun: note --token-file here.
		g.tokenFileSet = cmd.Flags().Changed("token-file")
		all, err := resourceNames(cmd.Context(), g, kind)
		if err != nil {
			return nil, none
		}
		var out []string
		for _, n := range all {
			if strings.HasPrefix(n, toComplete) && !slices.Contains(args[1:], n) {
				out = append(out, n)
			}
		}
		return out, none
	}
}

// completeNamesOf completes the one NAME argument of a command about a
// fixed kind (webhook test NAME, robot rotate NAME) as get completes it.
func completeNamesOf(g *globals, kind string) cobra.CompletionFunc {
	names := completeKindAndNames(g, 1)
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return names(cmd, append([]string{kind}, args...), toComplete)
	}
}

// completeKinds offers the lower-case spellings of every kind (plural
// first, with the canonical kind as description), or the canonical names
// when the user started with a capital.
func completeKinds(toComplete string) []string {
	var out []string
	for _, kind := range resource.Kinds() {
		spellings := resource.Spellings(kind)
		if toComplete != "" && toComplete[0] >= 'A' && toComplete[0] <= 'Z' {
			spellings = []string{kind}
		}
		for _, s := range spellings {
			if strings.HasPrefix(s, toComplete) {
				out = append(out, s+"\t"+kind)
			}
		}
	}
	return out
}

// resourceNames lists the names of one kind's resources, within
// completionTimeout.
func resourceNames(ctx context.Context, g *globals, kind string) ([]string, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	resp, err := g.doTimeout(ctx, "GET", resourcePath(kind), nil, completionTimeout)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxCompletionList))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, serverError(resp.StatusCode, b)
	}
	var list struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		} `json:"items"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(list.Items))
	for _, it := range list.Items {
		out = append(out, it.Metadata.Name)
	}
	return out, nil
}
