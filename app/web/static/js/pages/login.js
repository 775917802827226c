// Sign-in: staff with username and password; parents through WeChat's web authorisation when
// the official account is configured (inside WeChat it starts by itself, once per tab), or the
// mini-program; in the demo, the demo parent with a password too.

import { insideWechat, login, startWechatLogin, wechatLoginEnabled, wechatLoginState } from "../api.js";
import { HOME } from "../main.js";
import { $, busy, html, render, setTitle, showError } from "../ui.js";

export async function loginPage(ctx) {
  setTitle("登录");
  const demo = document.getElementById("app").dataset.demo === "true";
  const wechat = wechatLoginEnabled();
  const next = ctx.query.next ? decodeURIComponent(ctx.query.next) : "";
  const tried = wechatLoginState();
  if (wechat && insideWechat() && !tried.tried) {
    render(ctx.view, html`<div class="bk-state"><i class="weui-loading" aria-hidden="true"></i>
      <p class="bk-state__text">正在通过微信登录</p></div>`);
    try {
      await startWechatLogin(next.startsWith("/") ? next : "");
      return;
    } catch (error) {
      showError(error);
    }
  }
  render(
    ctx.view,
    html`<div class="bk-login">
      <div class="bk-login__brand">
        <img src="/assets/img/icon.svg" alt="" width="56" height="56">
        <h1 class="bk-login__title">明厨亮灶</h1>
        <p class="bk-login__subtitle">校外托管机构后厨直播与监管</p>
      </div>
      <form class="weui-form bk-login__form" novalidate autocomplete="on">
        <div class="weui-cells weui-cells_form">
          <label class="weui-cell weui-cell_active" for="login-username">
            <div class="weui-cell__hd"><span class="weui-label">账号</span></div>
            <div class="weui-cell__bd">
              <input id="login-username" class="weui-input" name="username" autocomplete="username"
                autocapitalize="off" spellcheck="false" placeholder="请输入账号" required maxlength="64">
            </div>
          </label>
          <label class="weui-cell weui-cell_active" for="login-password">
            <div class="weui-cell__hd"><span class="weui-label">密码</span></div>
            <div class="weui-cell__bd">
              <input id="login-password" class="weui-input" name="password" type="password"
                autocomplete="current-password" placeholder="请输入密码" required maxlength="256">
            </div>
          </label>
        </div>
        <div class="weui-form__opr-area bk-login__actions">
          <button type="submit" class="weui-btn weui-btn_primary" data-action="login">登录</button>
        </div>
      </form>
      ${demo
        ? html`<div class="weui-form__tips-area bk-login__demo">
            <p class="weui-form__tips">演示账号：admin、inspector、operator、technician、parent</p>
            <p class="weui-form__tips">密码见启动时的输出（默认 bk-demo-2026）</p>
          </div>`
        : html`<p class="weui-form__tips bk-login__demo">家长请从公众号菜单或小程序进入</p>`}
      ${wechat
        ? html`<div class="bk-actions bk-login__wechat">
            <a role="button" href="javascript:" class="weui-btn weui-btn_default" data-action="wechat">家长微信登录</a>
          </div>`
        : ""}
    </div>`,
  );
  if (tried.error) showError({ message: tried.error });
  const wechatButton = $(ctx.view, "[data-action=wechat]");
  wechatButton?.addEventListener("click", () =>
    busy(wechatButton, () => startWechatLogin(next.startsWith("/") ? next : "").catch(showError)),
  );
  const form = $(ctx.view, "form");
  const button = $(form, "[data-action=login]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = form.username.value.trim();
    const password = form.password.value;
    if (!username || !password) {
      showError({ message: "请输入账号和密码" });
      return;
    }
    await busy(button, async () => {
      try {
        const session = await login(username, password);
        ctx.navigate(next && next.startsWith("/") ? next : HOME[session.user.role] || "/me", {
          replace: true,
        });
      } catch (error) {
        showError(error);
      }
    });
  });
}
