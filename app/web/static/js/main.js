// The H5 app: a hash router (#/parent/centre/3), the bottom tab bar of the signed-in role, and
// the page modules, loaded when first opened. Each page gets a context with its parameters and
// registers what must stop when it is left (players, timers, realtime subscriptions).

import { currentUser, finishWechatLogin, getSession, onSession } from "./api.js";
import { connect, onConnection } from "./realtime.js";
import { errorState, html, render } from "./ui.js";

const view = document.getElementById("view");
const tabbar = document.getElementById("tabbar");

const ICONS = {
  home: "M3 10.5 12 3l9 7.5V21h-6v-6H9v6H3z",
  chat: "M4 4h16v12H8l-4 4z",
  user: "M12 12a4.5 4.5 0 1 0 0-9 4.5 4.5 0 0 0 0 9zm-8 9c0-4 3.6-6.5 8-6.5s8 2.5 8 6.5z",
  doc: "M6 2h9l5 5v15H6zM14 2v6h6M9 13h8M9 17h8",
  camera: "M3 7h13v10H3zM16 10l5-3v10l-5-3z",
  chart: "M4 20V10h3v10zm6.5 0V4h3v16zM17 20v-7h3v7z",
  patrol: "M11 4a7 7 0 1 0 4.2 12.6L20 21.4l1.4-1.4-4.8-4.8A7 7 0 0 0 11 4z",
  tool: "M14.7 6.3a4 4 0 0 0-5.4 5.4L3 18l3 3 6.3-6.3a4 4 0 0 0 5.4-5.4l-2.6 2.6-2.4-.6-.6-2.4z",
};

// [path, label, icon, other paths that belong to the tab]
const TABS = {
  parent: [
    ["/parent", "托管机构", "home", ["/parent/centre", "/parent/watch", "/bind"]],
    ["/parent/concerns", "我的反映", "chat", ["/parent/concern"]],
    ["/me", "我的", "user"],
  ],
  operator: [
    ["/operator", "整改通知", "doc", ["/operator/notice"]],
    ["/operator/cameras", "摄像头", "camera"],
    ["/operator/concerns", "家长反映", "chat"],
    ["/me", "我的", "user"],
  ],
  inspector: [
    ["/inspector", "看板", "chart"],
    ["/inspector/centres", "巡查", "patrol", ["/inspector/patrol"]],
    ["/inspector/notices", "整改", "doc", ["/inspector/notice"]],
    ["/inspector/concerns", "家长反映", "chat", ["/inspector/concern"]],
    ["/me", "我的", "user"],
  ],
  technician: [
    ["/technician", "托管机构", "tool", ["/technician/centre"]],
    ["/me", "我的", "user"],
  ],
  admin: [
    ["/inspector", "看板", "chart"],
    ["/inspector/notices", "整改", "doc", ["/inspector/notice"]],
    ["/inspector/concerns", "家长反映", "chat", ["/inspector/concern"]],
    ["/me", "我的", "user"],
  ],
};

export const HOME = {
  parent: "/parent",
  operator: "/operator",
  inspector: "/inspector",
  technician: "/technician",
  admin: "/inspector",
};

// [pattern, module, export, roles allowed (empty: any signed-in user; null: public)]
const ROUTES = [
  ["/login", "login", "loginPage", null],
  ["/me", "account", "accountPage", []],
  ["/bind", "parent", "bindPage", ["parent"]],
  ["/parent", "parent", "homePage", ["parent"]],
  ["/parent/centre/:id", "parent", "centrePage", ["parent"]],
  ["/parent/watch/:cameraId", "parent", "watchPage", ["parent"]],
  ["/parent/concerns", "parent", "concernsPage", ["parent"]],
  ["/parent/concerns/new", "parent", "newConcernPage", ["parent"]],
  ["/parent/concern/:id", "parent", "concernPage", ["parent"]],
  ["/operator", "operator", "inboxPage", ["operator"]],
  ["/operator/notice/:id", "operator", "noticePage", ["operator"]],
  ["/operator/cameras", "operator", "camerasPage", ["operator"]],
  ["/operator/concerns", "operator", "concernsPage", ["operator"]],
  ["/inspector", "dashboard", "dashboardPage", ["inspector", "admin"]],
  ["/inspector/centres", "inspector", "centresPage", ["inspector"]],
  ["/inspector/patrol/:centreId", "inspector", "patrolPage", ["inspector"]],
  ["/inspector/notices", "inspector", "noticesPage", ["inspector", "admin"]],
  ["/inspector/notice/:id", "inspector", "noticePage", ["inspector", "admin"]],
  ["/inspector/concerns", "inspector", "concernsPage", ["inspector", "admin"]],
  ["/inspector/concern/:id", "inspector", "concernPage", ["inspector", "admin"]],
  ["/technician", "technician", "technicianPage", ["technician"]],
  ["/technician/centre/:id", "technician", "checklistPage", ["technician"]],
];

const modules = {
  login: () => import("./pages/login.js"),
  account: () => import("./pages/account.js"),
  parent: () => import("./pages/parent.js"),
  operator: () => import("./pages/operator.js"),
  inspector: () => import("./pages/inspector.js"),
  dashboard: () => import("./pages/dashboard.js"),
  technician: () => import("./pages/technician.js"),
};

function match(path) {
  for (const [pattern, module, name, roles] of ROUTES) {
    const keys = [];
    const regex = new RegExp(
      "^" + pattern.replace(/:(\w+)/g, (_, key) => (keys.push(key), "([^/]+)")) + "/?$",
    );
    const found = path.match(regex);
    if (found) {
      const params = Object.fromEntries(keys.map((key, i) => [key, decodeURIComponent(found[i + 1])]));
      return { module, name, roles, params };
    }
  }
  return null;
}

function parseHash() {
  const hash = location.hash.replace(/^#/, "") || "";
  const [path, search = ""] = hash.split("?");
  return { path: path || "", query: Object.fromEntries(new URLSearchParams(search)) };
}

export function navigate(path, { replace = false } = {}) {
  const target = `#${path}`;
  if (replace) {
    history.replaceState(null, "", target);
    route();
  } else if (location.hash === target) {
    route();
  } else {
    location.hash = target;
  }
}

function renderTabs(role, path) {
  const tabs = TABS[role];
  if (!tabs) {
    tabbar.hidden = true;
    document.body.classList.remove("bk-has-tabbar");
    return;
  }
  // The tab with the longest path (or other path) that the current path starts with.
  let current = null;
  let longest = -1;
  for (const [tabPath, , , others = []] of tabs) {
    for (const prefix of [tabPath, ...others]) {
      if ((path === prefix || path.startsWith(`${prefix}/`)) && prefix.length > longest) {
        current = tabPath;
        longest = prefix.length;
      }
    }
  }
  render(
    tabbar,
    html`<div class="weui-tabbar" role="tablist">
      ${tabs.map(
        ([tabPath, label, icon]) => html`<a href="#${tabPath}" role="tab"
          class="weui-tabbar__item${tabPath === current ? " weui-bar__item_on" : ""}"
          aria-selected="${tabPath === current ? "true" : "false"}">
          <svg class="bk-tab-icon" viewBox="0 0 24 24" aria-hidden="true"><path d="${ICONS[icon]}"/></svg>
          <p class="weui-tabbar__label">${label}</p>
        </a>`,
      )}
    </div>`,
  );
  tabbar.hidden = false;
  document.body.classList.add("bk-has-tabbar");
}

let cleanups = [];
let generation = 0;

function leavePage() {
  for (const fn of cleanups.splice(0)) {
    try {
      fn();
    } catch (error) {
      console.error("cleanup", error);
    }
  }
}

async function route() {
  const { path, query } = parseHash();
  const user = currentUser();
  // The invite QR code opens /bind?code=… outside the fragment.
  if (!path && location.pathname === "/bind") {
    const code = new URLSearchParams(location.search).get("code") || "";
    history.replaceState(null, "", `/#/bind${code ? `?code=${encodeURIComponent(code)}` : ""}`);
    return route();
  }
  if (!path || path === "/") {
    return navigate(user ? HOME[user.role] || "/me" : "/login", { replace: true });
  }
  const found = match(path);
  if (!found) {
    return navigate(user ? HOME[user.role] || "/me" : "/login", { replace: true });
  }
  if (found.roles !== null && !user) {
    const next = encodeURIComponent(`${path}${location.hash.includes("?") ? `?${location.hash.split("?")[1]}` : ""}`);
    return navigate(`/login?next=${next}`, { replace: true });
  }
  if (found.roles && found.roles.length && !found.roles.includes(user.role)) {
    return navigate(HOME[user.role] || "/me", { replace: true });
  }
  if (found.roles === null && user) {
    return navigate(HOME[user.role] || "/me", { replace: true });
  }

  leavePage();
  const mine = ++generation;
  renderTabs(user?.role, path);
  window.scrollTo(0, 0);
  const ctx = {
    view,
    params: found.params,
    query,
    path,
    user,
    navigate,
    // Is this page still the one shown? (an answer may arrive after the user moved on)
    get current() {
      return mine === generation;
    },
    cleanup(fn) {
      if (mine === generation) cleanups.push(fn);
      else fn();
    },
    // An event listener that lasts as long as the page (the view element outlives pages).
    listen(target, type, handler) {
      target.addEventListener(type, handler);
      this.cleanup(() => target.removeEventListener(type, handler));
    },
  };
  view.dataset.page = `${found.module}.${found.name}`;
  try {
    const module = await modules[found.module]();
    if (mine !== generation) return;
    await module[found.name](ctx);
  } catch (error) {
    console.error(error);
    if (mine === generation) render(view, errorState(error, { retry: false }));
  }
}

window.addEventListener("hashchange", route);
onSession((session) => {
  // Signed out (here, in another tab, or the refresh token was refused): back to the login.
  if (!session && parseHash().path !== "/login") navigate("/login", { replace: true });
});

// A small realtime indicator on pages that update live.
onConnection((connected) => {
  document.body.classList.toggle("bk-realtime-on", connected);
});

// Back from WeChat's web authorisation (?code=…&state=…): sign in first, then route.
finishWechatLogin()
  .then((next) => {
    if (next) history.replaceState(null, "", `#${next}`);
  })
  .finally(() => {
    if (getSession()) connect();
    route();
  });
