// "我的": who is signed in, and sign out.

import { currentUser, logout } from "../api.js";
import { ROLE } from "../labels.js";
import { $, confirmDialog, html, render, setTitle } from "../ui.js";

export async function accountPage(ctx) {
  setTitle("我的");
  const user = currentUser();
  render(
    ctx.view,
    html`<div class="bk-page">
      <div class="bk-profile">
        <div class="bk-profile__avatar" aria-hidden="true">${(user.display_name || "?").slice(0, 1)}</div>
        <div>
          <p class="bk-profile__name">${user.display_name}</p>
          <p class="bk-profile__role">${ROLE[user.role] || user.role}${user.username ? ` · ${user.username}` : ""}</p>
        </div>
      </div>
      <div class="weui-cells">
        <div class="weui-cell">
          <div class="weui-cell__bd">实时消息</div>
          <div class="weui-cell__ft"><span class="bk-realtime-label"></span></div>
        </div>
      </div>
      <div class="bk-actions">
        <a role="button" href="javascript:" class="weui-btn weui-btn_warn" data-action="logout">退出登录</a>
      </div>
    </div>`,
  );
  $(ctx.view, "[data-action=logout]").addEventListener("click", async () => {
    if (await confirmDialog("退出登录", "确定退出当前账号吗？", { ok: "退出" })) {
      await logout();
      ctx.navigate("/login", { replace: true });
    }
  });
}
