// Pictures behind the bearer token (snapshots, answer and concern photos): an <img> cannot
// send it, so each is fetched once as a blob and shown through an object URL, revoked when the
// page is left. A tap opens the picture full screen.

import { api } from "./api.js";
import { $$, html, render } from "./ui.js";

// Returns `load(root)`: fills every img[data-api-src] under root (once per address per page).
export function authImages(ctx) {
  // address → the promise of its object URL: two <img> of one picture share one download.
  const urls = new Map();
  ctx.cleanup(() => {
    for (const pending of urls.values()) pending.then((url) => URL.revokeObjectURL(url), () => {});
    urls.clear();
    document.querySelector(".bk-gallery")?.remove();
  });
  const objectUrl = (address) => {
    if (!urls.has(address)) {
      const pending = api(address, { blob: true }).then((blob) => URL.createObjectURL(blob));
      pending.catch(() => urls.delete(address)); // tried again on the next draw
      urls.set(address, pending);
    }
    return urls.get(address);
  };
  return (root) =>
    Promise.all(
      $$(root, "img[data-api-src]").map(async (img) => {
        try {
          const url = await objectUrl(img.dataset.apiSrc);
          if (ctx.current) img.src = url;
        } catch {
          img.classList.add("bk-photo_failed"); // a picture that cannot load stays a grey box
        }
      }),
    );
}

export function openGallery(src) {
  const gallery = document.createElement("div");
  gallery.className = "weui-gallery bk-gallery";
  gallery.setAttribute("role", "dialog");
  gallery.setAttribute("aria-label", "查看照片");
  render(
    gallery,
    html`<span class="weui-gallery__img" style="background-image:url(${src})"></span>
      <div class="weui-gallery__opr"><a role="button" href="javascript:" class="bk-gallery__close">关闭</a></div>`,
  );
  gallery.addEventListener("click", () => gallery.remove());
  document.body.append(gallery);
}

// A tap on a loaded picture under `root` opens it full screen; returns true when it did.
export function galleryClick(event) {
  const img = event.target.closest("img[data-api-src]");
  if (!img?.src) return false;
  openGallery(img.src);
  return true;
}
