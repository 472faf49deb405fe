/* <tidings-inbox>: the Tidings in-app inbox as a dependency-free web component (docs/inbox.md, "Web widget").
 *
 * Security: notification text comes from templates filled with trigger payloads, so nothing from the server ever
 * goes through innerHTML; it is set with textContent. Links and images are followed only when they parse to
 * http(s) (Novu GHSA-8gr3-5j6f-25gp was a `javascript:` redirect).
 */
(() => {
  "use strict";
  if (customElements.get("tidings-inbox")) return; // the script was included twice

  // A classic <script src> has no import.meta; document.currentScript is only set while the script first runs.
  const SCRIPT_ORIGIN = (() => {
    const script = document.currentScript || document.querySelector('script[src*="tidings-inbox.js"]');
    try {
      if (script && script.src) return new URL(script.src, location.href).origin;
    } catch (_) { /* fall through */ }
    return location.origin;
  })();

  const PAGE_SIZE = 20;
  const REFUSED = new Set(["FORBIDDEN", "UNAUTHENTICATED", "NOT_FOUND", "VALIDATION"]);
  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  const KEEPALIVE_MS = 20000; // a half-open connection (laptop sleep, NAT drop) is noticed within 20 + 10 s
  const PONG_TIMEOUT_MS = 10000;
  // 1012 "service restart" and 1001 "going away": the server is stopping and others are up, so reconnect at once,
  // spread over a moment so that thousands of clients of one stopping server don't arrive in the same instant.
  const RESTARTING = new Set([1001, 1012]);
  const RESTART_SPREAD_MS = 250;

  const NOTIFICATION = `fragment N on InboxNotification {
    id subject body avatar redirectUrl createdAt isRead isSeen isArchived tags
    primaryAction { label url isCompleted } secondaryAction { label url isCompleted } }`;
  const SESSION = `mutation($a: String!, $s: String!, $h: String) {
    inboxSession(applicationIdentifier: $a, subscriberId: $s, subscriberHash: $h) {
      token seq counts { total unread unseen } } }`;
  const FEED = `query($first: Int, $after: String) { inboxNotifications(first: $first, after: $after) {
    edges { cursor node { ...N } } pageInfo { hasNextPage endCursor } } } ${NOTIFICATION}`;
  const COUNTS = "query { inboxCounts(filters: [{}]) { total unread unseen } }";
  const MUTATE = (name, args, params) =>
    `mutation(${params}) { ${name}(${args}) { ...N } } ${NOTIFICATION}`;
  const MARK_READ = MUTATE("inboxMarkRead", "id: $id", "$id: ID!");
  const MARK_UNREAD = MUTATE("inboxMarkUnread", "id: $id", "$id: ID!");
  const ARCHIVE = MUTATE("inboxArchive", "id: $id", "$id: ID!");
  const COMPLETE = MUTATE("inboxCompleteAction", "id: $id, action: $action", "$id: ID!, $action: InboxActionKind!");
  const MARK_ALL_READ = "mutation { inboxMarkAllRead { updated } }";
  const MARK_SEEN = "mutation($ids: [ID!]!) { inboxMarkSeen(ids: $ids) { updated } }";
  const EVENTS = `subscription($after: String) { inboxEvents(after: $after) {
    __typename
    ... on NotificationReceived { seq cursor notification { ...N } }
    ... on NotificationUpdated { seq cursor notificationId deleted notification { ...N } }
    ... on CountsChanged { seq cursor counts { total unread unseen } } } } ${NOTIFICATION}`;

  const STYLE = `
    :host { display: inline-block; position: relative; font: 14px/1.4 var(--tidings-font, system-ui, sans-serif);
      color: var(--tidings-fg, #1f2328); }
    [hidden] { display: none !important; }
    button { font: inherit; cursor: pointer; }
    .bell { position: relative; border: 1px solid var(--tidings-border, #d0d7de); border-radius: 999px;
      background: var(--tidings-bg, #fff); color: inherit; width: 2.5em; height: 2.5em; padding: 0; }
    .bell svg { width: 1.25em; height: 1.25em; vertical-align: middle; }
    .badge { position: absolute; top: -0.35em; right: -0.35em; min-width: 1.5em; padding: 0 0.35em;
      box-sizing: border-box; border-radius: 999px; font-size: 0.75em; line-height: 1.5em; text-align: center;
      background: var(--tidings-badge-bg, #d1242f); color: var(--tidings-badge-fg, #fff); }
    .panel { position: absolute; z-index: var(--tidings-z-index, 1000); top: calc(100% + 0.5em);
      right: 0; width: var(--tidings-width, 24em); max-width: 90vw; max-height: var(--tidings-max-height, 32em);
      display: flex; flex-direction: column; background: var(--tidings-bg, #fff);
      border: 1px solid var(--tidings-border, #d0d7de); border-radius: var(--tidings-radius, 0.5em);
      box-shadow: 0 0.5em 1.5em rgb(0 0 0 / 0.15); overflow: hidden; }
    header { display: flex; align-items: center; gap: 0.5em; padding: 0.6em 0.8em;
      border-bottom: 1px solid var(--tidings-border, #d0d7de); }
    .status { flex: 1; min-width: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap;
      font-size: 0.75em; color: var(--tidings-muted, #656d76); }
    .link { border: 0; background: none; color: var(--tidings-accent, #0969da); padding: 0.2em; white-space: nowrap; }
    ul { list-style: none; margin: 0; padding: 0; overflow-y: auto; flex: 1; }
    li { display: flex; gap: 0.6em; padding: 0.7em 0.8em; border-bottom: 1px solid var(--tidings-border, #d0d7de); }
    li[data-read="false"] { background: var(--tidings-unread-bg, #f0f6ff); }
    .content { flex: 1; min-width: 0; }
    .main { cursor: pointer; }
    .main:focus-visible { outline: 2px solid var(--tidings-accent, #0969da); }
    .avatar { width: 2.25em; height: 2.25em; border-radius: 50%; object-fit: cover; flex: none; }
    .subject { margin: 0; font-weight: 600; }
    .body { margin: 0.1em 0 0; white-space: pre-line; overflow-wrap: anywhere; }
    time { font-size: 0.75em; color: var(--tidings-muted, #656d76); }
    .actions { display: flex; gap: 0.5em; margin-top: 0.4em; }
    .action { border-radius: var(--tidings-radius, 0.4em); padding: 0.2em 0.8em;
      border: 1px solid var(--tidings-accent, #0969da); background: var(--tidings-bg, #fff);
      color: var(--tidings-accent, #0969da); }
    .action.primary { background: var(--tidings-accent, #0969da); color: var(--tidings-accent-fg, #fff); }
    .action:disabled { opacity: 0.6; cursor: default; }
    .controls { display: flex; flex-direction: column; gap: 0.2em; align-items: flex-end; }
    .controls button { border: 0; background: none; color: var(--tidings-muted, #656d76); font-size: 0.8em; }
    .controls button:hover, .link:hover { text-decoration: underline; }
    .empty { padding: 1.5em; text-align: center; color: var(--tidings-muted, #656d76); }
    .more { margin: 0.5em auto; display: block; }`;

  const SVG = "http://www.w3.org/2000/svg";
  const BELL = "M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 " +
    "0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z";

  /** An absolute http(s) URL, or null: anything else (javascript:, data:, vbscript:, garbage) is never followed. */
  function safeUrl(value) {
    if (typeof value !== "string" || value === "") return null;
    let url;
    try {
      url = new URL(value, location.href);
    } catch (_) {
      return null;
    }
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  }

  /** The only way nodes are made: text goes in through textContent, never parsed as HTML. */
  function el(tag, part, text, className) {
    const node = document.createElement(tag);
    if (part) {
      node.setAttribute("part", part);
      node.dataset.part = part;
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function button(part, text, className, onClick) {
    const node = el("button", part, text, className);
    node.type = "button";
    node.addEventListener("click", onClick);
    return node;
  }

  const RELATIVE = typeof Intl !== "undefined" && Intl.RelativeTimeFormat
    ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }) : null;
  const UNITS = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600],
    ["minute", 60], ["second", 1]];

  function relativeTime(iso) {
    const then = Date.parse(iso);
    if (Number.isNaN(then)) return "";
    const seconds = Math.round((then - Date.now()) / 1000);
    if (!RELATIVE) return new Date(then).toLocaleString();
    if (Math.abs(seconds) < 45) return RELATIVE.format(0, "second");
    for (const [unit, size] of UNITS) {
      if (Math.abs(seconds) >= size) return RELATIVE.format(Math.round(seconds / size), unit);
    }
    return RELATIVE.format(seconds, "second");
  }

  function newestFirst(a, b) {
    const byTime = Date.parse(b.createdAt) - Date.parse(a.createdAt);
    return byTime !== 0 ? byTime : (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
  }

  class GraphQLError extends Error {
    constructor(errors) {
      super(errors.map((error) => error.message).join("; "));
      this.codes = errors.map((error) => (error.extensions && error.extensions.code) || "");
    }
  }

  class TidingsInbox extends HTMLElement {
    static get observedAttributes() {
      return ["application-identifier", "subscriber-id", "subscriber-hash", "api-url"];
    }

    constructor() {
      super();
      this._root = this.attachShadow({ mode: "open" });
      this._items = new Map(); // id -> { node: notification, element: <li> }
      this._generation = 0; // bumps on every restart, so late answers of an old session are dropped
      this._timers = new Set();
      this._socket = null;
      this._build();
      this._onOnline = () => this._reconnectNow();
      this._onOffline = () => this._dropSocket("offline");
      this._onDocumentClick = (event) => {
        if (!this._panel.hidden && !event.composedPath().includes(this)) this._toggle(false);
      };
    }

    connectedCallback() {
      window.addEventListener("online", this._onOnline);
      window.addEventListener("offline", this._onOffline);
      document.addEventListener("click", this._onDocumentClick);
      this._restart();
      this._ticker = setInterval(() => this._refreshTimes(), 60000);
    }

    disconnectedCallback() {
      window.removeEventListener("online", this._onOnline);
      window.removeEventListener("offline", this._onOffline);
      document.removeEventListener("click", this._onDocumentClick);
      clearInterval(this._ticker);
      this._stop();
    }

    attributeChangedCallback(_name, before, after) {
      // Several attributes are usually set in a row: restart once, after the last of them.
      if (before === after || !this.isConnected || this._restartQueued) return;
      this._restartQueued = true;
      queueMicrotask(() => {
        this._restartQueued = false;
        if (this.isConnected) this._restart();
      });
    }

    get apiUrl() {
      const given = this.getAttribute("api-url");
      return (given ? new URL(given, location.href) : new URL(SCRIPT_ORIGIN)).href.replace(/\/+$/, "");
    }

    // ---- DOM ---------------------------------------------------------------------------------------------------

    _build() {
      if ("adoptedStyleSheets" in this._root && typeof CSSStyleSheet === "function") {
        // A constructed sheet needs no style-src 'unsafe-inline' on host pages with a strict CSP.
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(STYLE);
        this._root.adoptedStyleSheets = [sheet];
      } else {
        this._root.append(el("style", null, STYLE));
      }
      const svg = document.createElementNS(SVG, "svg");
      svg.setAttribute("viewBox", "0 0 24 24");
      svg.setAttribute("aria-hidden", "true");
      const path = svg.appendChild(document.createElementNS(SVG, "path"));
      path.setAttribute("d", BELL);
      path.setAttribute("fill", "currentColor");
      this._badge = el("span", "badge", null, "badge");
      this._badge.hidden = true;
      this._bell = button("bell", null, "bell", () => this._toggle());
      this._bell.setAttribute("aria-expanded", "false");
      this._bell.append(svg, this._badge);

      this._panel = el("section", "panel", null, "panel");
      this._panel.hidden = true;
      this._panel.setAttribute("aria-label", "Notifications");
      this._status = el("span", "status", "connecting", "status");
      this._status.setAttribute("role", "status");
      const header = el("header");
      header.append(el("strong", null, "Notifications"), this._status,
        button("mark-all-read", "Mark all as read", "link", () => this._run(() => this._markAllRead())));
      this._list = el("ul", "list");
      this._empty = el("p", "empty", "No notifications yet", "empty");
      this._more = button("load-more", "Load more", "link more", () => this._run(() => this._loadPage()));
      this._more.hidden = true;
      this._panel.append(header, this._list, this._empty, this._more);
      this._root.append(this._bell, this._panel);
      this._bell.setAttribute("aria-label", "Notifications");
    }

    _toggle(open = this._panel.hidden) {
      this._panel.hidden = !open;
      this._bell.setAttribute("aria-expanded", String(open));
      if (open) this._run(() => this._markShownSeen());
    }

    _render(node) {
      const item = el("li", "item");
      item.dataset.id = node.id;
      item.dataset.read = String(node.isRead);
      const avatar = safeUrl(node.avatar);
      if (avatar) {
        const image = Object.assign(el("img", "avatar", null, "avatar"), { alt: "", referrerPolicy: "no-referrer" });
        image.src = avatar;
        item.append(image);
      }
      const main = el("div", null, null, "main");
      main.tabIndex = 0;
      main.setAttribute("role", "link");
      if (node.subject) main.append(el("p", "subject", node.subject, "subject"));
      const time = el("time", "time", relativeTime(node.createdAt));
      time.dateTime = node.createdAt;
      time.title = new Date(node.createdAt).toLocaleString();
      main.append(el("p", "body", node.body, "body"), time);
      const open = () => this._run(() => this._open(node.id));
      main.addEventListener("click", open);
      main.addEventListener("keydown", (event) => {
        if (event.key === "Enter") open();
      });
      const content = el("div", null, null, "content");
      content.append(main);
      const actions = el("div", null, null, "actions");
      for (const [kind, action] of [["PRIMARY", node.primaryAction], ["SECONDARY", node.secondaryAction]]) {
        if (!action) continue;
        const part = kind === "PRIMARY" ? "action-primary" : "action-secondary";
        const run = () => this._run(() => this._complete(node.id, kind));
        actions.append(Object.assign(button(part, action.label, `action ${kind.toLowerCase()}`, run),
          { disabled: Boolean(action.isCompleted) }));
      }
      if (actions.childElementCount) content.append(actions);
      const controls = el("div", null, null, "controls");
      controls.append(
        button(node.isRead ? "mark-unread" : "mark-read", node.isRead ? "Mark as unread" : "Mark as read", null,
          () => this._run(() => this._setRead(node.id, !node.isRead))),
        button("archive", "Archive", null, () => this._run(() => this._archive(node.id))),
      );
      item.append(content, controls);
      return item;
    }

    /** Insert or replace a notification in the list, keeping newest first; archived ones leave the list. */
    _put(node) {
      const known = this._items.get(node.id);
      if (node.isArchived) return this._remove(node.id);
      const element = this._render(node);
      if (known) {
        known.element.replaceWith(element);
      } else {
        const next = [...this._items.values()].map((entry) => entry.node).sort(newestFirst)
          .find((other) => newestFirst(node, other) < 0);
        this._list.insertBefore(element, next ? this._items.get(next.id).element : null);
      }
      this._items.set(node.id, { node, element });
      this._empty.hidden = this._items.size > 0;
    }

    /** Whether a notification not shown yet (unarchived, say) falls among the loaded pages rather than a later one. */
    _inLoadedRange(node) {
      if (node.isArchived) return false;
      if (this._more.hidden) return true;
      const shown = [...this._items.values()].map((entry) => entry.node).sort(newestFirst);
      return shown.length > 0 && newestFirst(node, shown[shown.length - 1]) < 0;
    }

    _remove(id) {
      const known = this._items.get(id);
      if (known) known.element.remove();
      this._items.delete(id);
      this._empty.hidden = this._items.size > 0;
    }

    _refreshTimes() {
      for (const { node, element } of this._items.values()) {
        const time = element.querySelector("time");
        if (time) time.textContent = relativeTime(node.createdAt);
      }
    }

    _setCounts(counts) {
      const unread = Math.max(0, Number(counts.unread) || 0);
      this._badge.textContent = unread > 99 ? "99+" : String(unread);
      this._badge.hidden = unread === 0;
      this._bell.setAttribute("aria-label", unread ? `Notifications, ${unread} unread` : "Notifications");
      if (unread !== this._unread) {
        this._unread = unread;
        this._emit("tidings:unread-count", { unread, unseen: counts.unseen, total: counts.total });
      }
    }

    _setStatus(text) {
      this._status.textContent = text;
      this.dataset.status = text;
    }

    _emit(type, detail) {
      this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
    }

    // ---- HTTP --------------------------------------------------------------------------------------------------

    async _post(query, variables, withToken = true) {
      const headers = { "Content-Type": "application/json" };
      if (withToken) headers.Authorization = `Bearer ${this._token}`;
      const response = await fetch(`${this.apiUrl}/graphql`, {
        method: "POST", headers, body: JSON.stringify({ query, variables }), credentials: "omit", mode: "cors",
      });
      let body;
      try {
        body = await response.json();
      } catch (_) {
        throw new Error(`HTTP ${response.status}`);
      }
      if (body.errors && body.errors.length) throw new GraphQLError(body.errors);
      if (!response.ok || !body.data) throw new Error(`HTTP ${response.status}`);
      return body.data;
    }

    /** A subscriber-token call; an expired token is renewed once and the call repeated. */
    async _call(query, variables) {
      try {
        return await this._post(query, variables);
      } catch (error) {
        if (!(error instanceof GraphQLError) || !error.codes.includes("UNAUTHENTICATED")) throw error;
        await this._session();
        return this._post(query, variables);
      }
    }

    async _session() {
      const generation = this._generation;
      const session = (await this._post(SESSION, {
        a: this.getAttribute("application-identifier"),
        s: this.getAttribute("subscriber-id"),
        h: this.getAttribute("subscriber-hash") || null,
      }, false)).inboxSession;
      if (generation === this._generation) this._token = session.token; // not a token for the attributes before
      return session;
    }

    /** Runs a user action; a failure shows in the status line instead of vanishing into the console. */
    _run(action) {
      const generation = this._generation;
      Promise.resolve().then(action).catch((error) => {
        if (generation === this._generation) this._setStatus(`error: ${error.message}`);
      });
    }

    async _loadPage() {
      const generation = this._generation;
      const data = await this._call(FEED, { first: PAGE_SIZE, after: this._endCursor || null });
      if (generation !== this._generation) return;
      const page = data.inboxNotifications;
      for (const edge of page.edges) if (!this._items.has(edge.node.id)) this._put(edge.node);
      this._endCursor = page.pageInfo.endCursor || this._endCursor;
      this._more.hidden = !page.pageInfo.hasNextPage;
    }

    async _open(id) {
      const known = this._items.get(id);
      if (!known) return;
      if (!known.node.isRead) await this._setRead(id, true);
      const target = safeUrl(known.node.redirectUrl);
      if (target) location.assign(target);
    }

    async _setRead(id, read) {
      const data = await this._call(read ? MARK_READ : MARK_UNREAD, { id });
      this._applyMutation(read ? data.inboxMarkRead : data.inboxMarkUnread);
    }

    async _archive(id) {
      this._applyMutation((await this._call(ARCHIVE, { id })).inboxArchive);
    }

    async _complete(id, kind) {
      const node = (await this._call(COMPLETE, { id, action: kind })).inboxCompleteAction;
      this._applyMutation(node);
      const action = kind === "PRIMARY" ? node.primaryAction : node.secondaryAction;
      const target = safeUrl(action && action.url);
      if (target) location.assign(target);
    }

    async _markAllRead() {
      await this._call(MARK_ALL_READ, {});
      for (const { node } of [...this._items.values()]) if (!node.isRead) this._put({ ...node, isRead: true });
      await this._syncCountsIfNotLive();
    }

    async _markShownSeen() {
      const ids = [...this._items.values()].filter(({ node }) => !node.isSeen).map(({ node }) => node.id);
      if (!ids.length || !this._token) return;
      await this._call(MARK_SEEN, { ids });
      for (const id of ids) {
        const known = this._items.get(id);
        if (known) known.node.isSeen = true;
      }
    }

    async _applyMutation(node) {
      this._put(node);
      await this._syncCountsIfNotLive();
    }

    // While the stream is live its CountsChanged events keep the badge exact; without it, ask.
    async _syncCountsIfNotLive() {
      if (this._live) return;
      const counts = (await this._call(COUNTS, {})).inboxCounts[0];
      if (counts) this._setCounts(counts);
    }

    // ---- lifecycle and realtime ----------------------------------------------------------------------------------

    _stop() {
      this._generation += 1;
      for (const timer of this._timers) clearTimeout(timer);
      this._timers.clear();
      this._dropSocket("stopped");
    }

    _later(ms, fn) {
      const timer = setTimeout(() => {
        this._timers.delete(timer);
        fn();
      }, ms);
      this._timers.add(timer);
      return timer;
    }

    _restart() {
      this._stop();
      this._items.clear();
      this._list.replaceChildren();
      this._empty.hidden = false;
      this._more.hidden = true;
      this._endCursor = null;
      this._cursor = null;
      this._lastSeq = 0;
      this._countsSeq = -1;
      this._attempt = 0;
      this._token = null;
      if (!this.getAttribute("application-identifier") || !this.getAttribute("subscriber-id")) {
        this._setStatus("not configured");
        return;
      }
      const generation = this._generation;
      this._setStatus("connecting");
      (async () => {
        const session = await this._session();
        if (generation !== this._generation) return;
        this._setCounts(session.counts);
        this._cursor = String(session.seq);
        this._lastSeq = session.seq;
        this._countsSeq = session.seq;
        await this._loadPage();
        if (generation === this._generation) this._connect();
      })().catch((error) => {
        if (generation !== this._generation) return;
        this._setStatus(`error: ${error.message}`);
        // A refused session (wrong hash, unknown application) stays refused: retrying would only hammer the API.
        if (!(error instanceof GraphQLError && error.codes.some((code) => REFUSED.has(code)))) {
          this._scheduleReconnect(true);
        }
      });
    }

    _dropSocket(status) {
      const socket = this._socket;
      this._socket = null;
      this._live = false;
      clearTimeout(this._pingTimer);
      clearTimeout(this._pongTimer);
      if (socket) {
        socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
        try {
          socket.close(1000);
        } catch (_) { /* already closing */ }
      }
      if (status) this._setStatus(status);
    }

    _reconnectNow() {
      if (this._socket || !this.isConnected) return;
      this._attempt = 0;
      for (const timer of this._timers) clearTimeout(timer);
      this._timers.clear();
      if (this._token && this._cursor !== null) this._connect();
      else this._restart();
    }

    /** Exponential backoff with jitter: 0.5 s doubling to 10 s; `fresh` starts over with a new session and feed. */
    _scheduleReconnect(fresh = false) {
      const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this._attempt);
      const delay = base * (0.75 + Math.random() * 0.5);
      this._attempt += 1;
      const generation = this._generation;
      this._later(delay, () => {
        if (generation !== this._generation) return;
        if (typeof navigator !== "undefined" && navigator.onLine === false) return; // "online" reconnects
        if (fresh) {
          const attempt = this._attempt;
          this._restart();
          this._attempt = attempt;
        } else {
          this._connect();
        }
      });
    }

    _connect() {
      if (typeof navigator !== "undefined" && navigator.onLine === false) {
        this._setStatus("offline");
        return;
      }
      const url = new URL(`${this.apiUrl}/graphql`);
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      const socket = new WebSocket(url.href, "graphql-transport-ws");
      const generation = this._generation;
      this._socket = socket;
      this._setStatus(this._attempt ? "reconnecting" : "connecting");
      socket.onopen = () => socket.send(JSON.stringify({ type: "connection_init", payload: { token: this._token } }));
      socket.onmessage = (event) => {
        this._alive();
        let message = null;
        try {
          message = JSON.parse(event.data);
        } catch (_) { /* not JSON: ignored */ }
        if (message) this._onMessage(socket, message);
      };
      socket.onclose = (event) => {
        if (this._socket !== socket) return;
        this._dropSocket(null);
        if (generation !== this._generation) return;
        if (event.code === 4401 || event.code === 4403) {
          // The token expired (or the server no longer accepts it): a new session, then resume where we were.
          this._setStatus("reconnecting");
          this._session().then(
            () => this._scheduleReconnect(),
            (error) => {
              this._setStatus(`error: ${error.message}`);
              this._scheduleReconnect();
            },
          );
          return;
        }
        this._setStatus(navigator.onLine === false ? "offline" : "reconnecting");
        if (RESTARTING.has(event.code) && this._attempt === 0) {
          // Only after a connection that was acknowledged: a server that keeps closing gets the usual backoff.
          this._attempt = 1;
          this._later(Math.random() * RESTART_SPREAD_MS, () => {
            if (generation === this._generation && !this._socket) this._connect();
          });
          return;
        }
        this._scheduleReconnect();
      };
    }

    _send(socket, message) {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    }

    _alive() {
      clearTimeout(this._pongTimer);
      clearTimeout(this._pingTimer);
      const socket = this._socket;
      if (!socket) return;
      this._pingTimer = setTimeout(() => {
        this._send(socket, { type: "ping" });
        this._pongTimer = setTimeout(() => {
          if (this._socket === socket) socket.close(4000, "no pong");
        }, PONG_TIMEOUT_MS);
      }, KEEPALIVE_MS);
    }

    _onMessage(socket, message) {
      switch (message.type) {
        case "connection_ack":
          this._send(socket, { id: "1", type: "subscribe", payload: {
            query: EVENTS, variables: { after: this._cursor },
          } });
          this._attempt = 0;
          this._live = true;
          this._setStatus("live");
          // Whatever changed while we were away arrives as replayed events; counts end the replay.
          break;
        case "ping":
          this._send(socket, { type: "pong", payload: message.payload });
          break;
        case "next":
          if (message.id === "1" && message.payload) {
            if (message.payload.errors && message.payload.errors.length) {
              this._setStatus(`error: ${new GraphQLError(message.payload.errors).message}`);
            }
            const data = message.payload.data;
            if (data && data.inboxEvents) this._onEvent(data.inboxEvents);
          }
          break;
        case "error": // the subscription was refused (a cursor the server no longer knows?): start over
          this._dropSocket(`error: ${new GraphQLError(message.payload || []).message}`);
          this._scheduleReconnect(true);
          break;
        case "complete":
          socket.close(1000, "complete");
          break;
        default:
          break;
      }
    }

    _onEvent(event) {
      const seq = Number(event.seq);
      if (event.__typename === "CountsChanged") {
        if (seq >= this._countsSeq) {
          this._countsSeq = seq;
          this._setCounts(event.counts);
        }
        if (seq >= this._lastSeq && event.cursor) this._cursor = event.cursor;
        return;
      }
      if (seq <= this._lastSeq) return; // replayed twice (a reconnect raced a live event): already applied
      this._lastSeq = seq;
      if (event.cursor) this._cursor = event.cursor;
      if (event.__typename === "NotificationReceived") {
        if (!this._items.has(event.notification.id)) {
          this._put(event.notification);
          this._emit("tidings:notification", { notification: event.notification });
        }
      } else if (event.__typename === "NotificationUpdated") {
        if (event.deleted || !event.notification) this._remove(event.notificationId);
        else if (this._items.has(event.notificationId) || this._inLoadedRange(event.notification)) {
          this._put(event.notification);
        }
      }
    }
  }

  customElements.define("tidings-inbox", TidingsInbox);
})();
