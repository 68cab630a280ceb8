// Berth console: the one script. It filters the rows of the table on the
// page as you type; everything else is plain links and server-rendered
// HTML, so the console works without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("input.filter").forEach(function (input) {
    var table = document.getElementById(input.dataset.table);
    if (!table) { return; }
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase();
      for (var i = 0; i < rows.length; i++) {
        rows[i].classList.toggle("hidden", q !== "" && texts[i].indexOf(q) < 0);
      }
    });
  });
});
