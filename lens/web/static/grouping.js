// The grouping preview: drag a person onto another group (or onto "Not placed") to
// move them. It posts the same form as the "Move…" page, so every rule is checked again
// on the server; without script, the "Move…" links do the same.
(function () {
  "use strict";
  const path = window.location.pathname.replace(/\/$/, "");
  let dragged = null;

  function move(signup, to) {
    const form = document.createElement("form");
    form.method = "post";
    form.action = path + "/move";
    for (const [name, value] of [["signup", signup], ["to", to]]) {
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = value;
      form.appendChild(input);
    }
    document.body.appendChild(form);
    form.submit();
  }

  document.querySelectorAll("li[data-signup]").forEach(function (item) {
    item.addEventListener("dragstart", function (event) {
      dragged = item;
      item.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", item.dataset.signup);
    });
    item.addEventListener("dragend", function () {
      item.classList.remove("dragging");
      dragged = null;
    });
  });

  document.querySelectorAll("[data-group-number]").forEach(function (target) {
    target.addEventListener("dragover", function (event) {
      if (dragged && !target.contains(dragged)) {
        event.preventDefault();
        target.classList.add("drop-target");
      }
    });
    target.addEventListener("dragleave", function () {
      target.classList.remove("drop-target");
    });
    target.addEventListener("drop", function (event) {
      event.preventDefault();
      target.classList.remove("drop-target");
      const signup = event.dataTransfer.getData("text/plain") || (dragged && dragged.dataset.signup);
      if (signup) {
        move(signup, target.dataset.groupNumber);
      }
    });
  });
})();
