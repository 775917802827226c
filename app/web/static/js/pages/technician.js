// Technicians (技术人员): the centres assigned to them and a centre's commissioning checklist —
// the automatic probe results, evidence for the manual items, and the sign-off that takes the
// centre live once every required item has passed.

import { api } from "../api.js";
import { CENTRE_STATUS } from "../labels.js";
import { photoPicker } from "../photos.js";
import {
  $,
  busy,
  emptyState,
  errorState,
  formatDateTime,
  html,
  loadInto,
  loadingState,
  render,
  setTitle,
  showError,
  tag,
  toast,
} from "../ui.js";

export async function technicianPage(ctx) {
  setTitle("安装调试");
  render(
    ctx.view,
    html`<div class="bk-page">
      <h2 class="bk-page__title">指派给我的托管机构</h2>
      <div data-list></div>
    </div>`,
  );
  await loadInto(
    $(ctx.view, "[data-list]"),
    () => api("/api/v1/centres"),
    (centres) =>
      centres.length
        ? html`<div class="weui-cells">
            ${centres.map(
              (c) => html`<a class="weui-cell weui-cell_access" href="#/technician/centre/${c.id}" data-centre="${c.id}">
                <div class="weui-cell__bd">
                  <p class="bk-cell-title">${c.name}</p>
                  <p class="bk-cell-sub bk-ellipsis">${c.address || c.district} · ${c.areas.length} 个区域</p>
                </div>
                <div class="weui-cell__ft">${tag(CENTRE_STATUS[c.status] || c.status, c.status === "live" ? "ok" : "info")}</div>
              </a>`,
            )}
          </div>`
        : emptyState("暂无指派的托管机构"),
  );
}

function resultTag(item) {
  if (item.passed === true) return tag("通过", "ok");
  if (item.passed === false) return tag("未通过", "danger");
  return tag("待检查", "plain");
}

export async function checklistPage(ctx) {
  const centreId = Number(ctx.params.id);
  setTitle("安装调试");
  render(ctx.view, loadingState());
  let centre;
  try {
    centre = await api(`/api/v1/centres/${centreId}`);
  } catch (error) {
    render(ctx.view, errorState(error, { retry: false }));
    return;
  }
  if (!ctx.current) return;
  setTitle(centre.name);
  render(
    ctx.view,
    html`<div class="bk-page">
      <h2 class="bk-page__title">${centre.name}</h2>
      <p class="bk-page__desc">${CENTRE_STATUS[centre.status] || centre.status} · ${centre.address || centre.district}</p>
      <div data-checklist></div>
    </div>`,
  );
  const box = $(ctx.view, "[data-checklist]");
  const pickers = [];
  const draw = (list) => {
    pickers.splice(0).forEach((p) => p.destroy());
    return html`
      <div class="bk-banner${list.ready ? " bk-banner_ok" : ""}">
        ${list.signed_off_at
          ? `已于 ${formatDateTime(list.signed_off_at)} 签字验收`
          : list.ready
            ? "所有必检项目均已通过，可以签字验收"
            : `还有 ${list.blocking.length} 项必检项目未通过`}
      </div>
      <div class="bk-actions bk-actions_row">
        <a role="button" href="javascript:" class="weui-btn weui-btn_default" data-action="probe">运行自动检测</a>
        <a role="button" href="javascript:" class="weui-btn weui-btn_primary${list.ready && !list.signed_off_at ? "" : " weui-btn_disabled"}" data-action="sign-off">签字验收</a>
      </div>
      <div class="weui-cells__title">检查项目（标准 ${list.standard_version}）</div>
      <div class="weui-cells">
        ${list.items.map(
          (item) => html`<div class="weui-cell bk-check-item" data-item="${item.item_id}" data-kind="${item.kind}">
            <div class="weui-cell__bd">
              <p class="bk-cell-title">${item.title}${item.required ? "" : html` <span class="bk-muted">（选检）</span>`}</p>
              <p class="bk-cell-sub">${item.kind === "automatic" ? "自动检测" : "人工核验"}${item.checked_at ? ` · ${formatDateTime(item.checked_at)}` : ""}</p>
              ${item.detail ? html`<p class="bk-cell-sub">${item.detail}</p>` : ""}
              ${item.note ? html`<p class="bk-cell-sub">说明：${item.note}</p>` : ""}
              ${item.kind === "manual" && !list.signed_off_at
                ? html`<a role="button" href="javascript:" class="weui-btn weui-btn_mini weui-btn_default bk-check-item__btn" data-action="evidence">上传佐证</a>
                    <div data-evidence hidden>
                      <textarea class="weui-textarea" name="note" rows="2" maxlength="2000" placeholder="说明（可选）"></textarea>
                      <div data-photos></div>
                      <a role="button" href="javascript:" class="weui-btn weui-btn_mini weui-btn_primary" data-action="save-evidence">提交</a>
                    </div>`
                : ""}
            </div>
            <div class="weui-cell__ft">${resultTag(item)}</div>
          </div>`,
        )}
      </div>`;
  };
  const startable = centre.status === "installing" || centre.status === "invited";
  const load = () =>
    loadInto(
      box,
      () =>
        api(`/api/v1/centres/${centreId}/checklist`).catch((error) => {
          if (error.status === 404 || error.status === 409) return null;
          throw error;
        }),
      (list) =>
        list
          ? draw(list)
          : html`${emptyState("尚未开始调试", "安装完成后开始调试，系统将逐项检查摄像头")}
              ${startable
                ? html`<div class="bk-actions"><a role="button" href="javascript:" class="weui-btn weui-btn_primary" data-action="start">开始调试</a></div>`
                : ""}`,
    );
  await load();
  ctx.cleanup(() => pickers.forEach((p) => p.destroy()));

  const run = (button, work, done) =>
    busy(button, async () => {
      try {
        await work();
        toast(done);
        await load();
      } catch (error) {
        showError(error);
      }
    });
  ctx.listen(ctx.view, "click", (event) => {
    const button = event.target.closest("[data-action]");
    if (!button || button.classList.contains("weui-btn_disabled")) return;
    const item = button.closest("[data-item]");
    switch (button.dataset.action) {
      case "start":
        run(button, () => api(`/api/v1/centres/${centreId}/commissioning`, { method: "POST" }), "已开始调试");
        break;
      case "probe":
        run(button, () => api(`/api/v1/centres/${centreId}/checklist/automatic`, { method: "POST" }), "检测完成");
        break;
      case "sign-off":
        run(button, () => api(`/api/v1/centres/${centreId}/sign-off`, { method: "POST" }), "已签字验收");
        break;
      case "evidence": {
        const form = $(item, "[data-evidence]");
        form.hidden = !form.hidden;
        if (!form.hidden && !form.dataset.ready) {
          form.dataset.ready = "true";
          const picker = photoPicker($(form, "[data-photos]"), { max: 9 });
          pickers.push(picker);
          form.picker = picker;
        }
        break;
      }
      case "save-evidence": {
        const form = $(item, "[data-evidence]");
        run(
          button,
          async () => {
            const body = new FormData();
            body.set("note", form.querySelector("[name=note]").value.trim());
            for (const file of await form.picker.files()) body.append("photos", file, file.name);
            await api(`/api/v1/centres/${centreId}/checklist/items/${item.dataset.item}`, {
              method: "POST",
              form: body,
            });
          },
          "已提交",
        );
        break;
      }
      default:
        break;
    }
  });
}
