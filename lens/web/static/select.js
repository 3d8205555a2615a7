// A read-only field the reader copies from (a calendar address): one click selects it all.
document.querySelectorAll("[data-select-on-click]").forEach(function (field) {
  field.addEventListener("click", function () { field.select(); });
});
