// Technicians (技术人员): the centres assigned to them, the cameras they register room by room,
// and a centre's commissioning checklist — the automatic probe results, evidence for the manual
// items, and the sign-off that takes the centre live once every required item has passed.

import { api } from "../api.js";
import { CAMERA_STATUS, CAMERA_TONE, CENTRE_STATUS } from "../labels.js";
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

// Why an item passed or not, from the result's detail: the rooms still without a camera, the
// cameras that failed (with what was measured), the photos given as evidence.
function itemDetail(item, cameras) {
  const detail = item.detail;
  if (!detail) return "";
  if (detail.error) return detail.error;
  if (detail.missing) return detail.missing.length ? `缺少：${detail.missing.join("、")}` : "四个区域均已安装";
  if (detail.photos !== undefined) return detail.photos ? `照片 ${detail.photos} 张` : "";
  if (detail.cameras) {
    const name = (id) => {
      const camera = cameras.find((c) => String(c.id) === id);
      if (!camera) return `摄像头 ${id}`;
      return camera.name.includes(camera.area_name) ? camera.name : `${camera.area_name}·${camera.name}`;
    };
    const failed = Object.entries(detail.cameras).filter(([, r]) =>
      typeof r === "string" ? r !== "online" : !r.passed,
    );
    if (!failed.length) return `${Object.keys(detail.cameras).length} 路摄像头均通过`;
    return `未通过：${failed
      .map(([id, r]) => {
        const value = typeof r === "string" ? CAMERA_STATUS[r] || r : r.value;
        return value === null || value === undefined || value === "" ? name(id) : `${name(id)}（${value}）`;
      })
      .join("；")}`;
  }
  return "";
}

// What the last probe measured, in a technician's words.
function probeSummary(probe) {
  if (!probe) return "尚未检测";
  if (!probe.reachable) return "检测时无法连接";
  const parts = [];
  if (probe.codec) parts.push(probe.codec === "h264" ? "H.264" : probe.codec.toUpperCase());
  if (probe.width && probe.height) parts.push(`${probe.width}×${probe.height}`);
  if (probe.fps) parts.push(`${probe.fps} 帧/秒`);
  if (probe.keyframe_interval) parts.push(`关键帧间隔 ${probe.keyframe_interval} 秒`);
  return parts.join(" · ") || "已连接";
}

function cameraForm() {
  return html`<div class="weui-cells weui-cells_form bk-camera-form" data-camera-form hidden>
    <label class="weui-cell weui-cell_active">
      <div class="weui-cell__hd"><span class="weui-label">名称</span></div>
      <div class="weui-cell__bd"><input class="weui-input" name="name" maxlength="64" placeholder="可不填，默认用区域名称"></div>
    </label>
    <label class="weui-cell weui-cell_active">
      <div class="weui-cell__hd"><span class="weui-label">视频流地址</span></div>
      <div class="weui-cell__bd"><input class="weui-input" name="rtsp_url" type="url" inputmode="url" autocomplete="off" autocapitalize="off" spellcheck="false" maxlength="480" placeholder="rtsp://用户名:密码@IP:554/路径"></div>
    </label>
    <div class="weui-cell"><div class="weui-cell__bd bk-cell-sub">地址中的用户名和密码加密保存，保存后不再显示。</div></div>
    <div class="bk-actions bk-actions_row">
      <a role="button" href="javascript:" class="weui-btn weui-btn_mini weui-btn_default" data-action="camera-cancel">取消</a>
      <a role="button" href="javascript:" class="weui-btn weui-btn_mini weui-btn_primary" data-action="camera-save">保存</a>
    </div>
  </div>`;
}

function cameraSection(centre, cameras) {
  return html`<div class="weui-cells__title">摄像头（每个区域至少一路）</div>
    ${centre.areas.map((area) => {
      const here = cameras.filter((c) => c.area_id === area.id);
      return html`<div class="weui-cells bk-camera-area" data-area="${area.id}">
        <div class="weui-cell">
          <div class="weui-cell__bd"><p class="bk-cell-title">${area.name}</p></div>
          <div class="weui-cell__ft">${here.length ? "" : tag("未登记", "danger")}</div>
        </div>
        ${here.map(
          (c) => html`<div class="weui-cell" data-camera="${c.id}">
            <div class="weui-cell__bd">
              <p class="bk-cell-title">${c.name}${c.enabled ? "" : html` <span class="bk-muted">（已停用）</span>`}</p>
              <p class="bk-cell-sub bk-break" data-address>${c.address}</p>
              <p class="bk-cell-sub" data-probe>${probeSummary(c.probe)}</p>
              <a role="button" href="javascript:" class="weui-btn weui-btn_mini weui-btn_default bk-check-item__btn" data-action="camera-edit">修改地址</a>
              <a role="button" href="javascript:" class="weui-btn weui-btn_mini weui-btn_default bk-check-item__btn" data-action="camera-toggle">${c.enabled ? "停用" : "启用"}</a>
            </div>
            <div class="weui-cell__ft">${tag(CAMERA_STATUS[c.status] || c.status, CAMERA_TONE[c.status])}</div>
          </div>`,
        )}
        <div class="weui-cell">
          <div class="weui-cell__bd">
            <a role="button" href="javascript:" class="weui-btn weui-btn_mini weui-btn_primary" data-action="camera-add">登记摄像头</a>
          </div>
        </div>
        ${cameraForm()}
      </div>`;
    })}`;
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
      <p class="bk-page__desc"><span data-centre-status="${centre.status}">${CENTRE_STATUS[centre.status] || centre.status}</span> · ${centre.address || centre.district}</p>
      <div data-cameras></div>
      <div data-checklist></div>
    </div>`,
  );
  const box = $(ctx.view, "[data-checklist]");
  const pickers = [];
  let cameras = [];
  // Signing when items still fail is allowed to reach the server: its refusal names them.
  const draw = (list) => {
    pickers.splice(0).forEach((p) => p.destroy());
    return html`
      <div class="bk-banner${list.ready ? " bk-banner_ok" : ""}" data-banner>
        ${list.signed_off_at
          ? `已于 ${formatDateTime(list.signed_off_at)} 签字验收`
          : list.ready
            ? "所有必检项目均已通过，可以签字验收"
            : `还有 ${list.blocking.length} 项必检项目未通过：${list.blocking.join("、")}`}
      </div>
      <div class="bk-actions bk-actions_row">
        <a role="button" href="javascript:" class="weui-btn weui-btn_default" data-action="probe">运行自动检测</a>
        <a role="button" href="javascript:" class="weui-btn weui-btn_primary${list.signed_off_at ? " weui-btn_disabled" : ""}" data-action="sign-off">签字验收</a>
      </div>
      <div class="weui-cells__title">检查项目（标准 ${list.standard_version}）</div>
      <div class="weui-cells">
        ${list.items.map(
          (item) => html`<div class="weui-cell bk-check-item" data-item="${item.item_id}" data-kind="${item.kind}">
            <div class="weui-cell__bd">
              <p class="bk-cell-title">${item.title}${item.required ? "" : html` <span class="bk-muted">（选检）</span>`}</p>
              <p class="bk-cell-sub">${item.kind === "automatic" ? "自动检测" : "人工核验"}${item.checked_at ? ` · ${formatDateTime(item.checked_at)}` : ""}</p>
              ${itemDetail(item, cameras) ? html`<p class="bk-cell-sub" data-detail>${itemDetail(item, cameras)}</p>` : ""}
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
  const loadCameras = () =>
    loadInto(
      $(ctx.view, "[data-cameras]"),
      () => api(`/api/v1/centres/${centreId}/camera-setup`),
      (rows) => {
        cameras = rows;
        return cameraSection(centre, rows);
      },
    );
  const loadChecklist = () =>
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
  // The centre's state in the heading: signing off takes it live.
  const loadCentre = async () => {
    try {
      centre = await api(`/api/v1/centres/${centreId}`);
    } catch {
      return; // the heading keeps the state it shows
    }
    const state = $(ctx.view, "[data-centre-status]");
    if (!ctx.current || !state) return;
    state.dataset.centreStatus = centre.status;
    state.textContent = CENTRE_STATUS[centre.status] || centre.status;
  };
  // The checklist names cameras: drawn once they are known.
  const load = () => Promise.all([loadCameras().then(loadChecklist), loadCentre()]);
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
    const area = button.closest("[data-area]");
    const form = area && $(area, "[data-camera-form]");
    switch (button.dataset.action) {
      case "camera-add":
      case "camera-edit": {
        const camera = button.closest("[data-camera]");
        form.dataset.editing = camera ? camera.dataset.camera : "";
        form.querySelector("[name=name]").value = camera
          ? camera.querySelector(".bk-cell-title").firstChild.textContent.trim()
          : "";
        form.querySelector("[name=rtsp_url]").value = "";
        form.hidden = false;
        form.querySelector("[name=rtsp_url]").focus();
        break;
      }
      case "camera-cancel":
        form.hidden = true;
        break;
      case "camera-save": {
        const name = form.querySelector("[name=name]").value.trim();
        const url = form.querySelector("[name=rtsp_url]").value.trim();
        if (!url) {
          showError({ message: "请填写视频流地址" });
          break;
        }
        const cameraId = form.dataset.editing;
        run(
          button,
          () =>
            cameraId
              ? api(`/api/v1/cameras/${cameraId}`, {
                  method: "PATCH",
                  json: { rtsp_url: url, ...(name ? { name } : {}) },
                })
              : api(`/api/v1/centres/${centreId}/cameras`, {
                  method: "POST",
                  json: { area_id: Number(area.dataset.area), name, rtsp_url: url },
                }),
          "已保存",
        );
        break;
      }
      case "camera-toggle": {
        const camera = button.closest("[data-camera]");
        const enable = button.textContent.trim() === "启用";
        run(
          button,
          () => api(`/api/v1/cameras/${camera.dataset.camera}`, { method: "PATCH", json: { enabled: enable } }),
          enable ? "已启用" : "已停用",
        );
        break;
      }
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
        const evidence = $(item, "[data-evidence]");
        evidence.hidden = !evidence.hidden;
        if (!evidence.hidden && !evidence.dataset.ready) {
          evidence.dataset.ready = "true";
          const picker = photoPicker($(evidence, "[data-photos]"), { max: 9 });
          pickers.push(picker);
          evidence.picker = picker;
        }
        break;
      }
      case "save-evidence": {
        const evidence = $(item, "[data-evidence]");
        run(
          button,
          async () => {
            const body = new FormData();
            body.set("note", evidence.querySelector("[name=note]").value.trim());
            for (const file of await evidence.picker.files()) body.append("photos", file, file.name);
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
