package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
)

// `clusterctl get repositories` is not a resource kind: repositories are
// what clients push, and the admin API serves their storage accounting
// under /admin/v1/repositories (node/admin/repositories.go).

// repositoriesHelp explains the columns, since SIZE of the totals line is
// not the sum of the column above it.
const repositoriesHelp = `
Repositories (alias repos) are not resources: get repositories [NAME] shows
what each repository holds and the bytes it stores.
  TAGS, MANIFESTS  tags and manifests in the repository
  SIZE             deduplicated: each distinct manifest and blob its manifests
                   reach, once
  LOGICAL (wide)   each manifest with every blob it lists: a layer two images
                   share counts twice
  BLOBS (wide)     blobs linked into the repository (pushed or mounted),
                   referenced by a manifest or not
The TOTAL line sums TAGS, MANIFESTS, LOGICAL and BLOBS; its SIZE counts each
digest once across the whole registry (what the blob store holds for the
manifests), so it is at most the sum of the SIZE column. -o json prints the
admin API's numbers in bytes.`

// isRepositories reports whether a get names repositories rather than a
// resource kind.
func isRepositories(kind string) bool {
	switch strings.ToLower(kind) {
	case "repositories", "repository", "repos", "repo":
		return true
	}
	return false
}

// repositoriesHint adds to the server's "unknown kind" answer that
// repositories, not a kind, are there too.
func repositoriesHint(err error) error {
	if strings.Contains(err.Error(), "unknown kind") {
		return fmt.Errorf("%w; or repositories (alias repos)", err)
	}
	return err
}

// repositoryRow mirrors node/admin's repositoryJSON.
type repositoryRow struct {
	Name         string `json:"name"`
	Tags         int    `json:"tags"`
	Manifests    int    `json:"manifests"`
	Blobs        int    `json:"blobs"`
	Bytes        int64  `json:"bytes"`
	LogicalBytes int64  `json:"logicalBytes"`
}

// repositoryTotals mirrors node/admin's totalsJSON.
type repositoryTotals struct {
	Bytes        int64 `json:"bytes"`
	LogicalBytes int64 `json:"logicalBytes"`
	Digests      int   `json:"digests"`
}

// getRepositories prints every repository (following the API's pages) and
// the totals, or one repository when name is set.
func (g *globals) getRepositories(ctx context.Context, w io.Writer, name, output string) error {
	if err := checkOutput(output, "json", "wide"); err != nil {
		return fmt.Errorf("%w (repositories print as a table, wide or json)", err)
	}
	if name != "" {
		var r repositoryRow
		if err := g.call(ctx, "GET", repositoryPath(name), nil, &r); err != nil {
			return err
		}
		if output == "json" {
			return printJSON(w, r)
		}
		return printRepositories(w, []repositoryRow{r}, nil, output == "wide")
	}
	var all []repositoryRow
	var totals repositoryTotals
	for last := ""; ; {
		var page struct {
			Repositories []repositoryRow  `json:"repositories"`
			Next         string           `json:"next"`
			Totals       repositoryTotals `json:"totals"`
		}
		if err := g.call(ctx, "GET", "/admin/v1/repositories?last="+url.QueryEscape(last), nil, &page); err != nil {
			return err
		}
		all = append(all, page.Repositories...)
		totals = page.Totals // the last page's: the freshest
		if page.Next == "" || page.Next == last {
			break
		}
		last = page.Next
	}
	if all == nil {
		all = []repositoryRow{}
	}
	if output == "json" {
		return printJSON(w, map[string]any{"repositories": all, "totals": totals})
	}
	if len(all) == 0 {
		fmt.Fprintln(w, "No repositories found.")
		return nil
	}
	return printRepositories(w, all, &totals, output == "wide")
}

func repositoryPath(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/admin/v1/repositories/" + strings.Join(parts, "/")
}

// printRepositories writes the table; totals, when set, adds the TOTAL
// line.
func printRepositories(w io.Writer, rows []repositoryRow, totals *repositoryTotals, wide bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	line := func(cells ...any) {
		if !wide {
			cells = cells[:4]
		}
		for i, c := range cells {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprintln(tw)
	}
	line("NAME", "TAGS", "MANIFESTS", "SIZE", "LOGICAL", "BLOBS")
	var tags, manifests, blobs int
	for _, r := range rows {
		line(r.Name, r.Tags, r.Manifests, humanBytes(r.Bytes), humanBytes(r.LogicalBytes), r.Blobs)
		tags, manifests, blobs = tags+r.Tags, manifests+r.Manifests, blobs+r.Blobs
	}
	if totals != nil {
		line(fmt.Sprintf("TOTAL (%d repositories)", len(rows)), tags, manifests, humanBytes(totals.Bytes), humanBytes(totals.LogicalBytes), blobs)
	}
	return tw.Flush()
}
