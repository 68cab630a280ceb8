package console

import (
	"encoding/json"
	"fmt"
)

// tagBlock is how many of a page's tag rows are sent as HTML. A longer
// page sends the rest as data that console.js draws a block at a time as
// the end of the table nears the view, and that its filter searches
// whole. Chromium takes seconds on a small machine to parse and lay out
// 10,000 table rows of HTML, and milliseconds to parse the same rows as
// data: the manifest cells are rendered once per digest, each row is only
// its tag and the index of its cells.
const tagBlock = 200

// Block is tagBlock, for the template.
func (d repoData) Block() int { return tagBlock }

// First is the rows sent as HTML.
func (d repoData) First() []tagRow { return d.Rows[:min(tagBlock, len(d.Rows))] }

// Lazy says whether the page has more rows than it sends as HTML.
func (d repoData) Lazy() bool { return len(d.Rows) > tagBlock }

// tagData is every row of the page for console.js.
type tagData struct {
	Block int `json:"block"`
	// Cells holds each distinct manifest's cells, rendered (and escaped)
	// by the same template as the HTML rows.
	Cells []string `json:"cells"`
	// Tags and Cell are the rows: a tag and the index of its cells.
	Tags []string `json:"tags"`
	Cell []int    `json:"cell"`
	// Drawn is how many rows the page already holds as HTML.
	Drawn int `json:"drawn"`
}

// RowData is the page's rows as JSON, for the data-rows attribute that
// html/template escapes.
func (d repoData) RowData() (string, error) {
	td := tagData{Block: tagBlock, Tags: make([]string, len(d.Rows)), Cell: make([]int, len(d.Rows)), Drawn: len(d.First())}
	index := map[*summary]int{}
	for i, r := range d.Rows {
		c, ok := index[r.summary]
		if !ok {
			c = len(td.Cells)
			index[r.summary] = c
			td.Cells = append(td.Cells, string(r.Cells))
		}
		td.Tags[i], td.Cell[i] = r.Tag, c
	}
	b, err := json.Marshal(td)
	if err != nil {
		return "", fmt.Errorf("tag rows of %s: %w", d.Repo, err)
	}
	return string(b), nil
}
