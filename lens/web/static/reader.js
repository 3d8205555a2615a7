// Reader page: time-on-task heartbeats and the clip replay button.
// A heartbeat goes out every 30 s while the tab is visible and the reader has done
// something (scrolled, typed, moved) in the last two minutes; the server counts at most
// one per ~30 s per person, so several open tabs do not add up.
(function () {
  "use strict";
  var article = document.querySelector("article.section");
  if (!article) return;
  document.querySelectorAll("button.replay").forEach(function (button) {
    button.addEventListener("click", function () {
      var frame = button.closest("figure").querySelector("iframe");
      frame.src = frame.dataset.src;
    });
  });
  if (!article.dataset.module) return; // a lens on its own: no module to count time for
  var lastActive = Date.now();
  ["scroll", "keydown", "mousemove", "touchstart", "click"].forEach(function (name) {
    window.addEventListener(name, function () { lastActive = Date.now(); }, { passive: true });
  });
  function beat() {
    if (document.visibilityState !== "visible") return;
    if (Date.now() - lastActive > 120000) return;
    fetch("/api/progress/heartbeat", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({
        course: article.dataset.course || "",
        module_key: article.dataset.module,
        content_id: article.dataset.content
      })
    }).catch(function () { /* offline: the next beat tries again */ });
  }
  setInterval(beat, 30000);
})();
