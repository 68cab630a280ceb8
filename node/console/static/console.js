// Berth console: the one script. It filters the rows of the table on the
// page as you type; everything else is plain links and server-rendered
// HTML, so the console works without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("input.filter").forEach(function (input) {
    var table = document.getElementById(input.dataset.table);
    if (!table) { return; }
    var rows = null, texts = null;
    input.addEventListener("input", function () {
      // Read the rows on the first keystroke, not on load: a page of
      // 10,000 tags shows sooner.
      if (rows === null) {
        rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr"));
        texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
      }
      var q = input.value.trim().toLowerCase();
      for (var i = 0; i < rows.length; i++) {
        rows[i].classList.toggle("hidden", q !== "" && texts[i].indexOf(q) < 0);
      }
      // A block of rows with none left showing would still hold its
      // estimated height: hide it too.
      table.querySelectorAll(".chunk").forEach(function (c) {
        c.classList.toggle("hidden", c.querySelector("tr:not(.hidden)") === null);
      });
    });
  });
});
