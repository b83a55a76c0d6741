// jwtlite demo: a plain-JavaScript client of the jwtlite API on another origin.
//
// Body transport: tokens live in memory only (never localStorage), so reloading the page logs
// out; the claims shown are decoded without verification, only the API can check a signature.
// Cookie transport: the tokens are HttpOnly cookies this page never sees; it sends its
// requests with credentials and echoes the CSRF value (a readable cookie) in X-CSRF-TOKEN.
"use strict";

(function () {
  const config = window.JWTLITE_DEMO_CONFIG || {};
  const API_URL = String(config.apiUrl || "http://localhost:8000").replace(/\/+$/, "");
  const COOKIES = config.tokenTransport === "cookie" || config.tokenTransport === "both";
  const CSRF_HEADER = "X-CSRF-TOKEN";
  const TICK_MS = 250;
  // After a failed automatic refresh (API down, say), wait this long before trying again.
  const RETRY_DELAY_MS = 2000;

  const $ = (id) => document.getElementById(id);
  const state = {
    access: null, // body transport: the tokens; cookie transport: always null
    refresh: null,
    session: 0, // cookie transport: a number per login, 0 when logged out
    csrf: {}, // cookie transport: the CSRF values the API answered with (a fallback)
    accessClaims: null, // cookie transport: only {exp, iat} (the token is unreadable)
    refreshClaims: null,
    username: "",
    refreshing: null, // the one refresh request in flight, shared by every caller
    refreshCount: 0,
    retryAt: 0,
  };

  class ApiError extends Error {
    constructor(status, body, message) {
      super(message);
      this.name = "ApiError";
      this.status = status; // 0: no answer reached the page (CORS block or network error)
      this.body = body;
    }
  }

  function nowSeconds() {
    return Date.now() / 1000;
  }

  // --- the page's messages -----------------------------------------------------------

  function showStatus(text) {
    $("status").textContent = text;
  }

  function showError(text) {
    const box = $("error");
    box.textContent = text || "";
    box.hidden = !text;
  }

  function log(text) {
    const item = document.createElement("li");
    const time = new Date().toLocaleTimeString();
    item.textContent = `${time} ${text}`;
    const list = $("log");
    list.prepend(item);
    while (list.children.length > 50) list.lastElementChild.remove();
  }

  // --- talking to the API --------------------------------------------------------------

  // The message of an error body in DRF's shapes: {"detail": ...} or {"field": [messages]}.
  function messageOf(body, status) {
    if (body && typeof body === "object" && !Array.isArray(body)) {
      if (typeof body.detail === "string") return body.detail;
      const parts = [];
      for (const [field, messages] of Object.entries(body)) {
        const text = Array.isArray(messages) ? messages.join(" ") : String(messages);
        parts.push(field === "non_field_errors" ? text : `${field}: ${text}`);
      }
      if (parts.length) return parts.join(" ");
    }
    return `The API answered with status ${status}.`;
  }

  // The CSRF value of the "access" or "refresh" cookie: read from document.cookie (any of
  // the names the API uses with and without Secure), else the one the API last answered.
  function csrfValue(kind) {
    const plain = `csrf_${kind}_token`;
    const names = [plain, `__Host-${plain}`, `__Secure-${plain}`];
    for (const pair of document.cookie.split(";")) {
      const [name, ...rest] = pair.trim().split("=");
      if (names.includes(name)) return rest.join("=");
    }
    return state.csrf[kind] || "";
  }

  async function callApi(path, { method = "GET", body, token, csrf } = {}) {
    const headers = { Accept: "application/json" };
    const credentials = COOKIES ? "include" : "omit";
    const init = { method, headers, mode: "cors", credentials, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    if (token) headers.Authorization = `Bearer ${token}`;
    if (csrf) headers[CSRF_HEADER] = csrf;
    let response;
    try {
      response = await fetch(API_URL + path, init);
    } catch (err) {
      // fetch rejects with a bare TypeError both when the browser's CORS check blocks the
      // answer and when nothing answers: a page is deliberately not told which.
      throw new ApiError(
        0,
        null,
        `Cannot reach the API at ${API_URL} from this page (${location.origin}): ` +
          "the browser blocked the request (CORS: is this origin in " +
          "JWTLITE_CORS_ALLOWED_ORIGINS?" +
          (COOKIES ? " With cookies, is JWTLITE_CORS_ALLOW_CREDENTIALS=true?" : "") +
          ") or the API is not running.",
      );
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) throw new ApiError(response.status, data, messageOf(data, response.status));
    return data;
  }

  // --- tokens --------------------------------------------------------------------------

  // Decode a JWT's payload WITHOUT verifying it: for display only.
  function decodeUnverified(token) {
    const parts = String(token).split(".");
    if (parts.length !== 3) throw new Error("not a compact JWT");
    let b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    b64 += "=".repeat((4 - (b64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  }

  function claimsOrNull(token) {
    try {
      return decodeUnverified(token);
    } catch (err) {
      log(`Could not decode a token: ${err.message}`);
      return null;
    }
  }

  function setTokens(access, refresh) {
    state.access = access;
    state.refresh = refresh;
    state.accessClaims = claimsOrNull(access);
    state.refreshClaims = claimsOrNull(refresh);
    state.retryAt = 0;
    $("access-claims").textContent = JSON.stringify(state.accessClaims, null, 2);
    $("refresh-claims").textContent = JSON.stringify(state.refreshClaims, null, 2);
    const userId = state.accessClaims ? state.accessClaims.user_id : "?";
    $("session-user").textContent = `${state.username} (user_id ${userId})`;
    $("session").hidden = false;
    updateCountdowns();
  }

  // Cookie transport: the answer of a login or refresh names each new token's expiry and
  // CSRF value; the tokens themselves went into HttpOnly cookies.
  function setCookieSession(body) {
    const now = Math.floor(nowSeconds());
    for (const kind of ["access", "refresh"]) {
      const exp = body[`${kind}_expires_at`];
      if (typeof exp !== "number") continue;
      state[`${kind}Claims`] = { exp, iat: now };
      state.csrf[kind] = body[`csrf_${kind}_token`];
      $(`${kind}-claims`).textContent =
        "(in an HttpOnly cookie: this page cannot read the token)\n" +
        JSON.stringify({ [`${kind}_expires_at`]: exp }, null, 2);
    }
    state.retryAt = 0;
    $("session-user").textContent = state.username;
    $("session").hidden = false;
    updateCountdowns();
  }

  function loggedIn() {
    return COOKIES ? state.session !== 0 : Boolean(state.access);
  }

  function canRefresh() {
    return COOKIES ? state.session !== 0 : Boolean(state.refresh);
  }

  function clearSession() {
    Object.assign(state, {
      access: null,
      refresh: null,
      session: 0,
      csrf: {},
      accessClaims: null,
      refreshClaims: null,
      refreshCount: 0,
    });
    $("access-claims").textContent = "(none)";
    $("refresh-claims").textContent = "(none)";
    $("me").textContent = "(not called yet)";
    $("refresh-count").textContent = "0";
    $("session").hidden = true;
    updateCountdowns();
  }

  function formatRemaining(seconds) {
    if (seconds <= 0) return "expired";
    if (seconds < 60) return `${seconds.toFixed(1)} s`;
    const whole = Math.floor(seconds);
    return `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, "0")} s`;
  }

  function updateCountdown(name, claims) {
    const label = $(`${name}-countdown`);
    const bar = $(`${name}-progress`);
    if (!claims || typeof claims.exp !== "number") {
      label.textContent = "—";
      bar.value = 0;
      return;
    }
    const left = claims.exp - nowSeconds();
    const at = new Date(claims.exp * 1000).toLocaleTimeString();
    label.textContent = `${formatRemaining(left)} (exp ${at}, by this browser's clock)`;
    const lifetime = typeof claims.iat === "number" ? claims.exp - claims.iat : 0;
    bar.value = lifetime > 0 ? Math.min(1, Math.max(0, left / lifetime)) : 0;
  }

  function updateCountdowns() {
    updateCountdown("access", state.accessClaims);
    updateCountdown("refresh", state.refreshClaims);
  }

  // Refresh the access token; concurrent callers share one request. A 401 (refresh token
  // expired, blacklisted or spent) ends the session.
  function refreshAccess(reason) {
    if (!canRefresh()) return Promise.reject(new ApiError(401, null, "Not logged in."));
    if (state.refreshing) return state.refreshing;
    const refresh = state.refresh;
    const session = state.session;
    const current = () => (COOKIES ? state.session === session : state.refresh === refresh);
    // With cookies the refresh token travels by itself: the body stays empty, and the CSRF
    // value of the refresh cookie proves this page could read it.
    const request = COOKIES
      ? { method: "POST", body: {}, csrf: csrfValue("refresh") }
      : { method: "POST", body: { refresh } };
    state.refreshing = callApi("/accounts/token/refresh/", request)
      .then(
        (data) => {
          if (!current()) return; // logged out meanwhile
          if (COOKIES) setCookieSession(data);
          else setTokens(data.access, data.refresh || refresh);
          state.refreshCount += 1;
          $("refresh-count").textContent = String(state.refreshCount);
          log(`Access token refreshed (${reason}).`);
        },
        (err) => {
          if (err.status === 401 && current()) {
            clearSession();
            err.message = `Your session has ended (${err.message}): please log in again.`;
            showStatus("Logged out.");
            log(err.message);
          }
          throw err;
        },
      )
      .finally(() => {
        state.refreshing = null;
      });
    return state.refreshing;
  }

  function accessExpired() {
    return state.accessClaims !== null && nowSeconds() >= state.accessClaims.exp;
  }

  // A call with the access token: refreshed first if it has expired by our clock, and
  // refreshed and retried once if the API still says 401 (clocks differ).
  // (With cookies there is no token to attach: the access cookie goes by itself.)
  async function authorized(path) {
    if (!loggedIn()) throw new ApiError(401, null, "Not logged in.");
    if (accessExpired()) await refreshAccess("expired before a call");
    try {
      return await callApi(path, { token: state.access });
    } catch (err) {
      if (err.status !== 401 || !canRefresh()) throw err;
      log(`The API refused the access token (${err.message}): refreshing and retrying.`);
      await refreshAccess("the API answered 401");
      return callApi(path, { token: state.access });
    }
  }

  function tick() {
    updateCountdowns();
    if (!loggedIn() || state.refreshing || Date.now() < state.retryAt || !accessExpired()) {
      return;
    }
    refreshAccess("it expired").catch((err) => {
      showError(err.message);
      if (canRefresh()) state.retryAt = Date.now() + RETRY_DELAY_MS;
    });
  }

  // --- buttons -------------------------------------------------------------------------

  function credentials() {
    return { username: $("username").value.trim(), password: $("password").value };
  }

  // Run a button's action: one at a time, errors shown in the alert box.
  async function act(button, action) {
    button.disabled = true;
    showError("");
    try {
      await action();
    } catch (err) {
      showError(err.message);
      log(`Error: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  }

  async function register() {
    const body = credentials();
    const email = $("email").value.trim();
    if (email) body.email = email;
    const user = await callApi("/accounts/register/", { method: "POST", body });
    showStatus(`Registered "${user.username}" (id ${user.id}). You can log in now.`);
    log(`Registered ${user.username}.`);
  }

  async function logIn() {
    const body = credentials();
    const tokens = await callApi("/accounts/token/", { method: "POST", body });
    state.username = body.username;
    state.refreshCount = 0;
    $("refresh-count").textContent = "0";
    $("me").textContent = "(not called yet)";
    if (COOKIES) {
      state.session += 1;
      setCookieSession(tokens);
    } else {
      setTokens(tokens.access, tokens.refresh);
    }
    $("password").value = "";
    showStatus(`Logged in as ${body.username}.`);
    log(`Logged in as ${body.username}.`);
  }

  async function callMe() {
    const me = await authorized("/accounts/me/");
    $("me").textContent = JSON.stringify(me, null, 2);
    showStatus(`accounts/me/ answered for ${me.username}.`);
    log("Called accounts/me/.");
  }

  async function refreshNow() {
    await refreshAccess("by hand");
    showStatus("Access token refreshed.");
  }

  async function logOut() {
    const refresh = state.refresh;
    const wasLoggedIn = canRefresh();
    // With cookies: an empty body, the refresh cookie, its CSRF value; the answer clears
    // every cookie.
    const request = COOKIES
      ? { method: "POST", body: {}, csrf: csrfValue("refresh") }
      : { method: "POST", body: { refresh } };
    clearSession();
    if (!wasLoggedIn) return;
    try {
      await callApi("/accounts/token/blacklist/", request);
    } catch (err) {
      showStatus("Logged out here.");
      throw new ApiError(err.status, err.body, `Logged out here, but the API said: ${err.message}`);
    }
    showStatus("Logged out: the refresh token is blacklisted.");
    log("Logged out (refresh token blacklisted).");
  }

  async function checkApi() {
    try {
      await callApi("/health");
      showStatus(`Connected to the API at ${API_URL}.`);
    } catch (err) {
      showError(err.message);
    }
  }

  // --- sessions and the account lifecycle (issue 11) -----------------------------------

  // A call with the access token and any method or body: refreshed first if it has
  // expired, refreshed and retried once on a 401 (as authorized() does for GETs).
  async function authorizedCall(path, options = {}) {
    if (!state.access) throw new ApiError(401, null, "Not logged in.");
    if (accessExpired()) await refreshAccess("expired before a call");
    try {
      return await callApi(path, { ...options, token: state.access });
    } catch (err) {
      if (err.status !== 401 || !state.refresh) throw err;
      log(`The API refused the access token (${err.message}): refreshing and retrying.`);
      await refreshAccess("the API answered 401");
      return callApi(path, { ...options, token: state.access });
    }
  }

  function renderSessions(sessions) {
    const list = $("sessions-list");
    list.replaceChildren();
    for (const session of sessions) {
      const item = document.createElement("li");
      item.className = "session";
      item.dataset.id = session.id;
      const where = `${session.user_agent || "unknown client"} from ${session.address || "?"}`;
      const text = document.createElement("span");
      text.textContent =
        `${session.current ? "This device: " : ""}${where}, since ${session.created}, ` +
        `last used ${session.last_used}`;
      item.append(text);
      if (session.current) item.classList.add("current");
      const end = document.createElement("button");
      end.type = "button";
      end.className = "end-session";
      end.textContent = "End";
      end.addEventListener("click", () => act(end, () => endSession(session.id)));
      item.append(" ", end);
      list.append(item);
    }
  }

  async function listSessions() {
    const sessions = await authorizedCall("/accounts/sessions/");
    renderSessions(sessions);
    showStatus(`You are logged in ${sessions.length} time(s).`);
    log(`Listed ${sessions.length} session(s).`);
  }

  async function endSession(id) {
    await authorizedCall(`/accounts/sessions/${encodeURIComponent(id)}/`, { method: "DELETE" });
    log(`Ended session ${id}.`);
    if (state.accessClaims && state.accessClaims.jti.slice(0, 16) === id) {
      clearSession();
      showStatus("This session has ended: please log in again.");
      return;
    }
    await listSessions();
  }

  async function logOutEverywhere() {
    await authorizedCall("/accounts/logout-all/", { method: "POST" });
    clearSession();
    showStatus("Logged out everywhere: every session has ended.");
    log("Logged out everywhere.");
  }

  async function changePassword() {
    const body = { old_password: $("old-password").value, new_password: $("new-password").value };
    const tokens = await authorizedCall("/accounts/password/", { method: "POST", body });
    $("old-password").value = "";
    $("new-password").value = "";
    setTokens(tokens.access, tokens.refresh);
    showStatus("Password changed: every other session has ended; this one goes on.");
    log("Password changed.");
  }

  function startSessions() {
    $("list-sessions").addEventListener("click", () => act($("list-sessions"), listSessions));
    $("logout-all").addEventListener("click", () => act($("logout-all"), logOutEverywhere));
    $("password-form").addEventListener("submit", (event) => {
      event.preventDefault();
      act($("change-password"), changePassword);
    });
    // The panel shows while logged in, as the session panel does.
    new MutationObserver(() => {
      $("sessions-panel").hidden = $("session").hidden;
      if ($("session").hidden) $("sessions-list").replaceChildren();
    }).observe($("session"), { attributes: true, attributeFilter: ["hidden"] });
  }

  function start() {
    $("api-url").textContent = API_URL;
    $("page-origin").textContent = location.origin;
    $("transport").textContent = COOKIES
      ? "Token transport: cookies. The tokens are HttpOnly cookies this page never sees; " +
        "it sends the CSRF value in X-CSRF-TOKEN."
      : "Token transport: body. This page keeps the tokens in memory.";
    $("credentials").addEventListener("submit", (event) => {
      event.preventDefault();
      act($("login"), logIn);
    });
    $("register").addEventListener("click", () => act($("register"), register));
    $("call-me").addEventListener("click", () => act($("call-me"), callMe));
    $("refresh-now").addEventListener("click", () => act($("refresh-now"), refreshNow));
    $("logout").addEventListener("click", () => act($("logout"), logOut));
    startSessions();
    clearSession();
    window.setInterval(tick, TICK_MS);
    checkApi();
  }

  start();
})();
