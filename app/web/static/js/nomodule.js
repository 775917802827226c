// Browsers without ES modules (very old WeChat kernels) get a message instead of a blank page.
document.getElementById("view").innerHTML =
  '<div class="bk-state"><p class="bk-state__text">当前浏览器版本过低，请将微信升级到最新版本后再打开。</p></div>';
