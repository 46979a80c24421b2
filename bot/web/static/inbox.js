// The inbox and the ticket page, live: a server-sent event stream says what changed and the page fetches
// itself again and swaps the changed parts in (what the agent is typing stays). Keyboard shortcuts too.
(function () {
  "use strict";
  const root = document.querySelector("[data-live]");
  if (!root) return;
  const parts = {queues: ["#queues", "#ticket-list"], ticket: ["#transcript-list", "#notes-list", "#handling", "#actions", "#tags", "#events", "#ticket-head"]};

  async function refresh(selectors) {
    const page = await fetch(location.href, {credentials: "same-origin"});
    if (!page.ok) return;
    const doc = new DOMParser().parseFromString(await page.text(), "text/html");
    for (const sel of selectors) {
      const now = document.querySelector(sel), next = doc.querySelector(sel);
      if (now && next) now.replaceWith(next);
    }
    document.dispatchEvent(new CustomEvent("tierdesk:refreshed"));
  }

  const source = new EventSource(root.dataset.live);
  source.addEventListener("queues", () => { if (document.querySelector("#queues")) refresh(parts.queues); });
  source.addEventListener("ticket", () => refresh(parts.ticket));
  source.addEventListener("presence", (e) => {
    const names = JSON.parse(e.data), box = document.getElementById("presence");
    if (box) box.textContent = names.length ? names.join(", ") + (names.length > 1 ? " are" : " is") + " viewing" : "";
  });

  // one click per form: a second submit of the same form while the first is on its way is dropped
  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (form.dataset.sent) { e.preventDefault(); return; }
    form.dataset.sent = "1";
  });

  function typing(el) { return el && (el.isContentEditable || /^(input|textarea|select)$/i.test(el.tagName)); }
  function submit(id) { const f = document.getElementById(id); if (f) f.requestSubmit(); }
  function focus(sel) { const el = document.querySelector(sel); if (el) { el.focus(); return true; } return false; }
  let row = -1;
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey && e.key === "Enter" && typing(e.target) && e.target.form) { e.target.form.requestSubmit(); return; }
    if (typing(e.target) || e.altKey || e.ctrlKey || e.metaKey) return;
    const rows = [...document.querySelectorAll(".ticket-row a")];
    const keys = {
      r: () => focus("#reply-text"), n: () => focus("#note-text"), t: () => submit("take-form"),
      c: () => focus("#close-form input[name=resolution]"), m: () => { location.href = "/inbox?view=mine"; },
      i: () => { location.href = "/inbox"; },
      j: () => { if (rows.length) { row = Math.min(row + 1, rows.length - 1); rows[row].focus(); } },
      k: () => { if (rows.length) { row = Math.max(row - 1, 0); rows[row].focus(); } },
    };
    if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
  });
})();
