// The operator console of ollama-gateway: plain JavaScript, no library.
// It polls <console.path>/state once a second and draws what it gets.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 1000;
  let csrf = "";
  let timer = 0;

  const fmtTime = (ms) => ms ? new Date(ms).toLocaleTimeString() : "–";
  const fmtDateTime = (ms) => ms ? new Date(ms).toLocaleString() : "–";
  const fmtNum = (v, digits) => Number(v).toLocaleString(undefined, { maximumFractionDigits: digits });
  const fmtAgo = (ms, now) => {
    if (!ms) return "–";
    const s = Math.max(0, Math.round((now - ms) / 1000));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min ago";
  };

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    return e;
  }

  function say(msg, isError) {
    const s = $("status");
    s.textContent = msg;
    s.className = isError ? "error" : "";
  }

  async function call(method, path, body) {
    const opts = { method, headers: {}, credentials: "same-origin", cache: "no-store" };
    if (method !== "GET") opts.headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) {
      opts.body = body;
      opts.headers["Content-Type"] = "application/x-www-form-urlencoded";
    }
    const res = await fetch(path, opts);
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    return { ok: res.ok, status: res.status, data };
  }

  function showSignIn(msg) {
    clearTimeout(timer);
    $("dash").hidden = true;
    $("who").hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = msg || "";
    $("key").focus();
  }

  function showDash() {
    $("signin").hidden = true;
    $("dash").hidden = false;
    $("who").hidden = false;
  }

  async function poll() {
    clearTimeout(timer);
    let r;
    try {
      r = await call("GET", "state");
    } catch (e) {
      say("The gateway does not answer: " + e.message, true);
      timer = setTimeout(poll, POLL_MS);
      return;
    }
    if (r.status === 401) { showSignIn(""); return; }
    if (!r.ok) {
      say("State refused: " + (r.data && r.data.error || r.status), true);
    } else {
      showDash();
      render(r.data);
    }
    timer = setTimeout(poll, POLL_MS);
  }

  function render(s) {
    csrf = s.csrf;
    $("who-key").textContent = s.keyId;
    $("interval").textContent = fmtNum(s.healthIntervalSeconds, 1) + " s";
    const upd = $("updated");
    upd.textContent = fmtTime(s.now);
    upd.dateTime = new Date(s.now).toISOString();
    renderBackends(s);
    renderTraffic(s.traffic);
    renderKeys(s.keys || [], s.now);
    renderReload(s.reload);
    renderErrors(s.errors || []);
  }

  const fmtBytes = (n) => {
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return fmtNum(n, 1) + " " + u[i];
  };

  function loadedCell(b) {
    if (b.loaded === null) return el("td", {}, "not tracked");
    if (!b.loaded.length) return el("td", {}, "none");
    const ul = el("ul", { class: "plain" });
    for (const m of b.loaded) {
      ul.append(el("li", {}, m.name + " (" + fmtBytes(m.vramBytes) + " VRAM" +
        (m.expiresAt ? ", until " + fmtTime(m.expiresAt) : "") + ")"));
    }
    return el("td", {}, ul);
  }

  function renderBackends(s) {
    $("queued").textContent = fmtNum(s.queued, 0) + (s.queued === 1 ? " request" : " requests");
    const tb = $("backends").tBodies[0];
    tb.replaceChildren(...(s.backends || []).map((b) => {
      const models = b.models === null ? "not listed yet" : (b.models.length ? b.models.join(", ") : "none");
      return el("tr", { "data-backend": b.name },
        el("th", { scope: "row" }, b.name),
        el("td", { class: "state-" + b.health, "data-state": b.health }, b.health),
        el("td", { title: fmtDateTime(b.since) }, b.since ? fmtTime(b.since) + " (" + fmtAgo(b.since, s.now) + ")" : "–"),
        el("td", { class: "num" }, b.checkMs === null ? "–" : fmtNum(b.checkMs, 1) + " ms"),
        el("td", { class: "num", title: b.capSet ? "cap: maxConcurrent" : "cap: proxy.maxConnsPerBackend" },
          fmtNum(b.inFlight, 0) + " / " + fmtNum(b.cap, 0) + " req"),
        el("td", { class: "models" }, models),
        loadedCell(b));
    }));
  }

  const charts = [
    { id: "rps", title: "Requests", unit: "req/s", get: (p, st) => p.requests / st },
    { id: "eps", title: "Errors (5xx, cut short)", unit: "err/s", get: (p, st) => p.errors / st },
    { id: "ttft", title: "Time to first token p50 / p95", unit: "ms", get: (p) => p.ttftP50Ms, get2: (p) => p.ttftP95Ms },
    { id: "tps", title: "Completion tokens", unit: "tokens/s", get: (p, st) => p.tokens / st },
  ];

  function spark(values, max) {
    const w = 300, h = 60, n = values.length;
    return values.map((v, i) => (i * w / Math.max(1, n - 1)).toFixed(1) + "," +
      (h - 2 - (max > 0 ? v / max : 0) * (h - 4)).toFixed(1)).join(" ");
  }

  function renderTraffic(t) {
    const pts = t.points || [];
    const st = t.stepSeconds;
    $("step").textContent = st + " s";
    let req = 0, errs = 0;
    for (const p of pts) { req += p.requests; errs += p.errors; }
    $("total-requests").textContent = fmtNum(req, 0);
    $("total-errors").textContent = fmtNum(errs, 0);
    const ms = t.models || [];
    $("by-model").textContent = ms.length ?
      ms.map((m) => m.model + ": " + fmtNum(m.requests, 0) + (m.requests === 1 ? " request" : " requests")).join(", ") : "none";
    const box = $("charts");
    if (!box.children.length) {
      for (const c of charts) {
        const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
        svg.setAttribute("viewBox", "0 0 300 60");
        svg.setAttribute("preserveAspectRatio", "none");
        svg.setAttribute("role", "img");
        svg.setAttribute("aria-label", c.title + " over the last 15 minutes");
        for (const cls of ["first", "second"]) {
          const pl = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
          pl.setAttribute("class", cls);
          svg.append(pl);
        }
        box.append(el("div", { class: "chart", id: "chart-" + c.id },
          el("h3", {}, c.title), el("div", { class: "value" }, "–"), el("div", { class: "when note" }, ""), svg));
      }
    }
    // The figure is the last minute's (the current step included); the
    // quantiles those of the latest step with any.
    const recent = pts.slice(-Math.max(1, Math.round(60 / st)));
    const secs = recent.length * st;
    const sum = (f) => recent.reduce((a, p) => a + f(p), 0);
    let latest = null;
    for (const p of recent) if (p.ttftP50Ms > 0) latest = p;
    for (const c of charts) {
      const card = $("chart-" + c.id);
      const v1 = pts.map((p) => c.get(p, st));
      const v2 = c.get2 ? pts.map((p) => c.get2(p, st)) : [];
      const max = Math.max(0, ...v1, ...v2);
      const lines = card.querySelectorAll("polyline");
      lines[0].setAttribute("points", spark(v1, max));
      lines[1].setAttribute("points", c.get2 ? spark(v2, max) : "");
      let text;
      if (c.get2) {
        text = latest ? "≤ " + fmtNum(c.get(latest), 0) + " / ≤ " + fmtNum(c.get2(latest), 0) + " " + c.unit : "no data";
      } else {
        text = fmtNum(sum((p) => c.get(p, 1)) / secs, 2) + " " + c.unit;
      }
      card.querySelector(".value").textContent = text;
      card.querySelector(".when").textContent = c.get2 ? "latest step with data" : "average, last minute";
    }
  }

  // usageCell shows a key's usage in its budget window, or since the
  // gateway started when it has no budget.
  function usageCell(k) {
    const u = k.window || k;
    const text = fmtNum(u.requests, 0) + (u.requests === 1 ? " request, " : " requests, ") +
      fmtNum(u.promptTokens, 0) + " prompt + " + fmtNum(u.completionTokens, 0) + " completion tokens";
    return el("td", {}, text, el("br"), el("small", {}, k.window ?
      "this window, until " + fmtTime(Date.parse(k.window.end)) + "; " + fmtNum(k.window.remaining, 0) + " tokens left" :
      "since the gateway started"));
  }

  function renderKeys(keys, now) {
    const tb = $("keys").tBodies[0];
    tb.replaceChildren(...keys.map((k) => {
      const b = el("button", { type: "button", "aria-label": "Revoke key " + k.id }, "Revoke");
      b.addEventListener("click", () => revoke(k.id));
      const policy = [];
      if (k.models) policy.push("models: " + k.models.join(", "));
      if (k.tokens) policy.push(k.tokens);
      if (k.expiresAt) policy.push((k.expired ? "expired " : "expires ") + fmtDateTime(k.expiresAt));
      return el("tr", { "data-key": k.id },
        el("th", { scope: "row" }, el("code", {}, k.id), k.name ? " " + k.name : ""),
        el("td", {}, k.admin ? "admin" : "API"),
        el("td", {}, k.rateLimit || "off"),
        el("td", {}, policy.join("; ") || "all models, no budget"),
        usageCell(k),
        el("td", {}, fmtAgo(k.lastUsed, now)),
        el("td", {}, b));
    }));
  }

  function renderReload(r) {
    const p = $("last-reload");
    if (!r) { p.textContent = "None since the gateway started."; return; }
    if (!r.ok) { p.textContent = fmtDateTime(r.at) + ": refused, the running configuration stays: " + r.error; return; }
    const b = r.result.backends;
    p.textContent = fmtDateTime(r.at) + ": applied. Backends added: " + (b.added.join(", ") || "none") +
      "; removed: " + (b.removed.join(", ") || "none") + "; kept: " + (b.kept.join(", ") || "none") +
      ". Keys: " + r.result.apiKeys + ".";
  }

  function renderErrors(errs) {
    const ul = $("errors");
    if (!errs.length) { ul.replaceChildren(el("li", {}, "None.")); return; }
    ul.replaceChildren(...errs.slice().reverse().map((e) =>
      el("li", {}, el("time", { datetime: new Date(e.at).toISOString() }, fmtTime(e.at)), " ",
        el("strong", {}, e.backend), " (" + e.kind + "): " + e.message)));
  }

  async function action(question, method, path, done) {
    if (!window.confirm(question)) { say("Cancelled."); return; }
    let r;
    try { r = await call(method, path); } catch (e) { say("The gateway does not answer: " + e.message, true); return; }
    if (r.status === 401) { showSignIn("Your session ended: sign in again."); return; }
    if (!r.ok) { say("Refused (" + r.status + "): " + (r.data && r.data.error || "no answer"), true); return; }
    done(r.data);
    poll();
  }

  function revoke(id) {
    action("Revoke key " + id + "? Clients using it are refused from the next request.", "DELETE", "keys/" + encodeURIComponent(id),
      (d) => {
        if ($("minted-id").textContent === id) $("minted").hidden = true;
        say("Key " + id + " revoked (" + d.removed + " entr" + (d.removed === 1 ? "y" : "ies") + " removed).");
      });
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const key = $("key").value;
      let r;
      try {
        r = await call("POST", "session", new URLSearchParams({ key }).toString());
      } catch (e) { $("signin-error").textContent = "The gateway does not answer: " + e.message; return; }
      $("key").value = "";
      if (!r.ok) { $("signin-error").textContent = (r.data && r.data.error) || ("refused: " + r.status); return; }
      csrf = r.data.csrf;
      say("Signed in.");
      poll();
    });
    $("signout").addEventListener("click", async () => {
      await call("DELETE", "session");
      $("minted").hidden = true;
      say("Signed out.");
      showSignIn("");
    });
    $("reload").addEventListener("click", () => action("Reload the configuration file now?", "POST", "reload",
      (d) => say("Configuration reloaded: " + d.apiKeys + " keys, " + d.backends.kept.length + " backends kept, " +
        d.backends.added.length + " added, " + d.backends.removed.length + " removed.")));
    $("mint").addEventListener("click", () => action("Mint a new API key and save it to the configuration file?", "POST",
      "keys" + ($("mint-digest").checked ? "?store=digest" : ""), (d) => {
        $("minted-id").textContent = d.id;
        $("minted-key").textContent = d.key;
        $("minted").hidden = false;
        say("Key " + d.id + " minted: copy it now, it is not shown again.");
        $("copy").focus();
      }));
    $("copy").addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText($("minted-key").textContent);
        say("Copied to the clipboard.");
      } catch (e) {
        const range = document.createRange();
        range.selectNodeContents($("minted-key"));
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        say("Select-all done: press Ctrl+C (or Cmd+C) to copy.");
      }
    });
    poll();
  });
})();
