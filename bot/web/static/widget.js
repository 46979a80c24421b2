/* tierdesk web chat widget: one <script src=".../widget.js" data-tierdesk> tag, no dependencies.
   Customer and agent text is only ever put into the page with textContent. */
(function () {
  "use strict";
  if (window.__tierdeskWidget) return;
  var script = document.currentScript || document.querySelector("script[data-tierdesk]");
  var origin = new URL(script ? script.src : "/widget.js", location.href).origin;
  var title = (script && script.getAttribute("data-title")) || "Chat with us";
  // A site that knows its logged-in user signs the id (HMAC-SHA256 with the shared identity secret, computed on
  // the site's server) so the chat can trust it; without both attributes the visitor is anonymous.
  var siteUser = (script && script.getAttribute("data-tierdesk-user")) || "";
  var siteUserHash = (script && script.getAttribute("data-tierdesk-user-hash")) || "";
  var store = window.localStorage;
  var KEY = "tierdesk:" + origin + ":";
  var ZONE = (function () { try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return ""; } })();
  function load(name, dflt) { try { var v = store.getItem(KEY + name); return v === null ? dflt : JSON.parse(v); } catch (e) { return dflt; } }
  function save(name, value) { try { store.setItem(KEY + name, JSON.stringify(value)); } catch (e) { /* private mode */ } }

  var state = {
    token: load("token", ""), last: "", pending: load("pending", []),
    seen: {}, ws: null, attempt: 0, maxChars: 4000, typingTimer: null, lastTypingSent: 0, open: load("open", false)
  };

  var css = document.createElement("link");
  css.rel = "stylesheet"; css.href = origin + "/widget.css";
  document.head.appendChild(css);

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  var root = el("div", "td-root"); root.id = "tierdesk-widget";
  var launcher = el("button", "td-launcher", "Chat"); launcher.type = "button"; launcher.id = "td-launcher";
  var panel = el("div", "td-panel"); panel.setAttribute("role", "dialog"); panel.setAttribute("aria-label", title);
  var head = el("div", "td-head");
  head.appendChild(el("span", "td-title", title));
  var status = el("span", "td-status", "connecting…"); status.id = "td-status";
  head.appendChild(status);
  var close = el("button", "td-close", "×"); close.type = "button"; close.setAttribute("aria-label", "Close");
  head.appendChild(close);
  var log = el("div", "td-log"); log.id = "td-log"; log.setAttribute("aria-live", "polite");
  var typing = el("div", "td-typing", ""); typing.id = "td-typing"; typing.hidden = true;
  var notice = el("div", "td-notice", ""); notice.id = "td-notice"; notice.hidden = true;
  var form = el("form", "td-form");
  var input = el("textarea", "td-input"); input.id = "td-input"; input.rows = 2; input.placeholder = "Type your message…";
  var send = el("button", "td-send", "Send"); send.type = "submit"; send.id = "td-send";
  var attach = el("button", "td-attach", "Attach"); attach.type = "button"; attach.id = "td-attach";
  attach.setAttribute("aria-label", "Attach a file"); attach.title = "Attach a file (up to 10 MB)";
  var fileInput = el("input", ""); fileInput.type = "file"; fileInput.id = "td-file"; fileInput.hidden = true;
  form.appendChild(input); form.appendChild(attach); form.appendChild(send); form.appendChild(fileInput);
  var emailRow = el("form", "td-email");
  var emailInput = el("input", ""); emailInput.type = "email"; emailInput.id = "td-email"; emailInput.placeholder = "Your email, so we can reply there too";
  var emailBtn = el("button", "", "Save"); emailBtn.type = "submit"; emailBtn.id = "td-email-save";
  emailRow.appendChild(emailInput); emailRow.appendChild(emailBtn);
  panel.appendChild(head); panel.appendChild(log); panel.appendChild(typing); panel.appendChild(notice);
  panel.appendChild(form); panel.appendChild(emailRow);
  root.appendChild(panel); root.appendChild(launcher);
  function setOpen(v) { state.open = v; save("open", v); root.classList.toggle("td-is-open", v); if (v) input.focus(); }
  launcher.addEventListener("click", function () { setOpen(!state.open); });
  close.addEventListener("click", function () { setOpen(false); });

  function showNotice(text) { notice.textContent = text; notice.hidden = !text; }
  function showTyping(who, on) {
    clearTimeout(state.typingTimer);
    typing.hidden = !on;
    typing.textContent = on ? (who === "agent" ? "Agent is typing…" : "…") : "";
    if (on) state.typingTimer = setTimeout(function () { typing.hidden = true; }, 8000);
  }
  // Links to files kept by the chat's server (/files/<token>/<name>) open from the bubble; no other link is made.
  var FILE_URL = /(?:https?:\/\/[^\s\/]+)?\/files\/([0-9a-f]{32})\/([^\s]+)/g;
  function fileLink(token, name) {
    var a = el("a", "td-file", name); a.href = origin + "/files/" + token + "/" + encodeURIComponent(name);
    a.target = "_blank"; a.rel = "noopener"; return a;
  }
  function addFiles(row, text, files) {
    var box = el("div", "td-files"), m;
    FILE_URL.lastIndex = 0;
    while ((m = FILE_URL.exec(text || "")) !== null) {
      var name; try { name = decodeURIComponent(m[2]); } catch (e) { name = m[2]; }
      box.appendChild(fileLink(m[1], name));
    }
    (files || []).forEach(function (f) {
      var token = String(f.ref || "").replace(/^upload:/, "");
      if (/^[0-9a-f]{32}$/.test(token)) box.appendChild(fileLink(token, String(f.name || "file")));
    });
    if (box.childNodes.length) row.insertBefore(box, row.querySelector(".td-meta"));
  }
  function bubble(who, text, id, files) {
    var row = el("div", "td-msg td-" + who);
    if (id) row.setAttribute("data-id", id);
    row.appendChild(el("div", "td-text", text));
    var meta = el("div", "td-meta", who === "visitor" ? "" : (who === "agent" ? "Agent" : "Assistant"));
    row.appendChild(meta);
    addFiles(row, text, files);
    log.appendChild(row);
    log.scrollTop = log.scrollHeight;
    return row;
  }
  // A message's buttons (a choice the bot offers): pressing one sends its data like typed text, shows its label
  // as the visitor's message, and disables the others.
  function choices(row, buttons) {
    var box = el("div", "td-choices");
    buttons.forEach(function (b) {
      if (!b || typeof b.label !== "string" || typeof b.data !== "string") return;
      var btn = el("button", "td-choice", b.label); btn.type = "button";
      btn.addEventListener("click", function () {
        box.querySelectorAll("button").forEach(function (x) { x.disabled = true; });
        btn.classList.add("td-chosen");
        submit(b.data, b.label);
      });
      box.appendChild(btn);
    });
    row.insertBefore(box, row.querySelector(".td-meta"));
  }
  function findOwn(clientId) { return log.querySelector('.td-visitor[data-client="' + CSS.escape(clientId) + '"]'); }
  function ownBubble(p) {
    var row = findOwn(p.client_id);
    if (!row) { row = bubble("visitor", p.label || p.text, "", p.files); row.setAttribute("data-client", p.client_id); }
    return row;
  }
  function setOwnState(clientId, st, reason) {
    var row = findOwn(clientId); if (!row) return;
    row.classList.remove("td-sending", "td-failed");
    if (st) row.classList.add("td-" + st);
    row.querySelector(".td-meta").textContent = st === "sending" ? "sending…" : (st === "failed" ? "Not sent: " + reason : "");
  }
  function dropPending(clientId) {
    state.pending = state.pending.filter(function (p) { return p.client_id !== clientId; });
    save("pending", state.pending);
  }

  function onMessage(f) {
    if (f.id && state.seen[f.id]) return;
    if (f.id) state.seen[f.id] = true;
    if (f.from === "visitor") {
      var row = findOwn(f.client_id);
      if (row) { setOwnState(f.client_id, ""); } else { row = bubble("visitor", f.text, f.id, f.files); row.setAttribute("data-client", f.client_id || ""); }
      dropPending(f.client_id);
    } else {
      showTyping("", false);
      var said = bubble(f.from === "agent" ? "agent" : "bot", f.text, f.id);
      if (Array.isArray(f.buttons) && f.buttons.length) choices(said, f.buttons);
    }
    if (f.id) { state.last = f.id; save("last", f.id); }
  }

  function handle(f) {
    switch (f.type) {
      case "hello":
        state.token = f.visitor; save("token", f.visitor); state.maxChars = f.max_chars || state.maxChars; break;
      case "history_end":
        state.pending.forEach(function (p) { ownBubble(p); setOwnState(p.client_id, "sending"); transmit(p); }); break;
      case "message": onMessage(f); break;
      case "ack":
        setOwnState(f.client_id, ""); dropPending(f.client_id);
        if (f.id) state.seen[f.id] = true;
        showTyping("bot", true); break;
      case "email_ok": showNotice("We mailed a 6-digit code to " + f.email + ": type it here to confirm the address."); break;
      case "user_ok": break;
      case "typing": showTyping(f.from, f.on !== false); break;
      case "error":
        if (f.code === "retry") { setTimeout(function () { resendPending(f.client_id); }, 2000); break; }
        if (f.client_id && findOwn(f.client_id)) { dropPending(f.client_id); setOwnState(f.client_id, "failed", f.reason); }
        else { showNotice(f.reason || "Something went wrong."); }
        break;
    }
  }
  function resendPending(clientId) {
    state.pending.forEach(function (p) { if (p.client_id === clientId) transmit(p); });
  }
  function transmit(p) {
    if (state.ws && state.ws.readyState === 1) state.ws.send(JSON.stringify({ type: "message", client_id: p.client_id, text: p.text, zone: ZONE, files: p.files }));
  }
  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "c" + Date.now().toString(36) + Math.random().toString(36).slice(2, 10);
  }
  function submit(text, label, files) {
    var p = { client_id: newId(), text: text };
    if (label) p.label = label;
    if (files) p.files = files;
    ownBubble(p);
    if (text.length > state.maxChars) {
      setOwnState(p.client_id, "failed", "message too long (" + text.length + " characters; the limit is " + state.maxChars + ")");
      return false;
    }
    state.pending.push(p); save("pending", state.pending);
    setOwnState(p.client_id, "sending");
    transmit(p);
    return true;
  }
  attach.addEventListener("click", function () { fileInput.click(); });
  fileInput.addEventListener("change", function () {
    var file = fileInput.files && fileInput.files[0];
    if (!file) return;
    fileInput.value = "";
    if (file.size > 10 * 1024 * 1024) { showNotice(file.name + " is over 10 MB; nothing was sent."); return; }
    var body = new FormData(); body.append("file", file);
    showNotice("Sending " + file.name + "…");
    fetch(origin + "/webchat/files?token=" + encodeURIComponent(state.token || ""), { method: "POST", body: body })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
      .then(function (res) {
        if (!res.ok) { showNotice(res.body.error || "Could not send the file."); return; }
        showNotice("");
        var text = input.value; input.value = "";
        submit(text, text ? "" : "Sent a file:", [res.body]);
      })
      .catch(function () { showNotice("Could not send " + file.name + "; try again."); });
  });
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = input.value;
    if (!text.trim()) return;
    if (submit(text)) input.value = "";
  });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit ? form.requestSubmit() : send.click(); }
  });
  input.addEventListener("input", function () {
    var now = Date.now();
    if (state.ws && state.ws.readyState === 1 && now - state.lastTypingSent > 3000) {
      state.lastTypingSent = now; state.ws.send(JSON.stringify({ type: "typing" }));
    }
  });
  emailRow.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (state.ws && state.ws.readyState === 1 && emailInput.value.trim())
      state.ws.send(JSON.stringify({ type: "email", client_id: newId(), email: emailInput.value.trim() }));
  });

  function connect() {
    var url = origin.replace(/^http/, "ws") + "/webchat/ws?token=" + encodeURIComponent(state.token || "") +
      "&after=" + encodeURIComponent(state.last || "");
    var ws;
    try { ws = new WebSocket(url); } catch (e) { return retry(); }
    state.ws = ws;
    ws.onopen = function () {
      state.attempt = 0; status.textContent = "online"; root.classList.remove("td-offline");
      if (siteUser && siteUserHash) ws.send(JSON.stringify({ type: "hello", user: siteUser, user_hash: siteUserHash }));
    };
    ws.onmessage = function (ev) { var f; try { f = JSON.parse(ev.data); } catch (e) { return; } handle(f); };
    ws.onclose = function () { if (state.ws === ws) { state.ws = null; retry(); } };
    ws.onerror = function () { /* onclose follows */ };
  }
  function retry() {
    status.textContent = "reconnecting…"; root.classList.add("td-offline");
    var delay = Math.min(30000, 500 * Math.pow(2, state.attempt++)) * (0.75 + Math.random() * 0.5);
    setTimeout(connect, delay);
  }
  window.__tierdeskWidget = { state: state, reconnect: function () { if (state.ws) state.ws.close(); } };
  function mount() { document.body.appendChild(root); setOpen(state.open); connect(); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
