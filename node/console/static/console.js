// Berth console: the one script. It filters the rows of the table on the
// page as you type, and draws the rows of a long page of tags as they
// scroll into view; everything else is plain links and server-rendered
// HTML, so the console works without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("input.filter").forEach(function (input) {
    var table = document.getElementById(input.dataset.table);
    if (!table) { return; }
    var data = document.getElementById(input.dataset.table + "-data");
    if (data) {
      lazyRows(input, table, JSON.parse(data.dataset.rows));
      return;
    }
    var rows = null, texts = null;
    input.addEventListener("input", function () {
      // Read the rows on the first keystroke, not on load: the page
      // shows sooner.
      if (rows === null) {
        rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr"));
        texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
      }
      var q = input.value.trim().toLowerCase();
      for (var i = 0; i < rows.length; i++) {
        rows[i].classList.toggle("hidden", q !== "" && texts[i].indexOf(q) < 0);
      }
    });
  });
});

// lazyRows draws a long page of tags from its data (the server sends the
// first block of rows as HTML and every row as data): a block of rows at
// a time while the end of the table is within two screens of the view.
// The filter searches every row, drawn or not, and draws the matches the
// same way.
function lazyRows(input, table, d) {
  var cols = table.querySelector("colgroup").outerHTML;
  var shown = null;       // indexes of the rows that match the filter; null: all
  var drawn = d.drawn;    // how many of them the page holds
  var texts = null;       // lower-case text of each cells entry, on the first keystroke
  var end = document.createElement("div");
  table.after(end);

  function count() { return shown === null ? d.tags.length : shown.length; }
  function near() { return end.getBoundingClientRect().top < window.innerHeight * 3; }
  function draw() {
    while (drawn < count() && near()) {
      var stop = Math.min(drawn + d.block, count()), html = "";
      for (var k = drawn; k < stop; k++) {
        var i = shown === null ? k : shown[k];
        html += '<tr><td><span class="tag">' + escapeHTML(d.tags[i]) + "</span></td>" + d.cells[d.cell[i]] + "</tr>";
      }
      var block = document.createElement("div");
      block.className = "chunk";
      block.innerHTML = '<table class="fixed">' + cols + "<tbody>" + html + "</tbody></table>";
      table.appendChild(block);
      drawn = stop;
    }
  }
  window.addEventListener("scroll", draw, { passive: true });
  window.addEventListener("resize", draw);
  draw();

  input.addEventListener("input", function () {
    var q = input.value.trim().toLowerCase();
    if (texts === null) {
      texts = d.cells.map(function (html) {
        var t = document.createElement("template");
        t.innerHTML = "<table><tr>" + html + "</tr></table>";
        return t.content.textContent.toLowerCase();
      });
    }
    shown = [];
    for (var i = 0; i < d.tags.length; i++) {
      if (q === "" || d.tags[i].toLowerCase().indexOf(q) >= 0 || texts[d.cell[i]].indexOf(q) >= 0) {
        shown.push(i);
      }
    }
    table.querySelectorAll(".chunk").forEach(function (c) { c.remove(); });
    drawn = 0;
    draw();
  });
}

function escapeHTML(s) {
  return s.replace(/[&<>"']/g, function (c) {
    return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
  });
}
