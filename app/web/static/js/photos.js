// Choosing photos for an answer or a concern: take one with the camera or pick from the
// album (WeChat shows both when `capture` is absent; the camera button sets it), previews,
// removal, and large pictures scaled down before upload (phones take 4000-px photos; 2048 px
// is plenty for evidence and saves the parent's mobile data).

import { $, html, render } from "./ui.js";

const MAX_SIDE = 2048;
const SHRINK_ABOVE_BYTES = 1.5 * 1024 * 1024;

async function shrink(file) {
  if (file.size <= SHRINK_ABOVE_BYTES || !/^image\/(jpeg|png|webp)$/.test(file.type)) return file;
  try {
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(bitmap.width * scale);
    canvas.height = Math.round(bitmap.height * scale);
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
    if (!blob || blob.size >= file.size) return file;
    return new File([blob], file.name.replace(/\.\w+$/, "") + ".jpg", { type: "image/jpeg" });
  } catch {
    return file; // the server checks and refuses what it cannot take
  }
}

export function photoPicker(container, { max = 9 } = {}) {
  const chosen = []; // {file, url}
  render(
    container,
    html`<div class="weui-uploader bk-uploader">
      <ul class="weui-uploader__files" data-files></ul>
      <div class="bk-uploader__buttons">
        <label class="weui-btn weui-btn_default weui-btn_mini bk-uploader__btn">
          拍照<input type="file" accept="image/*" capture="environment" data-input="camera" hidden>
        </label>
        <label class="weui-btn weui-btn_default weui-btn_mini bk-uploader__btn">
          从相册选择<input type="file" accept="image/*" multiple data-input="album" hidden>
        </label>
        <span class="bk-uploader__count" data-count>0/${max}</span>
      </div>
    </div>`,
  );
  const list = $(container, "[data-files]");
  const draw = () => {
    render(
      list,
      chosen.map(
        (item, i) => html`<li class="weui-uploader__file bk-uploader__file" style="background-image:url(${item.url})">
          <a role="button" href="javascript:" class="bk-uploader__remove" data-remove="${i}" aria-label="删除照片">×</a>
        </li>`,
      ),
    );
    $(container, "[data-count]").textContent = `${chosen.length}/${max}`;
  };
  const add = (event) => {
    for (const file of event.target.files) {
      if (chosen.length >= max) break;
      chosen.push({ file, url: URL.createObjectURL(file) });
    }
    event.target.value = "";
    draw();
  };
  for (const input of container.querySelectorAll("input[type=file]")) {
    input.addEventListener("change", add);
  }
  list.addEventListener("click", (event) => {
    const index = event.target.closest("[data-remove]")?.dataset.remove;
    if (index === undefined) return;
    const [removed] = chosen.splice(Number(index), 1);
    URL.revokeObjectURL(removed.url);
    draw();
  });
  return {
    count: () => chosen.length,
    files: () => Promise.all(chosen.map((item) => shrink(item.file))),
    destroy: () => chosen.forEach((item) => URL.revokeObjectURL(item.url)),
  };
}
