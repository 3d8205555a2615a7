// The tutor chat: history on load, streamed replies (server-sent events over fetch),
// stop, retry. Replies arrive as plain text while streaming and are replaced by the
// server's sanitised HTML when done; the page never inserts model text as HTML itself.
(function () {
  "use strict";
  var article = document.querySelector("article.section");
  if (!article) return;
  var params = new URLSearchParams(location.search);
  // The page says where it is: /course/<course>/<module>, or /module/<module> (no course).
  var where = { course: article.dataset.course || "", module: article.dataset.moduleSlug,
                section: Number(params.get("s") || 1) };

  document.querySelectorAll("section.tutor").forEach(function (box) {
    var log = box.querySelector(".tutor-log");
    var form = box.querySelector(".tutor-form");
    var input = form.querySelector("textarea");
    var send = form.querySelector("button[type=submit]");
    var stop = box.querySelector(".tutor-stop");
    var retry = box.querySelector(".tutor-retry");
    var error = box.querySelector(".tutor-error");
    var segment = Number(box.dataset.segment);
    var controller = null;
    var lastText = "";

    function add(role, html, text) {
      var item = document.createElement("li");
      item.className = "tutor-msg tutor-" + role;
      var body = document.createElement("div");
      body.className = "prose";
      if (html !== null) body.innerHTML = html; else body.textContent = text || "";
      item.appendChild(body);
      log.appendChild(item);
      return body;
    }
    function busy(on) {
      send.disabled = on; stop.hidden = !on; input.disabled = on;
    }
    function fail(message, canRetry) {
      // canRetry false: asking again will not help (the site's account with the model
      // vendor needs a person), so no Retry button.
      error.textContent = message; error.hidden = false; retry.hidden = canRetry === false;
    }

    var q = new URLSearchParams({ course: where.course, module: where.module,
      section: String(where.section), segment: String(segment) });
    fetch("/api/tutor/history?" + q, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { messages: [] }; })
      .then(function (data) {
        data.messages.forEach(function (m) { add(m.role, m.html); });
      });

    function ask(text) {
      error.hidden = true; retry.hidden = true; lastText = text;
      add("user", null, text);
      var reply = add("assistant", null, "");
      reply.parentNode.classList.add("streaming");
      busy(true);
      controller = new AbortController();
      var streamed = "";
      fetch("/api/tutor/messages", {
        method: "POST", credentials: "same-origin", signal: controller.signal,
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ course: where.course, module: where.module,
          section: where.section, segment: segment, message: text })
      }).then(function (response) {
        if (!response.ok) {
          return response.json().then(function (body) {
            reply.parentNode.remove();
            fail((body.error && body.error.message) || "The tutor could not answer.");
          });
        }
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) return;
            buffer += decoder.decode(chunk.value, { stream: true });
            var events = buffer.split("\n\n");
            buffer = events.pop();
            events.forEach(function (raw) {
              var name = (raw.match(/^event: (.*)$/m) || [])[1];
              var data = JSON.parse((raw.match(/^data: (.*)$/m) || [, "{}"])[1]);
              if (name === "delta") { streamed += data.text; reply.textContent = streamed; }
              if (name === "done") { reply.innerHTML = data.html; }
              if (name === "error") { fail(data.message, data.retry); }
            });
            return pump();
          });
        }
        return pump();
      }).catch(function (err) {
        if (err.name !== "AbortError") fail("The connection to the tutor broke. Try again.");
      }).finally(function () {
        reply.parentNode.classList.remove("streaming");
        busy(false); input.focus();
      });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = input.value.trim();
      if (!text) return;
      input.value = "";
      ask(text);
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
    });
    stop.addEventListener("click", function () { if (controller) controller.abort(); });

    // Speech input: record in the browser, send the audio to /api/transcribe, put the
    // words in the box for the student to check before sending.
    var mic = box.querySelector(".tutor-mic");
    if (mic && (!navigator.mediaDevices || !window.MediaRecorder)) mic.hidden = true;
    if (mic && !mic.hidden) {
      var recorder = null;
      var micLabel = mic.textContent;
      var say = function (message) { error.textContent = message; error.hidden = false; };
      var transcribe = function (blob, type) {
        var ext = type.indexOf("mp4") >= 0 ? "m4a" : type.indexOf("ogg") >= 0 ? "ogg" : "webm";
        var body = new FormData();
        body.append("audio", blob, "speech." + ext);
        mic.disabled = true; mic.textContent = "Writing down…";
        fetch("/api/transcribe", { method: "POST", credentials: "same-origin", body: body })
          .then(function (r) { return r.json().then(function (data) { return { ok: r.ok, data: data }; }); })
          .then(function (res) {
            if (!res.ok) { say((res.data.error && res.data.error.message) || "Speech input failed."); return; }
            input.value = input.value ? input.value + " " + res.data.text : res.data.text;
            input.focus();
          })
          .catch(function () { say("Speech input failed; type your message instead."); })
          .finally(function () { mic.disabled = false; mic.textContent = micLabel; });
      };
      mic.addEventListener("click", function () {
        if (recorder && recorder.state === "recording") { recorder.stop(); return; }
        error.hidden = true;
        navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
          var chunks = [];
          recorder = new MediaRecorder(stream);
          recorder.ondataavailable = function (e) { if (e.data.size) chunks.push(e.data); };
          recorder.onstop = function () {
            stream.getTracks().forEach(function (t) { t.stop(); });
            mic.setAttribute("aria-pressed", "false");
            var type = recorder.mimeType || "audio/webm";
            transcribe(new Blob(chunks, { type: type }), type);
          };
          recorder.start();
          mic.textContent = "Stop recording"; mic.setAttribute("aria-pressed", "true");
        }).catch(function () {
          say("Lens could not use your microphone. Allow it in the browser, or type instead.");
        });
      });
    }
    retry.addEventListener("click", function () { if (lastText) ask(lastText); });
  });
})();
