// Small helpers every page uses: safe HTML templates, the loading / empty / error states,
// WeUI toasts, top tips and dialogs, and how times and deadlines read in Chinese.

class Safe {
  constructor(text) {
    this.text = text;
  }
  toString() {
    return this.text;
  }
}

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escape(value) {
  return String(value).replace(/[&<>"']/g, (ch) => ESCAPES[ch]);
}

function piece(value) {
  if (value === null || value === undefined || value === false) return "";
  if (value instanceof Safe) return value.text;
  if (Array.isArray(value)) return value.map(piece).join("");
  return escape(value);
}

// html`<p>${text}</p>`: every interpolated value is escaped unless it is itself html`…`
// (or raw(…)); arrays are joined. API data can therefore never become markup.
export function html(strings, ...values) {
  let out = strings[0];
  values.forEach((value, i) => {
    out += piece(value) + strings[i + 1];
  });
  return new Safe(out);
}

export const raw = (text) => new Safe(text);

export function render(element, content) {
  element.innerHTML = piece(content);
  return element;
}

// A coloured status tag; tone is one of ok, warn, danger, info, plain.
export const tag = (text, tone = "plain") =>
  html`<span class="bk-tag bk-tag_${tone}">${text}</span>`;

// WeChat shows the document title in its navigation bar.
export function setTitle(title) {
  document.title = title ? `${title} · 明厨亮灶` : "明厨亮灶";
}

export const $ = (root, selector) => root.querySelector(selector);
export const $$ = (root, selector) => Array.from(root.querySelectorAll(selector));

// --- states -----------------------------------------------------------------------------------

export function loadingState(text = "加载中") {
  return html`<div class="bk-state" data-state="loading">
    <i class="weui-loading" aria-hidden="true"></i>
    <p class="bk-state__text">${text}</p>
  </div>`;
}

export function emptyState(text, hint = "") {
  return html`<div class="bk-state" data-state="empty">
    <i class="weui-icon-info-circle weui-icon_msg-primary bk-state__icon" aria-hidden="true"></i>
    <p class="bk-state__text">${text}</p>
    ${hint ? html`<p class="bk-state__hint">${hint}</p>` : ""}
  </div>`;
}

export function errorState(error, { retry = true } = {}) {
  const message = error?.message || "加载失败";
  return html`<div class="bk-state bk-state_error" data-state="error" role="alert">
    <i class="weui-icon-warn weui-icon_msg bk-state__icon" aria-hidden="true"></i>
    <p class="bk-state__text">${message}</p>
    ${retry
      ? html`<a role="button" href="javascript:" class="weui-btn weui-btn_default weui-btn_mini" data-action="retry">重试</a>`
      : ""}
  </div>`;
}

// Renders `load()`'s result into `element` with a loading state first and an error state with
// a retry button when it fails. `draw(data)` returns the content.
export async function loadInto(element, load, draw, { loadingText } = {}) {
  render(element, loadingState(loadingText));
  try {
    const data = await load();
    render(element, draw(data));
    return data;
  } catch (error) {
    if (error?.name === "AbortError") return undefined;
    render(element, errorState(error));
    $(element, "[data-action=retry]")?.addEventListener("click", () =>
      loadInto(element, load, draw, { loadingText }),
    );
    return undefined;
  }
}

// --- feedback ---------------------------------------------------------------------------------

let toastTimer;
export function toast(text, { icon = "success", ms = 1600 } = {}) {
  document.querySelector(".bk-toast")?.remove();
  // A success replaces the warning of an earlier attempt.
  const tips = document.querySelector(".weui-toptips");
  if (tips && icon !== "text") tips.style.display = "none";
  const el = document.createElement("div");
  el.className = "bk-toast";
  el.setAttribute("role", "status");
  render(
    el,
    html`<div class="weui-mask_transparent"></div>
      <div class="weui-toast${icon === "text" ? " weui-toast_text" : ""}">
        ${icon === "loading"
          ? html`<i class="weui-loading weui-icon_toast"></i>`
          : icon === "text"
            ? ""
            : html`<i class="weui-icon-success-no-circle weui-icon_toast"></i>`}
        <p class="weui-toast__content">${text}</p>
      </div>`,
  );
  document.body.append(el);
  clearTimeout(toastTimer);
  if (ms) toastTimer = setTimeout(() => el.remove(), ms);
  return () => el.remove();
}

let tipsTimer;
export function topTips(text, ms = 3000) {
  let el = document.querySelector(".weui-toptips");
  if (!el) {
    el = document.createElement("div");
    el.className = "weui-toptips weui-toptips_warn";
    el.setAttribute("role", "alert");
    document.body.append(el);
  }
  el.textContent = text;
  el.style.display = "block";
  clearTimeout(tipsTimer);
  tipsTimer = setTimeout(() => {
    el.style.display = "none";
  }, ms);
}

export function showError(error) {
  topTips(error?.message || "操作失败，请重试");
}

// A WeUI dialog; resolves true for the primary button, false otherwise.
export function confirmDialog(title, body, { ok = "确定", cancel = "取消" } = {}) {
  return new Promise((resolve) => {
    const el = document.createElement("div");
    el.className = "bk-dialog";
    render(
      el,
      html`<div class="weui-mask"></div>
        <div class="weui-dialog" role="dialog" aria-modal="true">
          <div class="weui-dialog__hd"><strong class="weui-dialog__title">${title}</strong></div>
          <div class="weui-dialog__bd">${body}</div>
          <div class="weui-dialog__ft">
            ${cancel
              ? html`<a role="button" href="javascript:" class="weui-dialog__btn weui-dialog__btn_default" data-answer="no">${cancel}</a>`
              : ""}
            <a role="button" href="javascript:" class="weui-dialog__btn weui-dialog__btn_primary" data-answer="yes">${ok}</a>
          </div>
        </div>`,
    );
    el.addEventListener("click", (event) => {
      const answer = event.target.closest("[data-answer]")?.dataset.answer;
      if (!answer) return;
      el.remove();
      resolve(answer === "yes");
    });
    document.body.append(el);
  });
}

// Disables a button while `work()` runs and shows WeUI's loading mark in it.
export async function busy(button, work) {
  if (button.classList.contains("weui-btn_loading")) return undefined;
  button.classList.add("weui-btn_loading", "weui-btn_disabled");
  button.setAttribute("aria-disabled", "true");
  const icon = document.createElement("i");
  icon.className = "weui-loading";
  button.prepend(icon);
  try {
    return await work();
  } finally {
    icon.remove();
    button.classList.remove("weui-btn_loading", "weui-btn_disabled");
    button.removeAttribute("aria-disabled");
  }
}

// --- time -------------------------------------------------------------------------------------

// Centres keep Beijing time, whatever the phone's zone.
export const TZ = "Asia/Shanghai";

const dateTimeFormat = new Intl.DateTimeFormat("zh-CN", {
  timeZone: TZ,
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  hour12: false,
});
const timeFormat = new Intl.DateTimeFormat("zh-CN", {
  timeZone: TZ,
  hour: "2-digit",
  minute: "2-digit",
  hour12: false,
});
const dayFormat = new Intl.DateTimeFormat("en-CA", {
  timeZone: TZ,
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
});

export function formatDateTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "—" : dateTimeFormat.format(date);
}

// "11:42" (Beijing), for what happened today.
export function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "—" : timeFormat.format(date);
}

export function formatDate(isoDay) {
  if (!isoDay) return "—";
  const [y, m, d] = isoDay.split("-");
  return `${y}年${Number(m)}月${Number(d)}日`;
}

export function todayInChina(now = new Date()) {
  return dayFormat.format(now); // YYYY-MM-DD
}

function daysBetween(fromDay, toDay) {
  return Math.round((Date.parse(`${toDay}T00:00:00Z`) - Date.parse(`${fromDay}T00:00:00Z`)) / 86400000);
}

// "剩余 3 天" / "今天截止" / "已逾期 2 天", with a tone for the badge.
export function deadlineCountdown(deadline, closed = false) {
  if (!deadline) return { text: "未设期限", tone: "plain" };
  if (closed) return { text: `期限 ${formatDate(deadline)}`, tone: "plain" };
  const left = daysBetween(todayInChina(), deadline);
  if (left < 0) return { text: `已逾期 ${-left} 天`, tone: "danger" };
  if (left === 0) return { text: "今天截止", tone: "warn" };
  if (left <= 2) return { text: `剩余 ${left} 天`, tone: "warn" };
  return { text: `剩余 ${left} 天`, tone: "ok" };
}

export function relativeTime(iso, now = Date.now()) {
  if (!iso) return "";
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  if (seconds < 60) return "刚刚";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} 分钟前`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} 小时前`;
  return formatDateTime(iso);
}
