// Fill an empty time-zone field with the browser's own zone (the person can change it).
(function () {
  "use strict";
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone = ""; }
  document.querySelectorAll("input[data-guess-timezone]").forEach(function (input) {
    if (!input.value && zone) input.value = zone;
  });
})();
