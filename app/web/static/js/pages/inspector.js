// Inspectors (监管人员): the centres of their jurisdiction, the patrol screen (the rooms live side
// by side, each marked ok or given a finding, a notice issued from the findings), the notices
// they issued and the review of an answer (verify / return) with the follow-up log, and the
// triage of parents' concerns (accept / dismiss, then resolve) against their legal clocks.

import { api, currentUser } from "../api.js";
import { authImages, galleryClick } from "../images.js";
import { LivePlayer } from "../player.js";
import { onConnection, subscribe } from "../realtime.js";
import {
  $,
  $$,
  busy,
  confirmDialog,
  deadlineCountdown,
  emptyState,
  errorState,
  formatDate,
  formatDateTime,
  html,
  loadInto,
  loadingState,
  relativeTime,
  render,
  setTitle,
  showError,
  tag,
  toast,
} from "../ui.js";
import {
  AREA,
  CAMERA_STATUS,
  CAMERA_TONE,
  CENTRE_STATUS,
  CONCERN_STATUS,
  CONCERN_TONE,
  FINDING_CATEGORY,
  FOLLOW_UP_KIND,
  OPEN_NOTICE,
  REVIEW_MODE,
  SEVERITY,
} from "../labels.js";
import {
  historyBlock,
  noticeCell,
  noticeHeader,
  noticeSignature,
  responsesBlock,
  snapshotThumbs,
} from "./operator.js";

const AREA_ORDER = ["prep", "storage", "cooking", "washing", "other"];
const DEFAULT_LEGAL_BASIS =
  "《中华人民共和国食品安全法》第三十三条、《餐饮服务食品安全操作规范》";

const options = (labels, selected) =>
  Object.entries(labels).map(
    ([value, label]) => html`<option value="${value}"${value === selected ? " selected" : ""}>${label}</option>`,
  );

// --- centres of the jurisdiction ------------------------------------------------------------

export async function centresPage(ctx) {
  setTitle("远程巡查");
  render(
    ctx.view,
    html`<div class="bk-page">
      <h2 class="bk-page__title">辖区托管机构</h2>
      <div class="weui-search-bar bk-search">
        <div class="weui-search-bar__form">
          <div class="weui-search-bar__box">
            <i class="weui-icon-search"></i>
            <input type="search" class="weui-search-bar__input" placeholder="搜索机构名称" data-search>
          </div>
        </div>
      </div>
      <div data-list></div>
    </div>`,
  );
  const list = $(ctx.view, "[data-list]");
  const centres = await loadInto(
    list,
    () => api("/api/v1/centres"),
    (rows) => drawCentres(rows),
  );
  if (!centres) return;
  $(ctx.view, "[data-search]").addEventListener("input", (event) => {
    const q = event.target.value.trim();
    render(list, drawCentres(centres.filter((c) => !q || c.name.includes(q))));
  });
}

function drawCentres(centres) {
  if (!centres.length) return emptyState("没有找到托管机构");
  return html`<div class="weui-cells">
    ${centres.map(
      (c) => html`<a class="weui-cell weui-cell_access" href="#/inspector/patrol/${c.id}" data-centre="${c.id}">
        <div class="weui-cell__bd">
          <p class="bk-cell-title">${c.name}</p>
          <p class="bk-cell-sub bk-ellipsis">${c.address || c.district}</p>
        </div>
        <div class="weui-cell__ft">${tag(CENTRE_STATUS[c.status] || c.status, c.status === "live" ? "ok" : c.status === "suspended" ? "danger" : "plain")}</div>
      </a>`,
    )}
  </div>`;
}

// --- the patrol screen ----------------------------------------------------------------------

export async function patrolPage(ctx) {
  const centreId = Number(ctx.params.centreId);
  const me = currentUser();
  setTitle("巡查");
  render(ctx.view, loadingState());
  let centre;
  let cameras;
  let patrol = null;
  try {
    [centre, cameras] = await Promise.all([
      api(`/api/v1/centres/${centreId}`),
      api(`/api/v1/centres/${centreId}/cameras`),
    ]);
    const patrols = await api(`/api/v1/inspector/centres/${centreId}/patrols`);
    patrol = patrols.find((p) => !p.ended_at && p.inspector_id === me.id) || null;
  } catch (error) {
    render(ctx.view, errorState(error, { retry: false }));
    return;
  }
  if (!ctx.current) return;
  setTitle(`巡查 · ${centre.name}`);
  const areas = [...centre.areas].sort(
    (a, b) => AREA_ORDER.indexOf(a.kind) - AREA_ORDER.indexOf(b.kind),
  );
  render(
    ctx.view,
    html`<div class="bk-page bk-page_patrol">
      <div class="bk-patrol-head">
        <div>
          <h2 class="bk-page__title">${centre.name}</h2>
          <p class="bk-page__desc" data-patrol-state></p>
        </div>
        <div data-patrol-actions></div>
      </div>
      <div class="bk-room-grid">
        ${areas.map((area) => {
          const camera = cameras.find((c) => c.area_id === area.id);
          return html`<section class="bk-room" data-area="${area.id}" data-kind="${area.kind}">
            <div class="bk-room__player" data-player="${camera ? camera.id : ""}">
              ${camera ? "" : html`<div class="bk-room__none">未安装摄像头</div>`}
            </div>
            <div class="bk-room__bar">
              <span class="bk-room__name">${area.name || AREA[area.kind]}</span>
              ${camera ? tag(CAMERA_STATUS[camera.status], CAMERA_TONE[camera.status]) : ""}
            </div>
            <div class="bk-room__check" data-check></div>
            <div class="bk-room__shots" data-shots></div>
            <div class="bk-room__actions">
              ${camera
                ? html`<a role="button" href="javascript:" class="weui-btn weui-btn_mini weui-btn_default bk-room__snap" data-action="snapshot">抓拍</a>`
                : ""}
              <a role="button" href="javascript:" class="weui-btn weui-btn_mini weui-btn_default" data-action="ok">正常</a>
              <a role="button" href="javascript:" class="weui-btn weui-btn_mini weui-btn_warn" data-action="finding">记录问题</a>
            </div>
          </section>`;
        })}
      </div>
      <div data-finding-form></div>
      <div data-findings></div>
      <div data-notice-form></div>
    </div>`,
  );

  const players = [];
  for (const el of $$(ctx.view, "[data-player]")) {
    if (!el.dataset.player) continue;
    const player = new LivePlayer(el, Number(el.dataset.player), { compact: true });
    players.push(player);
    player.start();
  }
  ctx.cleanup(() => players.forEach((p) => p.destroy()));
  ctx.cleanup(
    subscribe("camera.status", (_name, data) => {
      for (const player of players) {
        if (player.cameraId === data.camera_id) player.cameraStatusChanged(data.status, data.last_frame_at);
      }
    }),
  );

  const loadImages = authImages(ctx);
  const cameraOf = (areaId) => cameras.find((c) => c.area_id === areaId);
  // This patrol's snapshots of a room, newest first.
  const shotsOf = (areaId) =>
    (patrol?.snapshots || [])
      .filter((shot) => cameras.find((c) => c.id === shot.camera_id)?.area_id === areaId)
      .reverse();
  const shotImage = (shot, className = "bk-room__shot") =>
    html`<img class="${className}" alt="抓拍 ${formatDateTime(shot.taken_at)}" data-snapshot="${shot.id}" data-api-src="${shot.image_url}">`;

  const drawPatrol = () => {
    const state = $(ctx.view, "[data-patrol-state]");
    const actions = $(ctx.view, "[data-patrol-actions]");
    if (!patrol) {
      state.textContent = "尚未开始巡查：开始后可逐个区域记录";
      render(actions, html`<a role="button" href="javascript:" class="weui-btn weui-btn_mini weui-btn_primary" data-action="start">开始巡查</a>`);
    } else {
      state.textContent = `远程巡查进行中 · 开始于 ${formatDateTime(patrol.started_at)}`;
      render(actions, html`<a role="button" href="javascript:" class="weui-btn weui-btn_mini weui-btn_default" data-action="end">结束巡查</a>`);
    }
    for (const room of $$(ctx.view, "[data-area]")) {
      const areaId = Number(room.dataset.area);
      const check = patrol?.area_checks.find((c) => c.area_id === areaId);
      const findings = patrol?.findings.filter((f) => f.area_id === areaId) || [];
      render(
        $(room, "[data-check]"),
        check
          ? check.result === "ok"
            ? tag("✓ 正常", "ok")
            : tag(`发现问题 ${findings.length} 项`, "danger")
          : patrol
            ? html`<span class="bk-muted">未检查</span>`
            : "",
      );
      for (const button of $$(room, ".bk-room__actions .weui-btn")) {
        button.classList.toggle("weui-btn_disabled", !patrol);
      }
      render($(room, "[data-shots]"), shotsOf(areaId).map((shot) => shotImage(shot)));
    }
    drawFindings();
    loadImages(ctx.view);
  };

  const drawFindings = () => {
    const box = $(ctx.view, "[data-findings]");
    if (!patrol || !patrol.findings.length) {
      render(box, "");
      return;
    }
    const areaName = (id) => areas.find((a) => a.id === id)?.name || "全店";
    render(
      box,
      html`<div class="weui-cells__title">本次发现的问题（勾选后下发整改通知）</div>
        <div class="weui-cells weui-cells_checkbox">
          ${patrol.findings.map(
            (f) => html`<label class="weui-cell weui-cell_active weui-check__label" data-finding="${f.id}">
              <div class="weui-cell__hd">
                <input type="checkbox" class="weui-check" name="finding" value="${f.id}" checked>
                <i class="weui-icon-checked"></i>
              </div>
              <div class="weui-cell__bd">
                <p>${f.description}</p>
                <p class="bk-cell-sub">${areaName(f.area_id)} · ${FINDING_CATEGORY[f.category]} · ${SEVERITY[f.severity]}${f.snapshot_ids.length ? ` · 抓拍 ${f.snapshot_ids.length} 张` : ""}</p>
                ${snapshotThumbs(f.snapshot_ids)}
              </div>
            </label>`,
          )}
        </div>
        <div class="bk-actions">
          <a role="button" href="javascript:" class="weui-btn weui-btn_primary" data-action="notice">下发整改通知</a>
        </div>`,
    );
  };

  const refreshPatrol = async () => {
    if (patrol) patrol = await api(`/api/v1/inspector/patrols/${patrol.id}`);
    drawPatrol();
  };

  const showFindingForm = (areaId) => {
    const area = areas.find((a) => a.id === areaId);
    const shots = shotsOf(areaId);
    const box = $(ctx.view, "[data-finding-form]");
    render(
      box,
      html`<form class="bk-sheet" data-for-area="${areaId}" novalidate>
        <div class="weui-cells__title">记录问题 · ${area.name}</div>
        <div class="weui-cells weui-cells_form">
          <div class="weui-cell weui-cell_select weui-cell_select-after">
            <div class="weui-cell__hd"><label class="weui-label">类别</label></div>
            <div class="weui-cell__bd"><select class="weui-select" name="category">${options(FINDING_CATEGORY, "hygiene")}</select></div>
          </div>
          <div class="weui-cell weui-cell_select weui-cell_select-after">
            <div class="weui-cell__hd"><label class="weui-label">等级</label></div>
            <div class="weui-cell__bd"><select class="weui-select" name="severity">${options(SEVERITY, "II")}</select></div>
          </div>
          <div class="weui-cell">
            <div class="weui-cell__bd">
              <textarea class="weui-textarea" name="description" rows="3" maxlength="4000" placeholder="描述看到的问题"></textarea>
            </div>
          </div>
        </div>
        ${shots.length
          ? html`<div class="weui-cells__title">作为证据的抓拍（可多选）</div>
              <div class="bk-evidence" data-evidence>
                ${shots.map(
                  (shot, i) => html`<label class="bk-evidence__item">
                    <input type="checkbox" name="snapshot" value="${shot.id}"${i === 0 ? " checked" : ""}>
                    ${shotImage(shot, "bk-evidence__img")}
                    <span class="bk-evidence__time">${formatDateTime(shot.taken_at)}</span>
                  </label>`,
                )}
              </div>`
          : cameraOf(areaId)
            ? html`<div class="weui-cells__tips">提示：先点“抓拍”，抓拍的画面可作为该问题的证据。</div>`
            : ""}
        <div class="bk-actions bk-actions_row">
          <a role="button" href="javascript:" class="weui-btn weui-btn_default" data-action="cancel">取消</a>
          <a role="button" href="javascript:" class="weui-btn weui-btn_primary" data-action="save-finding">保存</a>
        </div>
      </form>`,
    );
    loadImages(box);
    box.scrollIntoView({ behavior: "smooth", block: "start" });
    $(box, "textarea").focus();
    $(box, "[data-action=cancel]").addEventListener("click", () => render(box, ""));
    const save = $(box, "[data-action=save-finding]");
    save.addEventListener("click", () =>
      busy(save, async () => {
        const form = $(box, "form");
        const description = form.description.value.trim();
        if (!description) return showError({ message: "请描述发现的问题" });
        try {
          await api(`/api/v1/inspector/patrols/${patrol.id}/findings`, {
            method: "POST",
            json: {
              category: form.category.value,
              severity: form.severity.value,
              description,
              area_id: areaId,
              snapshot_ids: $$(form, "input[name=snapshot]:checked").map((i) => Number(i.value)),
            },
          });
          render(box, "");
          toast("已记录");
          await refreshPatrol();
        } catch (error) {
          showError(error);
        }
        return undefined;
      }),
    );
  };

  const showNoticeForm = () => {
    const chosen = $$(ctx.view, "input[name=finding]:checked").map((i) => Number(i.value));
    if (!chosen.length) return showError({ message: "请勾选要整改的问题" });
    const box = $(ctx.view, "[data-notice-form]");
    const requirements = patrol.findings
      .filter((f) => chosen.includes(f.id))
      .map((f, i) => `${i + 1}. 针对“${f.description}”立即整改，并提交整改后的照片。`)
      .join("\n");
    render(
      box,
      html`<form class="bk-sheet" novalidate>
        <div class="weui-cells__title">整改通知（${chosen.length} 个问题）</div>
        <div class="weui-cells weui-cells_form">
          <div class="weui-cell"><div class="weui-cell__bd">
            <textarea class="weui-textarea" name="requirements" rows="4" maxlength="4000">${requirements}</textarea>
          </div></div>
          <div class="weui-cell"><div class="weui-cell__bd">
            <textarea class="weui-textarea" name="legal_basis" rows="2" maxlength="4000">${DEFAULT_LEGAL_BASIS}</textarea>
          </div></div>
          <div class="weui-cell weui-cell_active">
            <div class="weui-cell__hd"><label class="weui-label">整改期限</label></div>
            <div class="weui-cell__bd"><input class="weui-input" name="working_days" type="number" inputmode="numeric" min="1" max="365" value="5"></div>
            <div class="weui-cell__ft">个工作日</div>
          </div>
        </div>
        <div class="bk-actions bk-actions_row">
          <a role="button" href="javascript:" class="weui-btn weui-btn_default" data-action="cancel">取消</a>
          <a role="button" href="javascript:" class="weui-btn weui-btn_primary" data-action="issue">下发</a>
        </div>
      </form>`,
    );
    box.scrollIntoView({ behavior: "smooth", block: "start" });
    $(box, "[data-action=cancel]").addEventListener("click", () => render(box, ""));
    const issue = $(box, "[data-action=issue]");
    issue.addEventListener("click", () =>
      busy(issue, async () => {
        const form = $(box, "form");
        const days = Number(form.working_days.value);
        if (!form.requirements.value.trim()) return showError({ message: "请填写整改要求" });
        if (!Number.isInteger(days) || days < 1) return showError({ message: "请填写整改期限（工作日数）" });
        try {
          const draft = await api("/api/v1/inspector/notices", {
            method: "POST",
            json: {
              centre_id: centreId,
              finding_ids: chosen,
              requirements: form.requirements.value.trim(),
              legal_basis: form.legal_basis.value.trim(),
              working_days: days,
            },
          });
          const issued = await api(`/api/v1/inspector/notices/${draft.id}/issue`, { method: "POST" });
          render(box, "");
          toast(`已下发 ${issued.number}`, { ms: 2500 });
          ctx.navigate(`/inspector/notice/${issued.id}`);
        } catch (error) {
          showError(error);
        }
        return undefined;
      }),
    );
    return undefined;
  };

  ctx.listen(ctx.view, "click", async (event) => {
    // A snapshot shown in a room or under a finding opens full screen (not those in the
    // evidence picker, where a tap ticks the box).
    if (event.target.closest(".bk-room__shot, .bk-snapshot-thumb") && galleryClick(event)) {
      event.preventDefault(); // a thumbnail under a finding sits in its checkbox label
      return;
    }
    const button = event.target.closest("[data-action]");
    if (!button || button.classList.contains("weui-btn_disabled")) return;
    const action = button.dataset.action;
    const areaId = Number(button.closest("[data-area]")?.dataset.area);
    if (action === "start") {
      await busy(button, async () => {
        try {
          patrol = await api("/api/v1/inspector/patrols", {
            method: "POST",
            json: { centre_id: centreId, mode: "remote" },
          });
        } catch (error) {
          // Already patrolling here (another tab): carry on with that patrol.
          if (error.status === 409 && error.body.patrol_id) {
            patrol = await api(`/api/v1/inspector/patrols/${error.body.patrol_id}`);
          } else {
            return showError(error);
          }
        }
        drawPatrol();
        return undefined;
      });
    } else if (action === "end") {
      if (!(await confirmDialog("结束巡查", "结束后本次巡查记录将不能再修改。", { ok: "结束" }))) return;
      await busy(button, async () => {
        try {
          const unchecked = areas.filter((a) => !patrol.area_checks.some((c) => c.area_id === a.id));
          const summary = patrol.findings.length
            ? `远程巡查发现 ${patrol.findings.length} 个问题`
            : `远程巡查未发现问题${unchecked.length ? `（${unchecked.length} 个区域未检查）` : ""}`;
          await api(`/api/v1/inspector/patrols/${patrol.id}/end`, { method: "POST", json: { summary } });
          patrol = null;
          toast("巡查已结束");
          drawPatrol();
        } catch (error) {
          showError(error);
        }
      });
    } else if (action === "snapshot" && areaId) {
      await busy(button, async () => {
        try {
          await api(`/api/v1/cameras/${cameraOf(areaId).id}/snapshots`, {
            method: "POST",
            json: { reason: "patrol", patrol_id: patrol.id },
          });
          toast("已抓拍");
          await refreshPatrol();
        } catch (error) {
          showError(error);
        }
      });
    } else if (action === "ok" && areaId) {
      await busy(button, async () => {
        try {
          // The room's newest snapshot, if any, is kept as the record of what was seen.
          const [latest] = shotsOf(areaId);
          await api(`/api/v1/inspector/patrols/${patrol.id}/areas/${areaId}`, {
            method: "PUT",
            json: { result: "ok", snapshot_id: latest ? latest.id : null },
          });
          await refreshPatrol();
        } catch (error) {
          showError(error);
        }
      });
    } else if (action === "finding" && areaId) {
      showFindingForm(areaId);
    } else if (action === "notice") {
      showNoticeForm();
    }
  });
  drawPatrol();
}

// --- notices --------------------------------------------------------------------------------

const FILTERS = [
  ["review", "待复查", (n) => n.status === "responded"],
  ["open", "整改中", (n) => OPEN_NOTICE.has(n.status)],
  ["overdue", "逾期", (n) => n.status === "overdue" || n.status === "escalated"],
  ["all", "全部", () => true],
];

export async function noticesPage(ctx) {
  setTitle("整改通知");
  let filter = ctx.query.filter || "review";
  render(
    ctx.view,
    html`<div class="bk-page">
      <div class="weui-navbar bk-navbar" role="tablist">
        ${FILTERS.map(
          ([key, label]) => html`<a role="tab" href="javascript:" class="weui-navbar__item${key === filter ? " weui-bar__item_on" : ""}" data-filter="${key}">${label}</a>`,
        )}
      </div>
      <div data-list></div>
    </div>`,
  );
  const list = $(ctx.view, "[data-list]");
  let notices = null;
  const draw = () => {
    const [, label, test] = FILTERS.find(([key]) => key === filter);
    const shown = notices.filter(test);
    return shown.length
      ? html`<div class="weui-cells">${shown.map((n) => noticeCell(n, `#/inspector/notice/${n.id}`))}</div>`
      : emptyState(`没有${label}的整改通知`);
  };
  const load = async () => {
    notices = await loadInto(list, () => api("/api/v1/notices"), (rows) => {
      notices = rows;
      return draw();
    });
  };
  $(ctx.view, ".weui-navbar").addEventListener("click", (event) => {
    const key = event.target.closest("[data-filter]")?.dataset.filter;
    if (!key) return;
    filter = key;
    for (const tab of $$(ctx.view, "[data-filter]")) {
      tab.classList.toggle("weui-bar__item_on", tab.dataset.filter === key);
    }
    if (notices) render(list, draw());
  });
  await load();
  ctx.cleanup(subscribe("notice.", () => ctx.current && load()));
}

function nowLocalInput() {
  const d = new Date(Date.now() - new Date().getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

export async function noticePage(ctx) {
  const id = Number(ctx.params.id);
  const inspector = currentUser().role === "inspector";
  setTitle("整改通知");
  const draw = (notice) => html`<div class="bk-page">
    ${noticeHeader(notice)}
    <div class="weui-cells__title">发现的问题</div>
    <div class="weui-cells">
      ${notice.findings.map(
        (f) => html`<div class="weui-cell" data-notice-finding="${f.id}"><div class="weui-cell__bd">
          <p>${f.description}</p>
          <p class="bk-cell-sub">${FINDING_CATEGORY[f.category]} · ${SEVERITY[f.severity]}</p>
          ${snapshotThumbs(f.snapshot_ids)}
        </div></div>`,
      )}
    </div>
    ${responsesBlock(notice)}
    ${inspector && notice.status === "responded"
      ? html`<div class="weui-cells__title">复查</div>
          <form class="bk-review" novalidate>
            <div class="weui-cells weui-cells_form">
              <div class="weui-cell weui-cell_select weui-cell_select-after">
                <div class="weui-cell__hd"><label class="weui-label">复查方式</label></div>
                <div class="weui-cell__bd"><select class="weui-select" name="mode">${options(REVIEW_MODE, "live_video")}</select></div>
              </div>
              <div class="weui-cell"><div class="weui-cell__bd">
                <textarea class="weui-textarea" name="note" rows="2" maxlength="2000" placeholder="复查意见（退回时必填，操作人员可见）"></textarea>
              </div></div>
            </div>
            <div class="bk-actions bk-actions_row">
              <a role="button" href="javascript:" class="weui-btn weui-btn_warn" data-action="return">退回整改</a>
              <a role="button" href="javascript:" class="weui-btn weui-btn_primary" data-action="verify">复查通过</a>
            </div>
          </form>`
      : ""}
    ${inspector && notice.status === "draft"
      ? html`<div class="bk-actions"><a role="button" href="javascript:" class="weui-btn weui-btn_primary" data-action="issue">下发</a></div>`
      : ""}
    ${historyBlock(notice)}
    ${inspector && !["draft", "withdrawn"].includes(notice.status)
      ? html`<div class="weui-cells__title">记录跟进</div>
          <form class="bk-follow-up" novalidate>
            <div class="weui-cells weui-cells_form">
              <div class="weui-cell weui-cell_select weui-cell_select-after">
                <div class="weui-cell__hd"><label class="weui-label">方式</label></div>
                <div class="weui-cell__bd"><select class="weui-select" name="kind">${options(FOLLOW_UP_KIND, "phone")}</select></div>
              </div>
              <div class="weui-cell weui-cell_active">
                <div class="weui-cell__hd"><label class="weui-label">时间</label></div>
                <div class="weui-cell__bd"><input class="weui-input" type="datetime-local" name="happened_at" value="${nowLocalInput()}"></div>
              </div>
              <div class="weui-cell weui-cell_active">
                <div class="weui-cell__hd"><label class="weui-label">联系对象</label></div>
                <div class="weui-cell__bd"><input class="weui-input" name="contact" maxlength="128" placeholder="例如 负责人李先生"></div>
              </div>
              <div class="weui-cell"><div class="weui-cell__bd">
                <textarea class="weui-textarea" name="outcome" rows="2" maxlength="4000" placeholder="跟进结果"></textarea>
              </div></div>
            </div>
            <div class="bk-actions">
              <a role="button" href="javascript:" class="weui-btn weui-btn_default" data-action="follow-up">保存跟进记录</a>
            </div>
          </form>`
      : ""}
    <div class="bk-actions"><a class="weui-btn weui-btn_default" href="#/inspector/notices">返回列表</a></div>
  </div>`;

  const loadImages = authImages(ctx);
  let shown = "";
  const show = async (fetched) => {
    const notice = await loadInto(ctx.view, () => fetched || api(`/api/v1/notices/${id}`), draw);
    if (!notice) return;
    shown = noticeSignature(notice);
    setTitle(notice.number || "整改通知");
    loadImages(ctx.view);
  };
  let acting = 0; // while the inspector's own action runs, its events are not news
  const act = (button, work, done) =>
    busy(button, async () => {
      acting += 1;
      try {
        await work();
        toast(done);
        await show();
      } catch (error) {
        showError(error);
      } finally {
        acting -= 1;
      }
    });

  ctx.listen(ctx.view, "click", async (event) => {
    if (galleryClick(event)) return undefined;
    const button = event.target.closest("[data-action]");
    if (!button) return undefined;
    const action = button.dataset.action;
    const review = $(ctx.view, ".bk-review");
    if (action === "verify") {
      await act(
        button,
        () =>
          api(`/api/v1/inspector/notices/${id}/verify`, {
            method: "POST",
            json: { mode: review.mode.value, note: review.note.value.trim() },
          }),
        "已复查通过",
      );
    } else if (action === "return") {
      const reason = review.note.value.trim();
      if (!reason) return showError({ message: "请填写退回理由" });
      await act(
        button,
        () =>
          api(`/api/v1/inspector/notices/${id}/return`, {
            method: "POST",
            json: { mode: review.mode.value, reason },
          }),
        "已退回",
      );
    } else if (action === "issue") {
      await act(button, () => api(`/api/v1/inspector/notices/${id}/issue`, { method: "POST" }), "已下发");
    } else if (action === "follow-up") {
      const form = $(ctx.view, ".bk-follow-up");
      const contact = form.contact.value.trim();
      const outcome = form.outcome.value.trim();
      if (!contact || !outcome) return showError({ message: "请填写联系对象和跟进结果" });
      const happened = new Date(form.happened_at.value);
      await act(
        button,
        () =>
          api(`/api/v1/inspector/notices/${id}/follow-ups`, {
            method: "POST",
            json: {
              kind: form.kind.value,
              happened_at: (Number.isNaN(happened.getTime()) ? new Date() : happened).toISOString(),
              contact,
              outcome,
            },
          }),
        "已记录",
      );
    }
    return undefined;
  });
  await show();
  // The operator answers while the inspector looks at it. Events of the inspector's own
  // actions change nothing already shown, and must not wipe a form being filled in.
  ctx.cleanup(
    subscribe("notice.", async (_name, data) => {
      if (!ctx.current || data.notice_id !== id || acting) return;
      const notice = await api(`/api/v1/notices/${id}`).catch(() => null);
      if (notice && ctx.current && !acting && noticeSignature(notice) !== shown) show(notice);
    }),
  );
}

// --- parents' concerns ----------------------------------------------------------------------

const CONCERN_FILTERS = [
  ["submitted", "待受理", (c) => c.status === "submitted"],
  ["accepted", "处理中", (c) => c.status === "accepted"],
  ["overdue", "逾期", (c) => c.overdue],
  ["all", "全部", () => true],
];
const OPEN_CONCERN = new Set(["submitted", "accepted"]);
const NOTICE_LINKABLE = (n) => n.status !== "draft" && n.status !== "withdrawn";

// The clock that runs now: deciding (受理期限) while it waits, resolving (办结期限) once
// accepted; the overdue flags are the server's (it knows the statutory calendar).
function runningClock(c) {
  if (!OPEN_CONCERN.has(c.status)) return null;
  const deciding = c.status === "submitted";
  const due = deciding ? c.decide_by : c.resolve_by;
  const overdue = deciding ? c.decide_overdue : c.resolve_overdue;
  const countdown = deadlineCountdown(due);
  return {
    label: deciding ? "受理期限" : "办结期限",
    due,
    overdue,
    text: countdown.text,
    tone: overdue ? "danger" : countdown.tone === "danger" ? "warn" : countdown.tone,
  };
}

const concernTag = (c) =>
  tag(c.status_label || CONCERN_STATUS[c.status] || c.status, CONCERN_TONE[c.status]);

function concernCell(c) {
  const clock = runningClock(c);
  return html`<a class="weui-cell weui-cell_access bk-concern-cell${c.overdue ? " bk-concern-cell_overdue" : ""}" href="#/inspector/concern/${c.id}" data-concern="${c.id}" data-status="${c.status}" data-overdue="${c.overdue ? "true" : "false"}">
    <div class="weui-cell__bd">
      <p class="bk-cell-title bk-ellipsis">${c.centre_name}</p>
      <p class="bk-cell-sub">${c.area_name || "未指定区域"} · ${relativeTime(c.submitted_at)}${c.photo_count ? ` · ${c.photo_count} 张照片` : ""}</p>
      <p class="bk-cell-sub bk-clamp" data-excerpt>${c.text}</p>
      <p class="bk-cell-sub bk-concern-tags">${concernTag(c)} ${clock ? tag(clock.text, clock.tone) : ""}</p>
      ${clock
        ? html`<p class="bk-cell-sub bk-concern-clock${clock.overdue ? " bk-concern-clock_overdue" : ""}" data-clock>${clock.label} ${formatDate(clock.due)}${c.deadline_provisional ? "（暂定）" : ""}</p>`
        : html`<p class="bk-cell-sub" data-clock>${c.status === "resolved" ? "办结" : "答复"}于 ${formatDateTime(c.closed_at || c.decided_at)}</p>`}
    </div>
  </a>`;
}

export async function concernsPage(ctx) {
  setTitle("家长反映");
  let filter = CONCERN_FILTERS.some(([key]) => key === ctx.query.filter) ? ctx.query.filter : "submitted";
  render(
    ctx.view,
    html`<div class="bk-page">
      <div class="weui-navbar bk-navbar" role="tablist">
        ${CONCERN_FILTERS.map(
          ([key, label]) => html`<a role="tab" href="javascript:" class="weui-navbar__item${key === filter ? " weui-bar__item_on" : ""}" data-filter="${key}">${label}<span class="bk-navbar__count${key === "overdue" ? " bk-navbar__count_danger" : ""}" data-count></span></a>`,
        )}
      </div>
      <div data-list></div>
      <div class="weui-cells__tips">受理期限为提交后 7 个工作日，办结期限为 15 个工作日。</div>
    </div>`,
  );
  const list = $(ctx.view, "[data-list]");
  let concerns = null;
  const draw = () => {
    for (const [key, , test] of CONCERN_FILTERS) {
      const count = key === "all" ? 0 : concerns.filter(test).length;
      $(ctx.view, `[data-filter=${key}] [data-count]`).textContent = count ? ` ${count}` : "";
    }
    const [, label, test] = CONCERN_FILTERS.find(([key]) => key === filter);
    const shown = concerns.filter(test);
    return shown.length
      ? html`<div class="weui-cells" data-concerns>${shown.map(concernCell)}</div>`
      : emptyState(filter === "all" ? "暂无家长反映" : `没有${label}的家长反映`);
  };
  $(ctx.view, ".weui-navbar").addEventListener("click", (event) => {
    const key = event.target.closest("[data-filter]")?.dataset.filter;
    if (!key) return;
    filter = key;
    history.replaceState(null, "", `#/inspector/concerns?filter=${key}`);
    for (const tab of $$(ctx.view, "[data-filter]")) {
      tab.classList.toggle("weui-bar__item_on", tab.dataset.filter === key);
    }
    if (concerns) render(list, draw());
  });
  concerns = await loadInto(list, () => api("/api/v1/concerns"), (rows) => {
    concerns = rows;
    return draw();
  });

  // Realtime: reload in place (no loading state, the list keeps its scroll); several events
  // may arrive together.
  let pending = null;
  const reload = () => {
    clearTimeout(pending);
    pending = setTimeout(async () => {
      try {
        const rows = await api("/api/v1/concerns");
        if (!ctx.current) return;
        concerns = rows;
        render(list, draw());
      } catch {
        /* the next event or a reconnect tries again */
      }
    }, 250);
  };
  ctx.cleanup(() => clearTimeout(pending));
  ctx.cleanup(
    subscribe("concern.", (name, data) => {
      if (!ctx.current) return;
      if (name === "concern.submitted") toast(`新的家长反映：${data.centre_name || ""}`, { icon: "text", ms: 2000 });
      reload();
    }),
  );
  let wasConnected = null;
  ctx.cleanup(
    onConnection((connected) => {
      if (connected && wasConnected === false) reload();
      wasConnected = connected;
    }),
  );
}

// What a realtime event may have changed on a concern page: it is drawn again only when this
// differs from what is shown (and a half-written answer is not wiped for nothing).
const concernSignature = (c) =>
  JSON.stringify([c.status, c.history.length, c.photo_count, c.assignee?.id, c.notices.map((n) => n.status)]);

function clockLine(label, due, provisional, state) {
  return html`<p class="bk-card__meta bk-concern-clock${state.overdue ? " bk-concern-clock_overdue" : ""}" data-clock="${label}">
    ${label}：${formatDate(due)}${provisional ? "（暂定）" : ""} ${state.tag}
  </p>`;
}

function concernClocks(c) {
  const running = (overdue, due) => {
    const countdown = deadlineCountdown(due);
    return { overdue, tag: tag(countdown.text, overdue ? "danger" : countdown.tone === "danger" ? "warn" : countdown.tone) };
  };
  const decide =
    c.status === "submitted"
      ? running(c.decide_overdue, c.decide_by)
      : { tag: tag(`${formatDateTime(c.decided_at)} ${c.status === "dismissed" ? "已答复" : "已受理"}`) };
  const resolve = OPEN_CONCERN.has(c.status)
    ? running(c.resolve_overdue, c.resolve_by)
    : c.status === "resolved"
      ? { tag: tag(`${formatDateTime(c.closed_at)} 已办结`, "ok") }
      : null;
  return html`${clockLine("受理期限", c.decide_by, c.deadline_provisional, decide)}
    ${resolve ? clockLine("办结期限", c.resolve_by, c.deadline_provisional, resolve) : ""}`;
}

function drawConcern(c, inspector) {
  return html`<div class="bk-page bk-concern" data-concern-page="${c.id}" data-status="${c.status}">
    <div class="bk-card bk-concern-head">
      <div class="bk-card__head">
        <span data-status-label>${concernTag(c)}${c.overdue ? html` ${tag("已逾期", "danger")}` : ""}</span>
        <span class="bk-card__meta">${formatDateTime(c.submitted_at)}</span>
      </div>
      <h2 class="bk-notice-head__number">${c.centre_name}</h2>
      <p class="bk-card__meta" data-room>${c.area_name || "未指定区域"}${c.source === "wechat" ? " · 来自微信" : ""}${c.anonymous ? " · 要求对经营者匿名" : ""}</p>
      <p class="bk-card__text" data-text>${c.text}</p>
      <div class="bk-card__section" data-clocks>${concernClocks(c)}</div>
    </div>
    ${c.photos?.length
      ? html`<div class="weui-cells__title">照片（${c.photos.length}）</div>
          <div class="bk-photo-row" data-photos>${c.photos.map(
            (p, i) => html`<img class="bk-photo" alt="反映照片 ${i + 1}" data-photo="${p.id}" data-api-src="/api/v1/concerns/${c.id}/photos/${p.id}">`,
          )}</div>`
      : ""}
    <div class="weui-cells__title">反映人</div>
    <div class="weui-cells" data-reporter>
      <div class="weui-cell">
        <div class="weui-cell__bd">${c.reporter?.name || "一位家长"}</div>
        <div class="weui-cell__ft">${c.reporter?.phone
          ? html`<a href="tel:${c.reporter.phone}">${c.reporter.phone}</a>`
          : html`<span class="bk-muted">未留电话</span>`}</div>
      </div>
      ${c.assignee
        ? html`<div class="weui-cell" data-assignee>
            <div class="weui-cell__bd">承办人</div>
            <div class="weui-cell__ft">${c.assignee.name}</div>
          </div>`
        : ""}
    </div>
    <div class="weui-cells__tips">反映人信息仅监管人员可见${c.anonymous ? "，经营者看到的是“一位家长”" : ""}。</div>
    ${c.answer
      ? html`<div class="weui-cells__title">${c.status === "dismissed" ? "不予受理理由" : "处理结果"}</div>
          <div class="bk-card" data-answer><p class="bk-card__text">${c.answer}</p></div>`
      : ""}
    ${c.notices?.length
      ? html`<div class="weui-cells__title">关联的整改通知</div>
          <div class="weui-cells">${c.notices.map(
            (n) => html`<a class="weui-cell weui-cell_access" href="#/inspector/notice/${n.id}">
              <div class="weui-cell__bd">${n.number || "整改通知"}</div>
              <div class="weui-cell__ft">${n.status_label}</div>
            </a>`,
          )}</div>`
      : ""}
    ${inspector && c.status === "submitted"
      ? html`<div class="weui-cells__title">受理</div>
          <form class="bk-triage" novalidate>
            <div class="weui-cells weui-cells_form">
              <div class="weui-cell"><div class="weui-cell__bd">
                <textarea class="weui-textarea" name="note" rows="3" maxlength="2000"
                  placeholder="说明（家长可见）：受理时选填；不予受理时必须填写理由"></textarea>
              </div></div>
            </div>
            <div class="bk-actions bk-actions_row">
              <a role="button" href="javascript:" class="weui-btn weui-btn_warn" data-action="dismiss">不予受理</a>
              <a role="button" href="javascript:" class="weui-btn weui-btn_primary" data-action="accept">受理</a>
            </div>
          </form>`
      : ""}
    ${inspector && c.status === "accepted"
      ? html`<div class="weui-cells__title">办结</div>
          <form class="bk-resolve" novalidate>
            <div class="weui-cells weui-cells_form">
              <div class="weui-cell"><div class="weui-cell__bd">
                <textarea class="weui-textarea" name="answer" rows="4" maxlength="4000"
                  placeholder="处理结果（家长可见）：核查了什么、发现了什么、采取了哪些措施"></textarea>
              </div></div>
            </div>
            <div data-link-notices></div>
            <div class="bk-actions">
              <a role="button" href="javascript:" class="weui-btn weui-btn_primary" data-action="resolve">办结</a>
            </div>
          </form>`
      : ""}
    <div class="weui-cells__title">办理记录</div>
    <div class="bk-timeline" data-history>
      ${[...(c.history || [])].reverse().map(
        (h) => html`<div class="bk-timeline__item">
          <p class="bk-timeline__title">${h.status_label || CONCERN_STATUS[h.to_status] || h.to_status}</p>
          <p class="bk-timeline__meta">${formatDateTime(h.at)}</p>
          ${h.reason ? html`<p class="bk-timeline__text">${h.reason}</p>` : ""}
        </div>`,
      )}
    </div>
    <div class="bk-actions"><a class="weui-btn weui-btn_default" href="#/inspector/concerns">返回列表</a></div>
  </div>`;
}

// The issued notices of the centre, to link to the concern when it is resolved (optional).
async function drawNoticeChoices(ctx, c) {
  const box = $(ctx.view, "[data-link-notices]");
  if (!box) return;
  let notices;
  try {
    notices = (await api("/api/v1/notices", { query: { centre_id: c.centre_id } })).filter(NOTICE_LINKABLE);
  } catch {
    return; // linking is optional; the answer can still be sent
  }
  if (!ctx.current || !notices.length || !box.isConnected) return;
  const linked = new Set(c.notices.map((n) => n.id));
  render(
    box,
    html`<div class="weui-cells__title">关联整改通知（选填）</div>
      <div class="weui-cells weui-cells_checkbox">
        ${notices.map(
          (n) => html`<label class="weui-cell weui-cell_active weui-check__label">
            <div class="weui-cell__hd">
              <input type="checkbox" class="weui-check" name="notice" value="${n.id}"${linked.has(n.id) ? " checked" : ""}>
              <i class="weui-icon-checked"></i>
            </div>
            <div class="weui-cell__bd">
              <p class="bk-ellipsis">${n.number || "整改通知"}</p>
              <p class="bk-cell-sub">${n.status_label}</p>
            </div>
          </label>`,
        )}
      </div>`,
  );
}

export async function concernPage(ctx) {
  const id = Number(ctx.params.id);
  const inspector = currentUser().role === "inspector";
  setTitle("家长反映");
  const loadPhotos = authImages(ctx);

  let shown = "";
  const show = async (fetched) => {
    const concern = await loadInto(ctx.view, () => fetched || api(`/api/v1/concerns/${id}`), (c) =>
      drawConcern(c, inspector),
    );
    if (!concern || !ctx.current) return;
    shown = concernSignature(concern);
    setTitle(`家长反映 · ${concern.centre_name}`);
    loadPhotos(ctx.view);
    drawNoticeChoices(ctx, concern);
  };
  let acting = 0; // while the inspector's own action runs, its events are not news
  const act = (button, work, done) =>
    busy(button, async () => {
      acting += 1;
      try {
        await work();
        toast(done);
        await show();
      } catch (error) {
        showError(error);
        // Someone else decided it meanwhile: show what it is now.
        if (error.status === 409) await show();
      } finally {
        acting -= 1;
      }
    });

  ctx.listen(ctx.view, "click", async (event) => {
    if (galleryClick(event)) return undefined;
    const button = event.target.closest("[data-action]");
    if (!button) return undefined;
    const action = button.dataset.action;
    if (action === "accept") {
      const note = $(ctx.view, ".bk-triage textarea[name=note]").value.trim();
      await act(
        button,
        () => api(`/api/v1/inspector/concerns/${id}/accept`, { method: "POST", json: { note } }),
        "已受理",
      );
    } else if (action === "dismiss") {
      const reason = $(ctx.view, ".bk-triage textarea[name=note]").value.trim();
      if (!reason) return showError({ message: "请填写不予受理的理由（家长可见）" });
      await act(
        button,
        () => api(`/api/v1/inspector/concerns/${id}/dismiss`, { method: "POST", json: { reason } }),
        "已答复不予受理",
      );
    } else if (action === "resolve") {
      const form = $(ctx.view, ".bk-resolve");
      const answer = form.answer.value.trim();
      if (!answer) return showError({ message: "请填写处理结果（家长可见）" });
      const noticeIds = $$(form, "input[name=notice]:checked").map((i) => Number(i.value));
      await act(
        button,
        () =>
          api(`/api/v1/inspector/concerns/${id}/resolve`, {
            method: "POST",
            json: { answer, notice_ids: noticeIds },
          }),
        "已办结",
      );
    }
    return undefined;
  });
  await show();
  // A colleague triaged it while this page is open.
  ctx.cleanup(
    subscribe("concern.", async (_name, data) => {
      if (!ctx.current || data.concern_id !== id || acting) return;
      const concern = await api(`/api/v1/concerns/${id}`).catch(() => null);
      if (concern && ctx.current && !acting && concernSignature(concern) !== shown) show(concern);
    }),
  );
}
