// Parents (家长): the centres they follow, a centre's rooms as tiles and its inspection record,
// the live kitchen during meal windows, and reporting a concern and following what became of it.

import { api, getSession } from "../api.js";
import { authImages, galleryClick } from "../images.js";
import { photoPicker } from "../photos.js";
import { LivePlayer } from "../player.js";
import { subscribe } from "../realtime.js";
import {
  $,
  $$,
  busy,
  emptyState,
  formatDate,
  formatDateTime,
  formatTime,
  html,
  loadInto,
  raw,
  render,
  setTitle,
  showError,
  tag,
  toast,
} from "../ui.js";
import { CAMERA_TONE, CENTRE_STATUS, CONCERN_STATUS, CONCERN_TONE, PATROL_MODE } from "../labels.js";

// --- my centres -------------------------------------------------------------------------------

export async function homePage(ctx) {
  setTitle("我的托管机构");
  render(
    ctx.view,
    html`<div class="bk-page">
      <h2 class="bk-page__title">我的托管机构</h2>
      <div data-list></div>
      <div class="bk-actions">
        <a href="#/bind" class="weui-btn weui-btn_default">输入邀请码绑定</a>
      </div>
    </div>`,
  );
  await loadInto(
    $(ctx.view, "[data-list]"),
    () => api("/api/v1/parent/centres"),
    (links) =>
      links.length
        ? html`<div class="weui-cells">
            ${links.map(
              (link) => html`<a class="weui-cell weui-cell_access" href="#/parent/centre/${link.centre_id}" data-centre="${link.centre_id}">
                <div class="weui-cell__bd">
                  <p class="bk-cell-title">${link.centre_name}</p>
                  <p class="bk-cell-sub">绑定于 ${formatDate(link.linked_at?.slice(0, 10))}</p>
                </div>
                <div class="weui-cell__ft">${tag(CENTRE_STATUS[link.centre_status] || link.centre_status, link.centre_status === "live" ? "ok" : "plain")}</div>
              </a>`,
            )}
          </div>`
        : emptyState("还没有绑定托管机构", "请向孩子所在的托管机构索取邀请码，或扫描机构的二维码"),
  );
}

// --- binding with an invite code --------------------------------------------------------------

export async function bindPage(ctx) {
  setTitle("绑定托管机构");
  render(
    ctx.view,
    html`<div class="bk-page">
      <h2 class="bk-page__title">绑定托管机构</h2>
      <p class="bk-page__desc">输入托管机构提供的邀请码（或扫描机构二维码），绑定后即可在用餐时段观看后厨直播。</p>
      <form class="weui-cells weui-cells_form" novalidate>
        <label class="weui-cell weui-cell_active">
          <div class="weui-cell__hd"><span class="weui-label">邀请码</span></div>
          <div class="weui-cell__bd">
            <input class="weui-input bk-code-input" name="code" autocomplete="off" autocapitalize="characters"
              maxlength="32" placeholder="例如 7K3M9QXA" value="${ctx.query.code || ""}">
          </div>
        </label>
      </form>
      <div class="bk-actions">
        <a role="button" href="javascript:" class="weui-btn weui-btn_primary" data-action="bind">绑定</a>
      </div>
    </div>`,
  );
  const button = $(ctx.view, "[data-action=bind]");
  const submit = () =>
    busy(button, async () => {
      const code = $(ctx.view, "[name=code]").value.trim();
      if (!code) return showError({ message: "请输入邀请码" });
      try {
        const link = await api("/api/v1/parent/bind", { method: "POST", json: { code } });
        toast("绑定成功");
        ctx.navigate(`/parent/centre/${link.centre_id}`, { replace: true });
      } catch (error) {
        showError(error);
      }
    });
  button.addEventListener("click", submit);
  $(ctx.view, "form").addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
}

// --- a centre: rooms as tiles, the record ---------------------------------------------------

function windowBanner(page) {
  if (page.centre.status === "suspended") {
    return html`<div class="bk-banner bk-banner_danger">直播已暂停：${page.centre.suspension_reason || "监管部门已暂停该机构的直播"}</div>`;
  }
  if (page.centre.status !== "live") {
    return html`<div class="bk-banner">该机构的明厨亮灶尚未开通</div>`;
  }
  if (page.in_meal_window && page.current_window) {
    return html`<div class="bk-banner bk-banner_ok">
      <span class="bk-live-dot" aria-hidden="true"></span>直播开放中 · ${page.current_window.label} ${page.current_window.text}
    </div>`;
  }
  const next = page.next_window ? `，下次 ${page.next_window.label} ${page.next_window.text}` : "";
  return html`<div class="bk-banner">当前不在直播开放时段${next}</div>`;
}

// "开放时段 11:30–13:00" — today's windows (or every day's), shown on a closed tile.
function windowsText(page) {
  const today = (new Date().getDay() + 6) % 7; // Monday = 0, as the API counts
  const texts = page.meal_windows
    .filter((w) => w.weekday === null || w.weekday === undefined || w.weekday === today)
    .map((w) => w.text);
  return texts.length ? `开放时段 ${texts.join("、")}` : "今日无开放时段";
}

function roomTiles(page, centreId) {
  const tiles = [];
  for (const room of page.rooms) {
    for (const camera of room.cameras) {
      const title = room.cameras.length > 1 ? `${room.name} · ${camera.name}` : room.name;
      const closed = camera.refusal_reason === "outside_meal_window";
      tiles.push(html`<a class="bk-tile${camera.can_watch ? " bk-tile_open" : ""}" data-camera="${camera.id}"
          href="#/parent/watch/${camera.id}?centre=${centreId}&room=${encodeURIComponent(title)}">
        <span class="bk-tile__title">${title}</span>
        <span class="bk-tile__status">${tag(camera.status_label, CAMERA_TONE[camera.status] || "plain")}</span>
        <span class="bk-tile__hint">${camera.can_watch
          ? html`<span class="bk-live-dot" aria-hidden="true"></span>观看直播`
          : closed
            ? windowsText(page)
            : camera.refusal_message || "暂不可观看"}</span>
      </a>`);
    }
    if (!room.cameras.length) {
      tiles.push(html`<div class="bk-tile bk-tile_disabled">
        <span class="bk-tile__title">${room.name}</span>
        <span class="bk-tile__hint">未安装摄像头</span>
      </div>`);
    }
  }
  return tiles.length
    ? html`<div class="bk-tiles">${tiles}</div>`
    : emptyState("暂无向家长开放的区域");
}

export function recordSummary(record) {
  if (!record) return "";
  const patrol = record.last_patrol;
  return html`<div class="weui-cells__title">检查记录</div>
    <div class="weui-cells bk-record">
      <div class="weui-cell">
        <div class="weui-cell__bd">最近一次巡查</div>
        <div class="weui-cell__ft">${patrol
          ? `${formatDateTime(patrol.ended_at)} · ${PATROL_MODE[patrol.mode] || patrol.mode} · ${patrol.result}`
          : "暂无巡查记录"}</div>
      </div>
      <div class="weui-cell">
        <div class="weui-cell__bd">整改中的问题</div>
        <div class="weui-cell__ft">${record.notices.open} 项${record.notices.overdue ? html`，${tag(`逾期 ${record.notices.overdue} 项`, "danger")}` : ""}</div>
      </div>
      <div class="weui-cell">
        <div class="weui-cell__bd">已整改复查通过</div>
        <div class="weui-cell__ft">${record.notices.verified} 项</div>
      </div>
    </div>`;
}

// Today's snapshots as pictures. The image API checks the parent's scope (today, rooms shown
// to parents), so the pictures come with the bearer token and are shown as blob URLs.
function snapshotList(page) {
  const shots = page.snapshots_today;
  return html`<div class="weui-cells__title">今日抓拍</div>
    ${shots.length
      ? html`<div class="bk-snapshots">
          ${shots.slice(0, 10).map(
            (s) => html`<figure class="bk-snapshot" data-snapshot="${s.id}">
              <img class="bk-snapshot__img" data-snapshot-img="${s.id}" data-api-src="/api/v1/snapshots/${s.id}/image" alt="${s.area_name} ${formatTime(s.taken_at)} 抓拍">
              <figcaption class="bk-snapshot__caption">${s.area_name} · ${formatTime(s.taken_at)}</figcaption>
            </figure>`,
          )}
        </div>`
      : html`<div class="bk-snapshots-empty">${emptyState("今天还没有抓拍", "监管人员巡查或定时抓拍后，画面会显示在这里")}</div>`}`;
}

export async function centrePage(ctx) {
  const centreId = Number(ctx.params.id);
  setTitle("后厨直播");
  const draw = (page) => {
    setTitle(page.centre.name);
    return html`<div class="bk-page">
      <div class="bk-centre-head">
        <h2 class="bk-page__title">${page.centre.name}</h2>
        <p class="bk-page__desc">${page.centre.address || ""}</p>
      </div>
      ${windowBanner(page)}
      <div class="weui-cells__title">后厨区域</div>
      ${roomTiles(page, centreId)}
      ${recordSummary(page.record)}
      ${snapshotList(page)}
      <div class="bk-actions">
        <a href="#/parent/concerns/new?centre=${centreId}" class="weui-btn weui-btn_default" data-action="concern">反映问题</a>
      </div>
    </div>`;
  };
  // Today's snapshots: fetched with the token, kept across redraws, a tap opens one full size.
  const loadImages = authImages(ctx);
  const showImages = () => loadImages(ctx.view);
  ctx.listen(ctx.view, "click", galleryClick);
  // Every draw (the first load, a retry after an error, a live update) shows its pictures.
  const drawWithImages = (page) => {
    setTimeout(showImages);
    return draw(page);
  };
  await loadInto(ctx.view, () => api(`/api/v1/parent/centres/${centreId}`), drawWithImages);
  // Camera status and snapshots of this centre arrive live; the window opening is a minute tick.
  let pending = null;
  const reload = () => {
    clearTimeout(pending);
    pending = setTimeout(
      () =>
        ctx.current &&
        api(`/api/v1/parent/centres/${centreId}`)
          .then((page) => {
            if (!ctx.current) return;
            render(ctx.view, drawWithImages(page));
          })
          .catch(() => {}),
      300,
    );
  };
  ctx.cleanup(subscribe("camera.status", (_name, data) => data.centre_id === centreId && reload()));
  ctx.cleanup(subscribe("snapshot.created", (_name, data) => data.centre_id === centreId && reload()));
  const tick = setInterval(reload, 60_000);
  ctx.cleanup(() => {
    clearInterval(tick);
    clearTimeout(pending);
  });
}

// --- the live player page ---------------------------------------------------------------------

export async function watchPage(ctx) {
  const cameraId = Number(ctx.params.cameraId);
  const room = ctx.query.room ? decodeURIComponent(ctx.query.room) : "后厨直播";
  const centreId = ctx.query.centre;
  setTitle(room);
  render(
    ctx.view,
    html`<div class="bk-page bk-page_watch">
      <div data-player></div>
      <div class="bk-watch-info">
        <h2 class="bk-page__title">${room}</h2>
        <p class="bk-page__desc" data-status>正在连接直播</p>
      </div>
      <div class="weui-cells__tips bk-watch-tips">直播仅供家长监督后厨使用，请勿录屏传播。画面约有数秒延迟。</div>
      <div class="bk-actions">
        ${centreId
          ? html`<a href="#/parent/centre/${centreId}" class="weui-btn weui-btn_default">返回机构</a>
              <a href="#/parent/concerns/new?centre=${centreId}" class="weui-btn weui-btn_default">反映问题</a>`
          : ""}
      </div>
    </div>`,
  );
  const statusEl = $(ctx.view, "[data-status]");
  const player = new LivePlayer($(ctx.view, "[data-player]"), cameraId, {
    onState: (state, { message }) => {
      statusEl.textContent =
        state === "playing" ? "直播中" : message || "";
    },
  });
  ctx.cleanup(() => player.destroy());
  ctx.cleanup(
    subscribe("camera.status", (_name, data) => {
      if (data.camera_id === cameraId) player.cameraStatusChanged(data.status, data.last_frame_at);
    }),
  );
  player.start();
}

// --- concerns ---------------------------------------------------------------------------------

function concernClock(concern) {
  if (concern.status === "resolved" || concern.status === "dismissed") {
    return `${concern.status === "resolved" ? "办结" : "答复"}于 ${formatDateTime(concern.closed_at || concern.decided_at)}`;
  }
  const due = concern.status === "submitted" ? concern.decide_by : concern.resolve_by;
  const label = concern.status === "submitted" ? "受理期限" : "办结期限";
  return `${label} ${formatDate(due)}${concern.deadline_provisional ? "（暂定）" : ""}`;
}

export async function concernsPage(ctx) {
  setTitle("我的反映");
  render(
    ctx.view,
    html`<div class="bk-page">
      <h2 class="bk-page__title">我的反映</h2>
      <div data-list></div>
      <div class="bk-actions">
        <a href="#/parent/concerns/new" class="weui-btn weui-btn_primary" data-action="new">反映问题</a>
      </div>
    </div>`,
  );
  const list = $(ctx.view, "[data-list]");
  const load = () =>
    loadInto(
      list,
      () => api("/api/v1/parent/concerns"),
      (concerns) =>
        concerns.length
          ? html`<div class="weui-cells">
              ${concerns.map(
                (c) => html`<a class="weui-cell weui-cell_access" href="#/parent/concern/${c.id}" data-concern="${c.id}">
                  <div class="weui-cell__bd">
                    <p class="bk-cell-title bk-ellipsis">${c.text}</p>
                    <p class="bk-cell-sub">${c.centre_name}${c.area_name ? ` · ${c.area_name}` : ""} · ${concernClock(c)}</p>
                  </div>
                  <div class="weui-cell__ft">
                    ${tag(c.status_label || CONCERN_STATUS[c.status], c.overdue ? "danger" : CONCERN_TONE[c.status])}
                  </div>
                </a>`,
              )}
            </div>`
          : emptyState("还没有反映过问题", "发现后厨卫生等问题，可以在这里向监管部门反映"),
    );
  await load();
  ctx.cleanup(subscribe("concern.", () => ctx.current && load()));
}

export async function concernPage(ctx) {
  const id = Number(ctx.params.id);
  setTitle("反映详情");
  const load = () =>
    loadInto(
      ctx.view,
      () => api(`/api/v1/parent/concerns/${id}`),
      (c) => html`<div class="bk-page">
        <div class="bk-card">
          <div class="bk-card__head">
            ${tag(c.status_label || CONCERN_STATUS[c.status], c.overdue ? "danger" : CONCERN_TONE[c.status])}
            <span class="bk-card__meta">${formatDateTime(c.submitted_at)}</span>
          </div>
          <p class="bk-card__text">${c.text}</p>
          <p class="bk-card__meta">${c.centre_name}${c.area_name ? ` · ${c.area_name}` : ""}${c.anonymous ? " · 对经营者匿名" : ""}${c.photo_count ? ` · ${c.photo_count} 张照片` : ""}</p>
          <p class="bk-card__meta">${concernClock(c)}${c.overdue ? html` ${tag("已超期", "danger")}` : ""}</p>
        </div>
        ${c.photos?.length
          ? html`<div class="bk-photo-row">${c.photos.map(
              (p) => html`<img class="bk-photo" alt="照片" data-src="/api/v1/parent/concerns/${c.id}/photos/${p.id}">`,
            )}</div>`
          : ""}
        ${c.answer
          ? html`<div class="weui-cells__title">${c.status === "dismissed" ? "不予受理理由" : "处理结果"}</div>
              <div class="bk-card"><p class="bk-card__text">${c.answer}</p></div>`
          : ""}
        ${c.notices?.length
          ? html`<div class="weui-cells__title">相关整改通知</div>
              <div class="weui-cells">${c.notices.map(
                (n) => html`<div class="weui-cell"><div class="weui-cell__bd">${n.number || "整改通知"}</div><div class="weui-cell__ft">${n.status_label}</div></div>`,
              )}</div>`
          : ""}
        <div class="weui-cells__title">办理进度</div>
        <div class="bk-timeline">
          ${(c.history || []).map(
            (h) => html`<div class="bk-timeline__item">
              <p class="bk-timeline__title">${h.status_label || CONCERN_STATUS[h.status]}</p>
              <p class="bk-timeline__meta">${formatDateTime(h.at)}</p>
              ${h.reason ? html`<p class="bk-timeline__text">${h.reason}</p>` : ""}
            </div>`,
          )}
        </div>
      </div>`,
    );
  await load();
  loadPhotos(ctx);
  ctx.cleanup(
    subscribe("concern.", (_name, data) => {
      if (ctx.current && data.concern_id === id) load().then(() => loadPhotos(ctx));
    }),
  );
}

// Photos need the bearer token, so they are fetched and shown as blob URLs.
async function loadPhotos(ctx) {
  for (const img of $$(ctx.view, "img[data-src]")) {
    try {
      const response = await fetch(img.dataset.src, {
        headers: { Authorization: `Bearer ${getSession()?.access_token}` },
      });
      if (!response.ok) continue;
      const url = URL.createObjectURL(await response.blob());
      img.src = url;
      ctx.cleanup(() => URL.revokeObjectURL(url));
    } catch {
      /* a photo that cannot load stays a grey box */
    }
  }
}

function newClientKey() {
  // crypto.randomUUID needs a secure context; getRandomValues does not.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function newConcernPage(ctx) {
  setTitle("反映问题");
  const clientKey = newClientKey(); // one per form: a retried submit creates nothing twice
  const draw = (links) => {
    if (!links.length) return emptyState("请先绑定托管机构", "绑定后才能反映该机构的问题");
    const chosen = Number(ctx.query.centre) || links[0].centre_id;
    return html`<div class="bk-page">
      <h2 class="bk-page__title">反映问题</h2>
      <p class="bk-page__desc">您反映的问题将由监管部门受理（7 个工作日内答复是否受理，15 个工作日内办结），处理结果会通知您。</p>
      <form class="weui-form bk-form" novalidate>
        <div class="weui-cells weui-cells_form">
          <div class="weui-cell weui-cell_select weui-cell_select-after">
            <div class="weui-cell__hd"><label class="weui-label" for="concern-centre">托管机构</label></div>
            <div class="weui-cell__bd">
              <select class="weui-select" id="concern-centre" name="centre_id">
                ${links.map((l) => html`<option value="${l.centre_id}" ${l.centre_id === chosen ? raw("selected") : ""}>${l.centre_name}</option>`)}
              </select>
            </div>
          </div>
          <div class="weui-cell weui-cell_select weui-cell_select-after">
            <div class="weui-cell__hd"><label class="weui-label" for="concern-area">区域</label></div>
            <div class="weui-cell__bd">
              <select class="weui-select" id="concern-area" name="area_id"><option value="">不指定</option></select>
            </div>
          </div>
        </div>
        <div class="weui-cells__title">问题描述</div>
        <div class="weui-cells weui-cells_form">
          <div class="weui-cell">
            <div class="weui-cell__bd">
              <textarea class="weui-textarea" name="text" rows="4" maxlength="2000"
                placeholder="请描述您看到的问题，例如时间、区域、具体情况"></textarea>
              <div class="weui-textarea-counter"><span data-count>0</span>/2000</div>
            </div>
          </div>
        </div>
        <div class="weui-cells__title">照片（可选，最多 9 张）</div>
        <div class="weui-cells weui-cells_form"><div class="weui-cell"><div class="weui-cell__bd" data-photos></div></div></div>
        <div class="weui-cells weui-cells_form">
          <div class="weui-cell weui-cell_switch">
            <div class="weui-cell__bd"><label for="concern-anonymous">对托管机构匿名</label></div>
            <div class="weui-cell__ft">
              <input class="weui-switch" type="checkbox" id="concern-anonymous" name="anonymous">
            </div>
          </div>
        </div>
        <div class="weui-cells__tips">匿名时托管机构只看到“一位家长”，监管部门仍可联系您核实。</div>
        <div class="bk-actions">
          <a role="button" href="javascript:" class="weui-btn weui-btn_primary" data-action="submit">提交</a>
        </div>
      </form>
    </div>`;
  };
  const links = await loadInto(ctx.view, () => api("/api/v1/parent/centres"), draw);
  if (!links?.length) return;
  const form = $(ctx.view, "form");
  const picker = photoPicker($(form, "[data-photos]"), { max: 9 });
  ctx.cleanup(() => picker.destroy());
  const text = form.text;
  text.addEventListener("input", () => {
    $(form, "[data-count]").textContent = String(text.value.length);
  });
  const loadAreas = async () => {
    const select = form.area_id;
    render(select, html`<option value="">不指定</option>`);
    try {
      const page = await api(`/api/v1/parent/centres/${form.centre_id.value}`);
      render(
        select,
        html`<option value="">不指定</option>${page.rooms.map((r) => html`<option value="${r.id}">${r.name}</option>`)}`,
      );
    } catch {
      /* the room is optional */
    }
  };
  form.centre_id.addEventListener("change", loadAreas);
  loadAreas();
  const button = $(form, "[data-action=submit]");
  button.addEventListener("click", () =>
    busy(button, async () => {
      if (!text.value.trim()) return showError({ message: "请填写问题描述" });
      const body = new FormData();
      body.set("centre_id", form.centre_id.value);
      body.set("text", text.value.trim());
      body.set("client_key", clientKey);
      if (form.area_id.value) body.set("area_id", form.area_id.value);
      body.set("anonymous", form.anonymous.checked ? "true" : "false");
      for (const file of await picker.files()) body.append("photos", file, file.name);
      try {
        const concern = await api("/api/v1/parent/concerns", { method: "POST", form: body });
        toast("已提交");
        ctx.navigate(`/parent/concern/${concern.id}`, { replace: true });
      } catch (error) {
        showError(error);
      }
    }),
  );
}

