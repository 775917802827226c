// The JSON API and the signed-in session. Tokens live in localStorage (the page has no other
// storage that survives WeChat closing the web view); the access token is refreshed a minute
// before it expires, when the page comes back to the foreground, and once on a 401.

const STORAGE_KEY = "bk.session";
const REFRESH_AHEAD_MS = 60_000;

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || (status ? `请求失败（${status}）` : "网络连接失败，请检查网络后重试"));
    this.name = "ApiError";
    this.status = status;
    this.code = body?.error || (status ? "http_error" : "network_error");
    this.reason = body?.reason || null;
    this.body = body || {};
  }
}

let session = read();
let refreshTimer = null;
let refreshing = null;
const listeners = new Set();

function read() {
  try {
    const stored = JSON.parse(localStorage.getItem(STORAGE_KEY) || "null");
    return stored && stored.access_token && stored.refresh_token ? stored : null;
  } catch {
    return null;
  }
}

function write(next) {
  session = next;
  if (next) localStorage.setItem(STORAGE_KEY, JSON.stringify(next));
  else localStorage.removeItem(STORAGE_KEY);
  schedule();
  for (const listener of listeners) listener(session);
}

export const getSession = () => session;
export const currentUser = () => session?.user || null;

// Called with the new session (or null) whenever it changes: sign-in, refresh, sign-out.
export function onSession(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function accept(tokens) {
  write({
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    expires_at: Date.now() + tokens.expires_in * 1000,
    user: tokens.user,
  });
  return session;
}

function schedule() {
  clearTimeout(refreshTimer);
  if (!session) return;
  const wait = Math.max(5_000, session.expires_at - Date.now() - REFRESH_AHEAD_MS);
  refreshTimer = setTimeout(() => refresh().catch(() => {}), wait);
}

// One refresh at a time: the server rotates refresh tokens, and using one twice ends the
// session. Another tab may have refreshed already (storage event below), so re-read first.
export function refresh() {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    const stored = read();
    if (stored && stored.refresh_token !== session?.refresh_token) {
      write(stored);
      if (stored.expires_at - Date.now() > REFRESH_AHEAD_MS) return session;
    }
    if (!session) throw new ApiError(401, { error: "unauthenticated", message: "请先登录" });
    try {
      const tokens = await request("/api/v1/auth/refresh", {
        method: "POST",
        json: { refresh_token: session.refresh_token },
        auth: false,
      });
      return accept(tokens);
    } catch (error) {
      if (error.status === 401) write(null);
      throw error;
    }
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

export async function login(username, password) {
  const tokens = await request("/api/v1/auth/login", {
    method: "POST",
    json: { username, password },
    auth: false,
  });
  return accept(tokens);
}

// --- WeChat web authorisation (网页授权): parents inside WeChat sign in with their openid -------

const WECHAT_KEY = "bk.wechat";

export const wechatLoginEnabled = () => document.getElementById("app")?.dataset.wechat === "true";
export const insideWechat = () => /MicroMessenger/i.test(navigator.userAgent);

// Off to WeChat, which comes back to this address with ?code=…&state=…; `next` is where to go
// after. The state is this tab's own: a code that comes back with another is not used.
export async function startWechatLogin(next = "") {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  const state = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  sessionStorage.setItem(WECHAT_KEY, JSON.stringify({ state, next, tried: true }));
  const { url } = await request(`/api/v1/auth/wechat/authorize`, { query: { state }, auth: false });
  location.replace(url);
}

// Back from WeChat: trade the code for a session. Returns where to go next, or null when this
// page load is not a return from WeChat. A failure is kept for the login page to show.
export async function finishWechatLogin() {
  const params = new URLSearchParams(location.search);
  const code = params.get("code");
  const state = params.get("state");
  if (!code || !state) return null;
  let pending = {};
  try {
    pending = JSON.parse(sessionStorage.getItem(WECHAT_KEY) || "{}");
  } catch {
    pending = {};
  }
  history.replaceState(null, "", `/${location.hash}`); // the code is spent either way
  if (pending.state !== state) {
    pending.error = "微信授权已过期，请重新进入";
    sessionStorage.setItem(WECHAT_KEY, JSON.stringify({ ...pending, state: null }));
    return "/login";
  }
  try {
    const tokens = await request("/api/v1/auth/wechat", { method: "POST", json: { code }, auth: false });
    accept(tokens);
    sessionStorage.removeItem(WECHAT_KEY);
    return pending.next || "/";
  } catch (error) {
    sessionStorage.setItem(WECHAT_KEY, JSON.stringify({ ...pending, state: null, error: error.message }));
    return "/login";
  }
}

// What the login page needs to know: whether WeChat was tried in this tab, and what went wrong.
export function wechatLoginState() {
  try {
    return JSON.parse(sessionStorage.getItem(WECHAT_KEY) || "{}");
  } catch {
    return {};
  }
}

export async function logout() {
  const token = session?.refresh_token;
  // Signed out on purpose: inside WeChat the login page must not sign straight back in.
  sessionStorage.setItem(WECHAT_KEY, JSON.stringify({ tried: true }));
  write(null);
  if (token) {
    await request("/api/v1/auth/logout", {
      method: "POST",
      json: { refresh_token: token },
      auth: false,
    }).catch(() => {});
  }
}

async function request(path, { method = "GET", json, form, query, auth = true, signal, blob = false } = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "") params.set(key, value);
    }
    const text = params.toString();
    if (text) url += (url.includes("?") ? "&" : "?") + text;
  }
  const headers = { Accept: "application/json" };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form; // FormData: the browser sets the multipart boundary
  }
  if (auth && session) headers.Authorization = `Bearer ${session.access_token}`;
  let response;
  try {
    response = await fetch(url, { method, headers, body, signal, cache: "no-store" });
  } catch (error) {
    if (error?.name === "AbortError") throw error;
    throw new ApiError(0, null);
  }
  if (response.status === 204) return null;
  // A picture behind the bearer token (an <img> cannot send it): the caller makes an object URL.
  if (blob && response.ok) return response.blob();
  let data = null;
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// Calls the API as the signed-in user; a 401 triggers one refresh and one retry.
export async function api(path, options = {}) {
  if (session && session.expires_at - Date.now() < 30_000) {
    await refresh().catch(() => {});
  }
  try {
    return await request(path, options);
  } catch (error) {
    if (error.status !== 401 || !session || options.auth === false) throw error;
    await refresh();
    return request(path, options);
  }
}

// Another tab signed in, refreshed or signed out.
window.addEventListener("storage", (event) => {
  if (event.key !== STORAGE_KEY) return;
  session = read();
  schedule();
  for (const listener of listeners) listener(session);
});

// Timers sleep while WeChat is in the background: catch up when the page is shown again.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && session) {
    if (session.expires_at - Date.now() < REFRESH_AHEAD_MS) refresh().catch(() => {});
  }
});

schedule();
