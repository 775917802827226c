// The inspectors' dashboard (监管看板): centres by status, cameras online now, open and overdue
// notices, the coverage figures regulators report (centres enrolled, by district, cameras by
// state), answers waiting for review, parents' concerns on their legal clocks and the latest
// findings. It updates itself on realtime events: an operator's answer appears here without a
// reload.

import * as echarts from "../../vendor/echarts.mjs";
import { api } from "../api.js";
import { onConnection, subscribe } from "../realtime.js";
import {
  $,
  deadlineCountdown,
  emptyState,
  errorState,
  formatDate,
  formatDateTime,
  html,
  loadingState,
  relativeTime,
  render,
  setTitle,
  tag,
  toast,
} from "../ui.js";
import { CAMERA_STATUS, CENTRE_STATUS, FINDING_CATEGORY, NOTICE_STATUS } from "../labels.js";

const GREEN = "#07c160";
const COLOURS = {
  live: GREEN,
  commissioning: "#10aeff",
  installing: "#576b95",
  invited: "#b2b2b2",
  suspended: "#fa5151",
  online: GREEN,
  offline: "#fa5151",
  stalled: "#ffc300",
  tampered: "#fa9d3b",
  unknown: "#b2b2b2",
};
const NOTICE_COLOURS = {
  issued: "#10aeff",
  acknowledged: "#576b95",
  responded: "#ffc300",
  returned: "#fa9d3b",
  overdue: "#fa5151",
  escalated: "#c9302c",
  verified: GREEN,
};
const FONT = '-apple-system, "PingFang SC", "Noto Sans CJK SC", sans-serif';

function pieOption(counts, labels) {
  const data = Object.entries(labels)
    .filter(([key]) => counts[key])
    .map(([key, name]) => ({ name, value: counts[key], itemStyle: { color: COLOURS[key] } }));
  return {
    animation: false,
    textStyle: { fontFamily: FONT },
    tooltip: { trigger: "item", formatter: "{b}：{c}（{d}%）" },
    legend: { bottom: 0, left: "center", itemWidth: 10, itemHeight: 10, textStyle: { fontSize: 11 } },
    series: [
      {
        type: "pie",
        radius: ["38%", "62%"],
        center: ["50%", "42%"],
        label: { show: true, formatter: "{c}", fontSize: 12 },
        data: data.length ? data : [{ name: "暂无", value: 0, itemStyle: { color: "#e5e5e5" } }],
      },
    ],
  };
}

function noticeOption(counts) {
  const keys = Object.keys(NOTICE_COLOURS);
  return {
    animation: false,
    textStyle: { fontFamily: FONT },
    grid: { left: 8, right: 16, top: 8, bottom: 4, containLabel: true },
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
    xAxis: { type: "value", minInterval: 1, splitLine: { lineStyle: { color: "#f0f0f0" } } },
    yAxis: {
      type: "category",
      inverse: true,
      data: keys.map((k) => NOTICE_STATUS[k]),
      axisLabel: { fontSize: 11 },
      axisTick: { show: false },
    },
    series: [
      {
        type: "bar",
        barMaxWidth: 14,
        label: { show: true, position: "right", fontSize: 11 },
        data: keys.map((k) => ({ value: counts[k] || 0, itemStyle: { color: NOTICE_COLOURS[k] } })),
      },
    ],
  };
}

const total = (counts) => Object.values(counts).reduce((a, b) => a + b, 0);

export async function dashboardPage(ctx) {
  setTitle("监管看板");
  render(
    ctx.view,
    html`<div class="bk-page bk-dashboard">
      <div class="bk-dashboard__head">
        <h2 class="bk-page__title">监管看板</h2>
        <span class="bk-realtime-label" aria-live="polite"></span>
      </div>
      <div data-kpis>${loadingState()}</div>
      <div class="bk-chart-card bk-coverage" data-coverage>${loadingState()}</div>
      <div class="bk-chart-card">
        <p class="bk-chart-card__title">托管机构（按状态）</p>
        <div class="bk-chart" data-chart="centres" role="img" aria-label="托管机构按状态统计图"></div>
      </div>
      <div class="bk-chart-card">
        <p class="bk-chart-card__title">摄像头（当前状态）</p>
        <div class="bk-chart" data-chart="cameras" role="img" aria-label="摄像头状态统计图"></div>
      </div>
      <div class="bk-chart-card">
        <p class="bk-chart-card__title">整改通知（按状态）</p>
        <div class="bk-chart bk-chart_tall" data-chart="notices" role="img" aria-label="整改通知按状态统计图"></div>
      </div>
      <div class="weui-cells__title">待复查的整改回复</div>
      <div data-review></div>
      <div class="weui-cells__title">家长反映 · 办理期限</div>
      <div data-concerns></div>
      <div class="weui-cells__title">最近发现的问题</div>
      <div data-findings></div>
    </div>`,
  );
  const charts = {};
  for (const el of ctx.view.querySelectorAll("[data-chart]")) {
    charts[el.dataset.chart] = echarts.init(el, null, { renderer: "canvas" });
  }
  const onResize = () => Object.values(charts).forEach((chart) => chart.resize());
  window.addEventListener("resize", onResize);
  ctx.cleanup(() => {
    window.removeEventListener("resize", onResize);
    Object.values(charts).forEach((chart) => chart.dispose());
  });

  const drawKpis = (d) => {
    const cameras = total(d.cameras);
    return html`<div class="bk-kpis">
      <div class="bk-kpi"><p class="bk-kpi__value" data-kpi="centres">${total(d.centres)}</p><p class="bk-kpi__label">纳入监管机构</p></div>
      <div class="bk-kpi"><p class="bk-kpi__value" data-kpi="online">${d.cameras.online || 0}<small>/${cameras}</small></p><p class="bk-kpi__label">摄像头在线</p></div>
      <div class="bk-kpi"><p class="bk-kpi__value" data-kpi="open">${d.notices_open}</p><p class="bk-kpi__label">整改中</p></div>
      <div class="bk-kpi${d.notices_overdue ? " bk-kpi_danger" : ""}"><p class="bk-kpi__value" data-kpi="overdue">${d.notices_overdue}</p><p class="bk-kpi__label">逾期</p></div>
    </div>`;
  };

  // 受理 within 7 working days, 办结 within 15: the clock that runs now, overdue ones first.
  const drawConcerns = (d) => {
    if (!d.concerns_open) return emptyState("没有待办的家长反映");
    return html`<p class="bk-dashboard__sum" data-concern-sum>
        待办 <strong data-concerns-open>${d.concerns_open}</strong> 件，其中逾期
        <strong class="${d.concerns_overdue ? "bk-text-danger" : ""}" data-concerns-overdue>${d.concerns_overdue}</strong> 件
      </p>
      <div class="weui-cells">${d.concerns_on_the_clock.map((c) => {
        const countdown = deadlineCountdown(c.due);
        const tone = c.overdue ? "danger" : countdown.tone === "danger" ? "warn" : countdown.tone;
        return html`<a class="weui-cell weui-cell_access bk-concern-cell${c.overdue ? " bk-concern-cell_overdue" : ""}" href="#/inspector/concern/${c.id}" data-clock-concern="${c.id}" data-overdue="${c.overdue ? "true" : "false"}">
          <div class="weui-cell__bd">
            <p class="bk-cell-title bk-ellipsis">${c.centre_name}${c.area_name ? ` · ${c.area_name}` : ""}</p>
            <p class="bk-cell-sub bk-ellipsis">${c.text}</p>
            <p class="bk-cell-sub bk-concern-clock${c.overdue ? " bk-concern-clock_overdue" : ""}" data-clock>${c.clock_label} ${formatDate(c.due)}${c.deadline_provisional ? "（暂定）" : ""}</p>
          </div>
          <div class="weui-cell__ft">${tag(countdown.text, tone)}</div>
        </a>`;
      })}</div>`;
  };

  const loadSummary = async () => {
    try {
      const d = await api("/api/v1/dashboard");
      if (!ctx.current) return;
      render($(ctx.view, "[data-kpis]"), drawKpis(d));
      charts.centres.setOption(pieOption(d.centres, CENTRE_STATUS), true);
      charts.cameras.setOption(pieOption(d.cameras, CAMERA_STATUS), true);
      charts.notices.setOption(noticeOption(d.notices), true);
      render($(ctx.view, "[data-concerns]"), drawConcerns(d));
      render(
        $(ctx.view, "[data-findings]"),
        d.recent_findings.length
          ? html`<div class="weui-cells">${d.recent_findings.map(
              (f) => html`<div class="weui-cell" data-recent-finding="${f.id}">
                <div class="weui-cell__bd">
                  <p class="bk-ellipsis">${f.description}</p>
                  <p class="bk-cell-sub">${f.centre_name}${f.area_name ? ` · ${f.area_name}` : ""} · ${FINDING_CATEGORY[f.category] || f.category}</p>
                </div>
                <div class="weui-cell__ft bk-cell-sub">${relativeTime(f.recorded_at)}</div>
              </div>`,
            )}</div>`
          : emptyState("近期没有发现问题"),
      );
      ctx.view.querySelector(".bk-dashboard").dataset.loaded = "true";
    } catch (error) {
      if (!ctx.current) return;
      render($(ctx.view, "[data-kpis]"), errorState(error));
      render($(ctx.view, "[data-concerns]"), ""); // drawn again by a successful retry
      $(ctx.view, "[data-kpis] [data-action=retry]")?.addEventListener("click", loadSummary);
    }
  };

  // The figures regulators report ("已接入 35 家"): from /coverage, which the summary lacks.
  const drawCoverage = (c) => {
    const districts = Object.values(c.centres.by_district);
    const cameras = ["online", "offline", "stalled", "tampered"].filter(
      (key) => key !== "tampered" || c.cameras[key],
    );
    return html`<p class="bk-coverage__headline">已接入 <strong data-coverage="enrolled">${c.centres.enrolled}</strong> 家</p>
      <p class="bk-cell-sub">现已上线 <span data-coverage="live">${c.centres.by_status.live}</span> 家 · 纳入监管 ${c.centres.total} 家${c.mean_days_to_commission !== null ? ` · 平均 ${c.mean_days_to_commission} 天完成调试` : ""}</p>
      ${districts.length
        ? html`<table class="bk-coverage__table">
            <thead><tr><th>辖区</th><th>已上线</th><th>纳入监管</th></tr></thead>
            <tbody>${districts.map(
              (d) => html`<tr data-district="${d.name}"><td>${d.name}</td><td data-live>${d.by_status.live || 0}</td><td data-total>${d.total}</td></tr>`,
            )}</tbody>
          </table>`
        : ""}
      <p class="bk-coverage__cameras">摄像头：${cameras.map(
        (key, i) => html`${i ? " · " : ""}${CAMERA_STATUS[key]} <strong data-camera-count="${key}">${c.cameras[key]}</strong>`,
      )}</p>`;
  };

  const loadCoverage = async () => {
    const box = $(ctx.view, "[data-coverage]");
    try {
      const coverage = await api("/api/v1/coverage");
      if (!ctx.current) return;
      render(box, drawCoverage(coverage));
      box.dataset.loaded = "true";
    } catch (error) {
      if (!ctx.current) return;
      render(box, errorState(error));
      $(box, "[data-action=retry]")?.addEventListener("click", loadCoverage);
    }
  };

  const loadReview = async () => {
    const box = $(ctx.view, "[data-review]");
    try {
      const notices = (await api("/api/v1/notices", { query: { open: "true" } })).filter(
        (n) => n.status === "responded",
      );
      if (!ctx.current) return;
      render(
        box,
        notices.length
          ? html`<div class="weui-cells">${notices.map(
              (n) => html`<a class="weui-cell weui-cell_access" href="#/inspector/notice/${n.id}" data-review-notice="${n.id}">
                <div class="weui-cell__bd">
                  <p class="bk-cell-title">${n.number}</p>
                  <p class="bk-cell-sub">回复于 ${formatDateTime(n.responded_at)}</p>
                </div>
                <div class="weui-cell__ft">${tag("待复查", "warn")}</div>
              </a>`,
            )}</div>`
          : emptyState("没有待复查的回复"),
      );
    } catch (error) {
      if (ctx.current) render(box, errorState(error, { retry: false }));
    }
  };

  render($(ctx.view, "[data-review]"), loadingState());
  render($(ctx.view, "[data-concerns]"), loadingState());
  await Promise.all([loadSummary(), loadCoverage(), loadReview()]);

  // Several events often arrive together (an answer also moves counts): coalesce reloads.
  let pending = null;
  const reload = () => {
    clearTimeout(pending);
    pending = setTimeout(() => {
      if (!ctx.current) return;
      loadSummary();
      loadCoverage();
      loadReview();
    }, 250);
  };
  ctx.cleanup(() => clearTimeout(pending));
  ctx.cleanup(
    subscribe("notice.", (name, data) => {
      if (name === "notice.responded") toast(`收到整改回复：${data.number || ""}`, { icon: "text", ms: 2500 });
      reload();
    }),
  );
  ctx.cleanup(subscribe("camera.status", reload));
  ctx.cleanup(subscribe("patrol.finding_recorded", reload));
  ctx.cleanup(subscribe("centre.", reload));
  ctx.cleanup(subscribe("concern.", reload));
  let wasConnected = null;
  ctx.cleanup(
    onConnection((connected) => {
      // Events missed while disconnected: catch up once the connection is back.
      if (connected && wasConnected === false) reload();
      wasConnected = connected;
    }),
  );
}
