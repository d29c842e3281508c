// The PDP console: start a run, follow it live over SSE, log in with an API key, compare two runs.
// Served from the orchestrator itself (CSP script-src 'self'); it writes text only (textContent), never markup.
"use strict";

(function () {
  const RUNS = "/api/v1/runs/";
  const SESSION = "/api/v1/console/session";

  function byId(id) { return document.getElementById(id); }

  function show(element, text) {
    if (!element) return;
    element.textContent = text;
    element.hidden = !text;
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      if (body && body.error) return body.error.code + ": " + body.error.message;
    } catch (ignored) { /* not the envelope */ }
    return "HTTP " + response.status;
  }

  function ms(value) {
    if (value === null || value === undefined) return "–";
    return value >= 10000 ? (value / 1000).toFixed(2) + " s" : Math.round(value).toLocaleString("en") + " ms";
  }

  function setStep(table, step) {
    if (!table) return;
    const row = table.querySelector('tr[data-role="' + CSS.escape(step.role) + '"]');
    if (!row) return;
    row.className = row.className.replace(/status-\w+/, "status-" + step.status);
    const badge = row.querySelector(".status .badge");
    if (badge) {
      badge.textContent = step.status;
      badge.className = "badge status-" + step.status;
    }
    const who = row.querySelector(".who");
    if (who && step.status !== "running") {
      let text = step.provider ? step.provider + " / " + step.model : "–";
      if (step.media) text += " + " + step.media.provider + " / " + step.media.workflow;
      if (step.error) text += " (" + step.error.code + ": " + step.error.message + ")";
      who.textContent = text;
    }
    const latency = row.querySelector(".ms");
    if (latency) latency.textContent = ms(step.latency_ms);
  }

  // Follows a run's events; `handlers` get each event's data. Closes itself at run_finished.
  function follow(runId, handlers) {
    const source = new EventSource(RUNS + encodeURIComponent(runId) + "/events");
    for (const type of ["step_started", "step_finished"]) {
      source.addEventListener(type, function (event) { handlers.step(type, JSON.parse(event.data)); });
    }
    source.addEventListener("run_finished", function (event) {
      source.close();
      handlers.finished(JSON.parse(event.data));
    });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED && handlers.lost) handlers.lost();
    };
    return source;
  }

  function logEvent(list, text) {
    if (!list) return;
    const item = document.createElement("li");
    item.textContent = text;
    list.appendChild(item);
  }

  function productFrom(form) {
    const value = function (name) { return form.elements.namedItem(name).value.trim(); };
    const product = {
      name: value("name"),
      category: value("category"),
      price: Number(value("price")),
      currency: value("currency"),
      key_features: value("key_features").split("\n").map(function (line) { return line.trim(); })
        .filter(function (line) { return line.length > 0; }),
      target_customer: value("target_customer"),
      brand_name: value("brand_name"),
      brand_voice: value("brand_voice"),
      language: value("language"),
    };
    if (value("notes")) product.notes = value("notes");
    return product;
  }

  function startForm() {
    const form = byId("run-form");
    if (!form) return;
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      show(byId("form-error"), "");
      const button = byId("start-run");
      button.disabled = true;
      try {
        const response = await fetch(form.dataset.endpoint, {
          method: "POST",
          headers: {"content-type": "application/json", "accept": "application/json"},
          body: JSON.stringify({product: productFrom(form), wait: false}),
          credentials: "same-origin",
        });
        if (response.status !== 202) {
          show(byId("form-error"), await errorText(response));
          return;
        }
        const doc = await response.json();
        watchLive(doc.run_id);
      } catch (error) {
        show(byId("form-error"), String(error));
      } finally {
        button.disabled = false;
      }
    });
  }

  function watchLive(runId) {
    const live = byId("live");
    const table = byId("live-steps");
    const events = byId("live-events");
    live.hidden = false;
    live.dataset.runId = runId;
    live.dataset.status = "running";
    const link = byId("live-run");
    link.textContent = runId;
    link.href = "/runs/" + encodeURIComponent(runId);
    const status = byId("live-status");
    status.textContent = "running";
    status.className = "badge status-running";
    show(byId("live-error"), "");
    byId("live-done").hidden = true;
    events.replaceChildren();
    for (const row of table.querySelectorAll("tr[data-role]")) {
      setStep(table, {role: row.dataset.role, status: "pending", latency_ms: null});
      row.querySelector(".who").textContent = "–";
    }
    follow(runId, {
      step: function (type, data) {
        setStep(table, data.step);
        logEvent(events, type + " " + data.step.role + " " + data.step.status);
      },
      finished: function (data) {
        logEvent(events, "run_finished " + data.status);
        status.textContent = data.status;
        status.className = "badge status-" + data.status;
        live.dataset.status = data.status;
        if (data.error) show(byId("live-error"), (data.failed_step || "run") + ": " + data.error.code + ": " + data.error.message);
        const page = byId("live-page");
        page.href = "/runs/" + encodeURIComponent(runId);
        byId("live-done").hidden = false;
        addRecent(runId, byId("run-form").elements.namedItem("name").value, data);
      },
      lost: function () { show(byId("live-error"), "The event stream closed; reload to see the run."); },
    });
  }

  // The finished run joins the recent runs at the top (the list is otherwise rendered by the server).
  function addRecent(runId, productName, data) {
    const body = document.querySelector("#runs-table tbody");
    if (!body) return;
    const empty = body.querySelector("td[colspan]");
    if (empty) empty.parentElement.remove();
    const row = document.createElement("tr");
    row.className = "status-" + data.status;
    row.dataset.runId = runId;
    const cells = [];
    for (let i = 0; i < 7; i++) cells.push(row.appendChild(document.createElement("td")));
    const box = cells[0].appendChild(document.createElement("input"));
    box.type = "checkbox";
    box.name = "run";
    box.value = runId;
    const link = cells[1].appendChild(document.createElement("a"));
    link.href = "/runs/" + encodeURIComponent(runId);
    link.appendChild(document.createElement("code")).textContent = runId;
    cells[2].textContent = productName;
    const badge = cells[3].appendChild(document.createElement("span"));
    badge.className = "badge status-" + data.status;
    badge.textContent = data.status;
    cells[4].textContent = data.mode || "–";
    cells[5].textContent = ms(data.duration_ms);
    cells[6].textContent = "just now";
    body.prepend(row);
  }

  function runPage() {
    const run = byId("run");
    if (!run || run.dataset.status !== "running") return;
    const table = byId("steps");
    follow(run.dataset.runId, {
      step: function (type, data) { setStep(table, data.step); },
      finished: function () { window.location.reload(); },
    });
  }

  function loginForm() {
    const form = byId("login-form");
    if (!form) return;
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      show(byId("login-error"), "");
      const key = byId("key");
      const response = await fetch(SESSION, {
        method: "POST",
        headers: {"content-type": "application/json", "accept": "application/json"},
        body: JSON.stringify({key: key.value}),
        credentials: "same-origin",
      });
      key.value = "";
      if (response.ok) {
        window.location.reload();
      } else {
        show(byId("login-error"), await errorText(response));
      }
    });
  }

  function forgetKey() {
    const button = byId("forget-key");
    if (!button) return;
    button.addEventListener("click", async function () {
      await fetch(SESSION, {method: "DELETE", credentials: "same-origin"});
      window.location.assign("/");
    });
  }

  function sampleAndCompare() {
    const sample = byId("sample");
    if (sample) sample.addEventListener("change", function () { byId("sample-form").submit(); });
    const compare = byId("compare-form");
    if (compare) {
      compare.addEventListener("submit", function (event) {
        const picked = compare.querySelectorAll('input[name="run"]:checked').length;
        if (picked !== 2) {
          event.preventDefault();
          window.alert("Pick exactly two runs to compare (" + picked + " picked).");
        }
      });
    }
  }

  startForm();
  runPage();
  loginForm();
  forgetKey();
  sampleAndCompare();
})();
