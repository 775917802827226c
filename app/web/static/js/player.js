// The live player (后厨直播). hls.js where Media Source Extensions exist (Android WeChat, desktop
// browsers); the browser's own HLS where it plays it without MSE (iOS WeChat). It asks the
// watch API for a short-lived signed playlist URL, renews it before it expires (which also
// keeps the viewer's lease, so the camera's stream keeps running), shows the measured delay,
// and retries by itself after network errors, a stream still starting or a stalled picture.
// A refusal (outside the meal window, room not shown, centre suspended) is shown as a state
// with the API's own message; outside the window it checks again now and then. A camera the
// supervisor reports offline (or stalled) is not played at all: the player says so, with when
// the last picture came, asks again now and then (which also keeps the viewer's lease, so the
// supervisor keeps reconnecting) and plays as soon as the camera is back.

import Hls from "../vendor/hls.mjs";
import { api } from "./api.js";
import { CAMERA_STATUS } from "./labels.js";
import { formatDateTime, html, render, $ } from "./ui.js";

const POSTER = "/assets/img/poster.svg";
const RENEW_EVERY_MS = 60_000; // the server's lease is 90 s: renew well inside it
const RENEW_BEFORE_EXPIRY_MS = 45_000;
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 15_000;
const CLOSED_RECHECK_MS = 60_000;
const STARTING_POLL_MS = 1_000;
const STARTING_POLLS = 30;
const STALL_MS = 12_000;
const TOKEN_IN_PATH = /\/hls\/[^/]+\//;
// Camera states in which there is no live picture to fetch (the supervisor is reconnecting).
const CAMERA_DOWN = new Set(["offline", "stalled"]);
// States a change of the camera's status may interrupt (not a refusal, nor a tap to play).
const INTERRUPTIBLE = new Set(["starting", "playing", "buffering", "waiting_stream", "error"]);

const MESSAGES = {
  starting: "正在连接直播…",
  buffering: "网络缓冲中…",
  waiting_stream: "直播正在启动，请稍候…",
  offline: "摄像头离线，正在重试…",
  error: "播放中断，正在重试…",
  unsupported: "当前浏览器无法播放直播，请在微信中打开",
  tap: "点击播放",
};

export function nativeHlsPlayable(video) {
  return Boolean(video.canPlayType("application/vnd.apple.mpegurl"));
}

export class LivePlayer {
  // options: {compact: bool (patrol grid), onState(state, detail)}
  constructor(container, cameraId, options = {}) {
    this.container = container;
    this.cameraId = cameraId;
    this.options = options;
    this.hls = null;
    this.url = null;
    this.expiresAt = 0;
    this.timers = new Set();
    this.retryDelay = RETRY_MIN_MS;
    this.destroyed = false;
    this.state = null;
    this.lastTime = 0;
    this.lastProgressAt = 0;
    this.mode = null; // "hls.js" | "native"
    this.startingPolls = 0;
    this.build();
  }

  build() {
    render(
      this.container,
      html`<div class="bk-player${this.options.compact ? " bk-player_compact" : ""}" data-state="starting">
        <video class="bk-player__video" muted autoplay playsinline webkit-playsinline
          x5-playsinline x5-video-player-type="h5-page" x-webkit-airplay="allow"
          disablepictureinpicture preload="auto" poster="${POSTER}"></video>
        <div class="bk-player__overlay" role="status">
          <i class="weui-loading bk-player__spinner" aria-hidden="true"></i>
          <p class="bk-player__message">${MESSAGES.starting}</p>
          <a role="button" href="javascript:" class="weui-btn weui-btn_mini weui-btn_primary bk-player__action" hidden></a>
        </div>
        <div class="bk-player__bar">
          <span class="bk-player__live" aria-label="直播中">直播</span>
          <span class="bk-player__delay" data-delay></span>
          ${this.options.compact
            ? ""
            : html`<a role="button" href="javascript:" class="bk-player__full" aria-label="全屏">全屏</a>`}
        </div>
      </div>`,
    );
    this.root = $(this.container, ".bk-player");
    this.video = $(this.root, "video");
    this.overlayText = $(this.root, ".bk-player__message");
    this.action = $(this.root, ".bk-player__action");
    this.delayEl = $(this.root, "[data-delay]");
    // x5 and WebKit read these as attributes; set the boolean ones as properties too.
    this.video.muted = true;
    this.video.playsInline = true;
    this.onEvent = (event) => this.handleVideoEvent(event);
    for (const name of ["playing", "waiting", "stalled", "error", "timeupdate", "pause"]) {
      this.video.addEventListener(name, this.onEvent);
    }
    this.action.addEventListener("click", () => this.onAction?.());
    $(this.root, ".bk-player__full")?.addEventListener("click", () => this.fullscreen());
    // WeChat on iOS allows playback to start once its JS bridge is ready.
    this.onBridge = () => this.video.play().catch(() => {});
    document.addEventListener("WeixinJSBridgeReady", this.onBridge);
  }

  setState(state, message = MESSAGES[state], action = null) {
    if (this.destroyed) return;
    this.state = state;
    this.root.dataset.state = state;
    this.overlayText.textContent = message || "";
    if (action) {
      this.action.textContent = action.label;
      this.action.hidden = false;
      this.onAction = action.run;
    } else {
      this.action.hidden = true;
      this.onAction = null;
    }
    this.options.onState?.(state, { message });
  }

  later(fn, ms) {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!this.destroyed) fn();
    }, ms);
    this.timers.add(timer);
    return timer;
  }

  clearTimers() {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    clearInterval(this.watchdog);
    this.watchdog = null;
  }

  async start() {
    // While the camera is down the overlay keeps saying so between attempts.
    if (this.state !== "offline") this.setState("starting");
    const grant = await this.requestGrant();
    if (!grant || this.destroyed) return;
    if (CAMERA_DOWN.has(this.cameraStatus)) this.cameraDown();
    else this.attach();
  }

  // "摄像头离线，正在重试…（最后画面 05/12 11:42）": the camera's own status, not a guess from
  // a missing playlist.
  cameraDownMessage() {
    const label = CAMERA_STATUS[this.cameraStatus] || CAMERA_STATUS.offline;
    const last = this.lastFrameAt ? `（最后画面 ${formatDateTime(this.lastFrameAt)}）` : "";
    return `摄像头${label}，正在重试…${last}`;
  }

  cameraDown() {
    this.retry(this.cameraDownMessage(), "offline");
  }

  // The camera's status as the server publishes it (Socket.IO camera.status): stop showing a
  // picture that is no longer coming, or start again at once when the camera is back.
  cameraStatusChanged(status, lastFrameAt) {
    if (this.destroyed) return;
    this.cameraStatus = status;
    if (lastFrameAt !== undefined) this.lastFrameAt = lastFrameAt;
    if (CAMERA_DOWN.has(status)) {
      if (INTERRUPTIBLE.has(this.state)) this.cameraDown();
      else if (this.state === "offline") this.overlayText.textContent = this.cameraDownMessage();
    } else if (status === "online" && ["offline", "error", "waiting_stream"].includes(this.state)) {
      this.retryDelay = RETRY_MIN_MS;
      this.restart();
    }
  }

  // POST /cameras/<id>/watch. Returns the grant, or null after showing why not.
  async requestGrant() {
    try {
      const grant = await api(`/api/v1/cameras/${this.cameraId}/watch`, { method: "POST" });
      this.url = grant.url;
      this.expiresAt = Date.parse(grant.expires_at);
      this.cameraStatus = grant.status;
      this.lastFrameAt = grant.last_frame_at;
      this.scheduleRenewal();
      return grant;
    } catch (error) {
      if (this.destroyed) return null;
      if (error.status === 403 && error.reason === "outside_meal_window") {
        this.setState("closed", error.message);
        this.later(() => this.restart(), CLOSED_RECHECK_MS);
      } else if (error.status === 403 || error.status === 404) {
        // Not this user's to watch (scope, room not shown, suspended): no point retrying.
        this.setState("refused", error.message);
      } else if (error.status === 401) {
        this.setState("refused", error.message);
      } else {
        this.retry(error.message || MESSAGES.error);
      }
      return null;
    }
  }

  scheduleRenewal() {
    clearTimeout(this.renewTimer);
    this.timers.delete(this.renewTimer);
    const untilExpiry = this.expiresAt - Date.now() - RENEW_BEFORE_EXPIRY_MS;
    this.renewTimer = this.later(() => this.renew(), Math.max(5_000, Math.min(RENEW_EVERY_MS, untilExpiry)));
  }

  // A new signed URL before the old one expires. hls.js keeps playing: its requests are
  // re-addressed to the newest token (xhrSetup). Native playback must switch the source, so
  // it does that only when the old token is about to lapse.
  async renew() {
    const previousUrl = this.url;
    const previousExpiry = this.expiresAt;
    try {
      const grant = await api(`/api/v1/cameras/${this.cameraId}/watch`, { method: "POST" });
      if (this.destroyed) return;
      this.url = grant.url;
      this.expiresAt = Date.parse(grant.expires_at);
      this.cameraStatus = grant.status;
      this.lastFrameAt = grant.last_frame_at;
      this.scheduleRenewal();
      if (this.mode === "native" && previousExpiry - Date.now() < 2 * RENEW_BEFORE_EXPIRY_MS) {
        this.video.src = this.url;
        this.video.play().catch(() => {});
      }
      this.root.dataset.renewals = String(Number(this.root.dataset.renewals || 0) + 1);
    } catch (error) {
      if (this.destroyed) return;
      if (error.status === 403 && error.reason === "outside_meal_window") {
        // The window closed while watching.
        this.detach();
        this.setState("closed", error.message);
        this.later(() => this.restart(), CLOSED_RECHECK_MS);
      } else if (error.status === 403 || error.status === 404) {
        this.detach();
        this.setState("refused", error.message);
      } else {
        this.url = previousUrl;
        this.renewTimer = this.later(() => this.renew(), 5_000);
      }
    }
  }

  withCurrentToken(url) {
    if (!this.url) return url;
    const token = this.url.match(TOKEN_IN_PATH);
    return token ? url.replace(TOKEN_IN_PATH, token[0]) : url;
  }

  attach() {
    this.detach();
    const video = this.video;
    if (Hls.isSupported()) {
      this.mode = "hls.js";
      const hls = new Hls({
        // Live camera: stay near the edge, do not let the buffer grow into minutes of delay.
        liveSyncDurationCount: 2,
        liveMaxLatencyDurationCount: 6,
        maxLiveSyncPlaybackRate: 1.2,
        backBufferLength: 10,
        maxBufferLength: 10,
        enableWorker: true,
        xhrSetup: (xhr, url) => {
          const current = this.withCurrentToken(url);
          if (current !== url) xhr.open("GET", current, true);
        },
      });
      this.hls = hls;
      hls.on(Hls.Events.ERROR, (_event, data) => this.handleHlsError(data));
      hls.on(Hls.Events.MANIFEST_PARSED, () => this.play());
      hls.loadSource(this.url);
      hls.attachMedia(video);
    } else if (nativeHlsPlayable(video)) {
      this.mode = "native";
      video.src = this.url;
      this.play();
    } else {
      this.mode = null;
      this.setState("unsupported");
      return;
    }
    this.root.dataset.mode = this.mode;
    this.lastProgressAt = Date.now();
    this.watchdog = setInterval(() => this.checkProgress(), 2_000);
  }

  detach() {
    clearInterval(this.watchdog);
    this.watchdog = null;
    // No picture, no delay to show.
    this.delayEl.textContent = "";
    delete this.root.dataset.delay;
    if (this.hls) {
      this.hls.destroy();
      this.hls = null;
    }
    if (this.video.getAttribute("src")) {
      this.video.removeAttribute("src");
      this.video.load();
    }
  }

  play() {
    const attempt = this.video.play();
    if (attempt && attempt.catch) {
      attempt.catch((error) => {
        if (error?.name === "NotAllowedError") {
          this.setState("tap", MESSAGES.tap, {
            label: "播放",
            run: () => this.video.play().catch(() => {}),
          });
        }
      });
    }
  }

  handleHlsError(data) {
    if (!data.fatal || this.destroyed) return;
    const code = data.response?.code;
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
      this.hls.recoverMediaError();
      return;
    }
    if (code === 403) {
      // The signed URL expired (the phone slept through a renewal): ask for a new one.
      this.restart();
    } else if (CAMERA_DOWN.has(this.cameraStatus)) {
      // No playlist (or a dead one) because the camera is down, not because it is starting.
      this.cameraDown();
    } else if (code === 404) {
      // The camera's stream is starting (its playlist is not written yet). The retry asks the
      // watch API again, which says whether the camera has gone offline meanwhile.
      this.retry(MESSAGES.waiting_stream, "waiting_stream");
    } else {
      this.retry(MESSAGES.error);
    }
  }

  handleVideoEvent(event) {
    if (this.destroyed) return;
    switch (event.type) {
      case "playing":
        this.retryDelay = RETRY_MIN_MS;
        this.startingPolls = 0;
        this.lastProgressAt = Date.now();
        this.setState("playing", "");
        break;
      case "waiting":
      case "stalled":
        if (this.state === "playing") this.setState("buffering");
        break;
      case "timeupdate":
        if (this.video.currentTime !== this.lastTime) {
          this.lastTime = this.video.currentTime;
          this.lastProgressAt = Date.now();
          if (this.state === "buffering") this.setState("playing", "");
        }
        this.showDelay();
        break;
      case "error":
        if (this.mode === "native") this.retry(MESSAGES.error);
        break;
      default:
        break;
    }
  }

  // The picture has not moved for a while although we are trying to play: start over.
  checkProgress() {
    if (this.destroyed || !["playing", "buffering", "starting"].includes(this.state)) return;
    if (Date.now() - this.lastProgressAt > STALL_MS) this.retry(MESSAGES.error);
  }

  // Seconds behind the live edge: hls.js's own estimate, else the end of what is buffered.
  measureDelay() {
    if (this.hls && Number.isFinite(this.hls.latency) && this.hls.latency > 0) {
      return this.hls.latency;
    }
    const video = this.video;
    const ranges = video.seekable?.length ? video.seekable : video.buffered;
    if (!ranges || !ranges.length) return null;
    const edge = ranges.end(ranges.length - 1);
    return edge >= video.currentTime ? edge - video.currentTime : null;
  }

  showDelay() {
    const now = Date.now();
    if (now - (this.delayShownAt || 0) < 1000) return;
    this.delayShownAt = now;
    const delay = this.measureDelay();
    if (delay === null) return;
    this.delay = delay;
    this.delayEl.textContent = `延迟 ${delay.toFixed(1)} 秒`;
    this.root.dataset.delay = delay.toFixed(2);
  }

  retry(message, state = "error") {
    this.detach();
    let wait;
    if (state === "waiting_stream" && this.startingPolls < STARTING_POLLS) {
      // Watching is what starts the camera's stream: its first playlist is a couple of
      // seconds away, so look again soon rather than backing off.
      this.startingPolls += 1;
      wait = STARTING_POLL_MS;
    } else {
      wait = this.retryDelay;
      this.retryDelay = Math.min(RETRY_MAX_MS, this.retryDelay * 2);
    }
    this.setState(state, message, { label: "立即重试", run: () => this.restart() });
    clearTimeout(this.retryTimer);
    this.retryTimer = this.later(() => this.restart(), wait);
  }

  restart() {
    if (this.destroyed) return;
    this.clearTimers();
    this.detach();
    this.start();
  }

  fullscreen() {
    const video = this.video;
    if (video.requestFullscreen) video.requestFullscreen().catch(() => {});
    else if (video.webkitEnterFullscreen) video.webkitEnterFullscreen();
  }

  statusLabel() {
    return CAMERA_STATUS[this.cameraStatus] || "";
  }

  destroy() {
    this.destroyed = true;
    this.clearTimers();
    this.detach();
    document.removeEventListener("WeixinJSBridgeReady", this.onBridge);
    for (const name of ["playing", "waiting", "stalled", "error", "timeupdate", "pause"]) {
      this.video.removeEventListener(name, this.onEvent);
    }
  }
}
