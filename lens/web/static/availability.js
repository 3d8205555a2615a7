// The weekly availability grid: paint 30-minute slots with the mouse, by touch or with
// the keyboard, in two tiers ("available" = 2, "if needed" = 1) or erase (0). The chosen
// slots travel in two hidden inputs as comma-separated slot numbers (0 = Monday 00:00).
(function () {
  "use strict";
  var form = document.getElementById("availability-form");
  if (!form) return;
  var table = form.querySelector(".availability-grid");
  var cells = Array.prototype.slice.call(table.querySelectorAll("td[data-slot]"));
  var bySlot = {};
  cells.forEach(function (cell) { bySlot[cell.dataset.slot] = cell; });
  var inputs = { 2: form.elements.available, 1: form.elements.if_needed };
  var tiers = {};
  var TIER_NAMES = { 0: "not chosen", 1: "if needed", 2: "available" };

  function read(tier) {
    inputs[tier].value.split(",").forEach(function (s) { if (s !== "") tiers[s] = tier; });
  }
  read(2); read(1);

  function mode() {
    var checked = form.querySelector("input[name=mode]:checked");
    return checked ? Number(checked.value) : 2;
  }
  function show(cell) {
    var tier = tiers[cell.dataset.slot] || 0;
    cell.className = "tier-" + tier;
    cell.setAttribute("aria-label", cell.dataset.label + ", " + TIER_NAMES[tier]);
    cell.setAttribute("aria-selected", tier ? "true" : "false");
  }
  function paint(cell, tier) {
    if (!cell) return;
    if (tier) tiers[cell.dataset.slot] = tier; else delete tiers[cell.dataset.slot];
    show(cell);
  }
  function save() {
    var lists = { 1: [], 2: [] };
    Object.keys(tiers).forEach(function (s) { lists[tiers[s]].push(Number(s)); });
    [1, 2].forEach(function (t) {
      inputs[t].value = lists[t].sort(function (a, b) { return a - b; }).join(",");
    });
    document.getElementById("hours-chosen").textContent =
      lists[2].length / 2 + " hours available, " + lists[1].length / 2 + " hours if needed";
  }
  cells.forEach(show);

  // Rows outside 08:00-22:00 start hidden; show them when they hold a choice.
  function reveal(which, on) {
    table.querySelectorAll("tr[data-hours=" + which + "]").forEach(function (row) { row.hidden = !on; });
    var button = form.querySelector("[data-reveal=" + which + "]");
    button.setAttribute("aria-expanded", on ? "true" : "false");
    button.textContent = (on ? "Hide " : "Show ") + (which === "early" ? "00:00–08:00" : "22:00–24:00");
  }
  ["early", "late"].forEach(function (which) {
    var used = Array.prototype.some.call(
      table.querySelectorAll("tr[data-hours=" + which + "] td"),
      function (cell) { return tiers[cell.dataset.slot]; });
    if (used) reveal(which, true);
    form.querySelector("[data-reveal=" + which + "]").addEventListener("click", function () {
      reveal(which, this.getAttribute("aria-expanded") !== "true");
    });
  });

  // Pointer: press, drag across cells, release. Touch moves keep targeting the first
  // cell, so the cell under the finger is found from the coordinates.
  var painting = null;
  table.addEventListener("pointerdown", function (event) {
    var cell = event.target.closest("td[data-slot]");
    if (!cell) return;
    event.preventDefault();
    painting = mode();
    paint(cell, painting);
    focusCell(cell);
  });
  table.addEventListener("pointermove", function (event) {
    if (painting === null) return;
    var under = document.elementFromPoint(event.clientX, event.clientY);
    var cell = under && under.closest ? under.closest("td[data-slot]") : null;
    if (cell && table.contains(cell)) paint(cell, painting);
  });
  document.addEventListener("pointerup", function () {
    if (painting !== null) { painting = null; save(); }
  });
  document.addEventListener("pointercancel", function () {
    if (painting !== null) { painting = null; save(); }
  });

  // Keyboard: one cell is in the tab order; arrows move it (showing hidden hours when
  // needed), Space or Enter paints, Shift+arrow paints while moving.
  var current = cells.filter(function (c) { return !c.parentNode.hidden; })[0];
  current.tabIndex = 0;
  function focusCell(cell) {
    if (current) current.tabIndex = -1;
    current = cell; cell.tabIndex = 0; cell.focus();
  }
  table.addEventListener("keydown", function (event) {
    var cell = event.target.closest("td[data-slot]");
    if (!cell) return;
    var slot = Number(cell.dataset.slot);
    var day = Math.floor(slot / 48), row = slot % 48;
    var moves = { ArrowUp: [0, -1], ArrowDown: [0, 1], ArrowLeft: [-1, 0], ArrowRight: [1, 0] };
    if (event.key === " " || event.key === "Enter") {
      event.preventDefault();
      paint(cell, mode()); save();
      return;
    }
    var move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    var nd = day + move[0], nr = row + move[1];
    if (nd < 0 || nd > 6 || nr < 0 || nr > 47) return;
    var next = bySlot[String(nd * 48 + nr)];
    if (next.parentNode.hidden) reveal(next.parentNode.dataset.hours, true);
    if (event.shiftKey) { paint(cell, mode()); paint(next, mode()); save(); }
    focusCell(next);
  });
})();
