// Operators (经营者): the rectification notices of their centre (open first, with the deadline
// counting down), a notice with its findings and history, acknowledging it, answering it with
// text and photos; the centre's cameras; what parents reported about the centre.

import { api, currentUser } from "../api.js";
import { authImages, galleryClick } from "../images.js";
import { photoPicker } from "../photos.js";
import { subscribe } from "../realtime.js";
import {
  $,
  busy,
  confirmDialog,
  deadlineCountdown,
  emptyState,
  formatDate,
  formatDateTime,
  html,
  loadInto,
  relativeTime,
  render,
  setTitle,
  showError,
  tag,
  toast,
} from "../ui.js";
import {
  ANSWERABLE,
  CAMERA_STATUS,
  CAMERA_TONE,
  CONCERN_STATUS,
  CONCERN_TONE,
  FINDING_CATEGORY,
  NOTICE_STATUS,
  NOTICE_TONE,
  OPEN_NOTICE,
  REVIEW_MODE,
  SEVERITY,
} from "../labels.js";

export function noticeCell(notice, href) {
  const open = OPEN_NOTICE.has(notice.status);
  const countdown = deadlineCountdown(notice.deadline, !open);
  const summary = notice.findings?.map((f) => f.description).join("；") || notice.requirements;
  return html`<a class="weui-cell weui-cell_access bk-notice-cell${open ? "" : " bk-notice-cell_closed"}" href="${href}" data-notice="${notice.id}" data-status="${notice.status}">
    <div class="weui-cell__bd">
      <p class="bk-cell-title">${notice.number || "整改通知（草稿）"}</p>
      <p class="bk-cell-sub bk-ellipsis">${summary}</p>
      <p class="bk-cell-sub">${tag(notice.status_label || NOTICE_STATUS[notice.status], NOTICE_TONE[notice.status])}
        ${open ? tag(countdown.text, countdown.tone) : html`<span>${countdown.text}</span>`}</p>
    </div>
  </a>`;
}

export async function inboxPage(ctx) {
  setTitle("整改通知");
  render(
    ctx.view,
    html`<div class="bk-page">
      <h2 class="bk-page__title">整改通知</h2>
      <div data-list></div>
    </div>`,
  );
  const list = $(ctx.view, "[data-list]");
  const load = () =>
    loadInto(
      list,
      () => api("/api/v1/notices"),
      (notices) => {
        if (!notices.length) return emptyState("暂无整改通知", "监管部门下发的整改通知会显示在这里");
        const open = notices.filter((n) => OPEN_NOTICE.has(n.status));
        const closed = notices.filter((n) => !OPEN_NOTICE.has(n.status));
        return html`
          <div class="weui-cells__title">待处理（${open.length}）</div>
          ${open.length
            ? html`<div class="weui-cells" data-open>${open.map((n) => noticeCell(n, `#/operator/notice/${n.id}`))}</div>`
            : html`<div class="weui-cells"><div class="weui-cell"><div class="weui-cell__bd bk-muted">没有待处理的整改通知</div></div></div>`}
          ${closed.length
            ? html`<div class="weui-cells__title">已结束</div>
                <div class="weui-cells" data-closed>${closed.map((n) => noticeCell(n, `#/operator/notice/${n.id}`))}</div>`
            : ""}`;
      },
    );
  await load();
  ctx.cleanup(subscribe("notice.", () => ctx.current && load()));
}

// The snapshots recorded as a finding's evidence (loaded with the bearer token by images.js).
export function snapshotThumbs(ids) {
  if (!ids?.length) return "";
  return html`<div class="bk-photo-row bk-photo-row_card" data-finding-snapshots>${ids.map(
    (id, i) => html`<img class="bk-photo bk-snapshot-thumb" alt="抓拍证据 ${i + 1}" data-snapshot="${id}" data-api-src="/api/v1/snapshots/${id}/image">`,
  )}</div>`;
}

function findingsBlock(notice) {
  return html`<div class="weui-cells__title">发现的问题</div>
    <div class="weui-cells">
      ${notice.findings.map(
        (f) => html`<div class="weui-cell">
          <div class="weui-cell__bd">
            <p>${f.description}</p>
            <p class="bk-cell-sub">${FINDING_CATEGORY[f.category] || f.category} · ${SEVERITY[f.severity] || f.severity} · ${formatDateTime(f.recorded_at)}</p>
            ${snapshotThumbs(f.snapshot_ids)}
          </div>
        </div>`,
      )}
    </div>`;
}

// `drafting`: whether the drafting step is shown (the inspectors' side; operators never see a
// notice before it is issued).
export function historyBlock(notice, { drafting = true } = {}) {
  const items = [
    ...notice.history
      .filter((e) => drafting || e.to_status !== "draft")
      .map((e) => ({
        at: e.at,
        title: NOTICE_STATUS[e.to_status] || e.to_status,
        text: e.reason,
      })),
    ...(notice.follow_ups || []).map((f) => ({
      at: f.happened_at,
      title: `跟进：${{ phone: "电话", on_site: "现场", message: "消息" }[f.kind] || f.kind} · ${f.contact}`,
      text: f.outcome,
    })),
  ].sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
  return html`<div class="weui-cells__title">处理记录</div>
    <div class="bk-timeline" data-history>
      ${items.map(
        (item) => html`<div class="bk-timeline__item">
          <p class="bk-timeline__title">${item.title}</p>
          <p class="bk-timeline__meta">${formatDateTime(item.at)}</p>
          ${item.text ? html`<p class="bk-timeline__text">${item.text}</p>` : ""}
        </div>`,
      )}
    </div>`;
}

export function responsesBlock(notice) {
  if (!notice.responses.length) return "";
  return html`<div class="weui-cells__title">整改回复</div>
    ${notice.responses.map(
      (r) => html`<div class="bk-card" data-response="${r.id}">
        <div class="bk-card__head">
          <strong>第 ${r.round} 次回复</strong>
          <span class="bk-card__meta">${formatDateTime(r.submitted_at)}</span>
        </div>
        <p class="bk-card__text">${r.text}</p>
        <p class="bk-card__meta">${r.photos.length ? `附照片 ${r.photos.length} 张` : "无照片"}</p>
        ${r.photos.length
          ? html`<div class="bk-photo-row bk-photo-row_card" data-response-photos>${r.photos.map(
              (p, i) => html`<img class="bk-photo" alt="整改照片 ${i + 1}" data-response-photo="${p.id}" data-api-src="/api/v1/notices/${notice.id}/photos/${p.id}">`,
            )}</div>`
          : ""}
        ${r.reviewed_at
          ? html`<p class="bk-card__meta">${r.accepted ? tag("复查通过", "ok") : tag("已退回", "danger")}
              ${r.review_note ? `：${r.review_note}` : ""}</p>`
          : ""}
      </div>`,
    )}`;
}

// What a realtime event may have changed on a notice page: a new page is drawn only when
// this differs from what is shown.
export function noticeSignature(notice) {
  return JSON.stringify([
    notice.status,
    notice.responses.length,
    notice.responses.map((r) => r.reviewed_at),
    notice.history.length,
    notice.follow_ups.length,
  ]);
}

export function noticeHeader(notice) {
  const open = OPEN_NOTICE.has(notice.status);
  const countdown = deadlineCountdown(notice.deadline, !open);
  return html`<div class="bk-card bk-notice-head">
    <div class="bk-card__head">
      ${tag(notice.status_label || NOTICE_STATUS[notice.status], NOTICE_TONE[notice.status])}
      ${open ? tag(countdown.text, countdown.tone) : ""}
    </div>
    <h2 class="bk-notice-head__number">${notice.number || "整改通知（草稿）"}</h2>
    <p class="bk-card__meta">整改期限：${formatDate(notice.deadline)}${notice.deadline_working_days ? `（${notice.deadline_working_days} 个工作日）` : ""}${notice.deadline_provisional ? "（暂定）" : ""}</p>
    <p class="bk-card__meta">下发时间：${formatDateTime(notice.issued_at)}</p>
    ${notice.review_mode ? html`<p class="bk-card__meta">复查方式：${REVIEW_MODE[notice.review_mode]}</p>` : ""}
    <div class="bk-card__section">
      <p class="bk-card__label">整改要求</p>
      <p class="bk-card__text">${notice.requirements}</p>
    </div>
    ${notice.legal_basis
      ? html`<div class="bk-card__section"><p class="bk-card__label">依据</p><p class="bk-card__text">${notice.legal_basis}</p></div>`
      : ""}
  </div>`;
}

export async function noticePage(ctx) {
  const id = Number(ctx.params.id);
  setTitle("整改通知");
  let picker = null;
  const loadImages = authImages(ctx);
  ctx.listen(ctx.view, "click", galleryClick);
  const draw = (notice) => {
    picker?.destroy();
    picker = null;
    const canAnswer = ANSWERABLE.has(notice.status);
    return html`<div class="bk-page">
      ${noticeHeader(notice)}
      ${findingsBlock(notice)}
      ${responsesBlock(notice)}
      ${notice.status === "issued"
        ? html`<div class="bk-actions"><a role="button" href="javascript:" class="weui-btn weui-btn_default" data-action="acknowledge">签收</a></div>`
        : ""}
      ${canAnswer
        ? html`<div class="weui-cells__title">回复整改情况</div>
            <form class="bk-answer" novalidate>
              <div class="weui-cells weui-cells_form">
                <div class="weui-cell">
                  <div class="weui-cell__bd">
                    <textarea class="weui-textarea" name="text" rows="4" maxlength="4000"
                      placeholder="说明整改措施和完成情况"></textarea>
                  </div>
                </div>
                <div class="weui-cell"><div class="weui-cell__bd" data-photos></div></div>
              </div>
              <div class="bk-actions">
                <a role="button" href="javascript:" class="weui-btn weui-btn_primary" data-action="respond">提交整改回复</a>
              </div>
            </form>`
        : ""}
      ${historyBlock(notice, { drafting: false })}
      <div class="bk-actions">
        <a class="weui-btn weui-btn_default" href="#/operator">返回列表</a>
      </div>
    </div>`;
  };
  let shown = "";
  let acting = 0; // while the operator's own action runs, its events are not news
  const show = async (fetched) => {
    const notice = await loadInto(ctx.view, () => fetched || api(`/api/v1/notices/${id}`), draw);
    if (!notice) return;
    shown = noticeSignature(notice);
    setTitle(notice.number || "整改通知");
    loadImages(ctx.view);
    const photos = $(ctx.view, "[data-photos]");
    if (photos) picker = photoPicker(photos, { max: 9 });
    $(ctx.view, "[data-action=acknowledge]")?.addEventListener("click", (event) =>
      busy(event.currentTarget, async () => {
        acting += 1;
        try {
          await api(`/api/v1/notices/${id}/acknowledge`, { method: "POST" });
          toast("已签收");
          await show();
        } catch (error) {
          showError(error);
        } finally {
          acting -= 1;
        }
      }),
    );
    const respond = $(ctx.view, "[data-action=respond]");
    respond?.addEventListener("click", () =>
      busy(respond, async () => {
        const text = $(ctx.view, "[name=text]").value.trim();
        if (!text) return showError({ message: "请填写整改情况说明" });
        if (!picker.count() && !(await confirmDialog("没有附照片", "建议附上整改后的照片，确定直接提交吗？", { ok: "提交" }))) {
          return undefined;
        }
        const body = new FormData();
        body.set("text", text);
        for (const file of await picker.files()) body.append("photos", file, file.name);
        acting += 1;
        try {
          await api(`/api/v1/notices/${id}/responses`, { method: "POST", form: body });
          toast("已提交");
          await show();
        } catch (error) {
          showError(error);
        } finally {
          acting -= 1;
        }
        return undefined;
      }),
    );
  };
  await show();
  ctx.cleanup(() => picker?.destroy());
  // The inspector verified or returned it while this page is open (the events of the
  // operator's own actions change nothing already shown).
  ctx.cleanup(
    subscribe("notice.", async (_name, data) => {
      if (!ctx.current || data.notice_id !== id || acting) return;
      const notice = await api(`/api/v1/notices/${id}`).catch(() => null);
      if (notice && ctx.current && !acting && noticeSignature(notice) !== shown) show(notice);
    }),
  );
}

// --- cameras ----------------------------------------------------------------------------------

export async function camerasPage(ctx) {
  setTitle("摄像头状态");
  const centreId = currentUser().centre_id;
  render(
    ctx.view,
    html`<div class="bk-page">
      <h2 class="bk-page__title">摄像头状态</h2>
      <div data-list></div>
    </div>`,
  );
  const list = $(ctx.view, "[data-list]");
  if (!centreId) {
    render(list, emptyState("您的账号未关联托管机构", "请联系管理员"));
    return;
  }
  const load = () =>
    loadInto(
      list,
      () => api(`/api/v1/centres/${centreId}/cameras`),
      (cameras) =>
        cameras.length
          ? html`<div class="weui-cells">
              ${cameras.map(
                (c) => html`<div class="weui-cell" data-camera="${c.id}">
                  <div class="weui-cell__bd">
                    <p class="bk-cell-title">${c.area_name} · ${c.name}</p>
                    <p class="bk-cell-sub">${c.last_frame_at ? `最近画面 ${relativeTime(c.last_frame_at)}` : "尚无画面记录"}
                      ${c.status_changed_at ? ` · 状态更新于 ${formatDateTime(c.status_changed_at)}` : ""}</p>
                  </div>
                  <div class="weui-cell__ft">${tag(CAMERA_STATUS[c.status] || c.status, CAMERA_TONE[c.status])}</div>
                </div>`,
              )}
            </div>
            <div class="weui-cells__tips">摄像头离线或画面异常会影响家长观看和远程巡查，请及时处理。</div>`
          : emptyState("尚未登记摄像头"),
    );
  await load();
  ctx.cleanup(subscribe("camera.status", (_name, data) => ctx.current && data.centre_id === centreId && load()));
}

// --- what parents reported ---------------------------------------------------------------------

export async function concernsPage(ctx) {
  setTitle("家长反映");
  render(
    ctx.view,
    html`<div class="bk-page">
      <h2 class="bk-page__title">家长反映</h2>
      <div data-list></div>
    </div>`,
  );
  const list = $(ctx.view, "[data-list]");
  const load = () =>
    loadInto(
      list,
      () => api("/api/v1/concerns"),
      (concerns) =>
        concerns.length
          ? html`<div class="weui-cells">
              ${concerns.map(
                (c) => html`<div class="weui-cell" data-concern="${c.id}">
                  <div class="weui-cell__bd">
                    <p class="bk-cell-title">${c.text}</p>
                    <p class="bk-cell-sub">${c.reporter?.name || "一位家长"}${c.area_name ? ` · ${c.area_name}` : ""} · ${formatDateTime(c.submitted_at)}</p>
                    ${c.answer ? html`<p class="bk-cell-sub">处理结果：${c.answer}</p>` : ""}
                  </div>
                  <div class="weui-cell__ft">${tag(c.status_label || CONCERN_STATUS[c.status], CONCERN_TONE[c.status])}</div>
                </div>`,
              )}
            </div>
            <div class="weui-cells__tips">家长反映由监管部门受理；匿名反映不显示家长身份。</div>`
          : emptyState("暂无家长反映"),
    );
  await load();
  ctx.cleanup(subscribe("concern.", () => ctx.current && load()));
}
