// The playground: every change asks the server for the URL (built and signed by proxy.urls),
// then loads it, showing what the origin answered. No framework, no build step.
"use strict";

const form = document.getElementById("controls");
const idField = document.getElementById("id");
const $ = (id) => document.getElementById(id);
let generation = 0;

function query() {
  const params = new URLSearchParams({ id: idField.value.trim() });
  for (const field of form.elements) {
    if (field.name && field.value !== "") params.set(field.name, field.value);
  }
  return params;
}

function showError(parameter, message) {
  for (const slot of document.querySelectorAll(".error[data-for]")) {
    slot.textContent = slot.dataset.for === parameter ? message : "";
  }
}

function kilobytes(bytes) {
  return bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KB` : `${bytes} B`;
}

async function update() {
  const mine = ++generation;
  const answer = await fetch(`/playground/url?${query()}`);
  const body = await answer.json();
  if (mine !== generation) return;
  if (!answer.ok) {
    showError(body.parameter || "id", body.error);
    return;
  }
  showError(null, "");
  const link = $("url");
  link.href = body.url;
  link.textContent = body.url;
  $("img-snippet").value = body.img;
  $("picture-snippet").value = body.picture;
  if ($("original").dataset.src !== body.original_url) {
    $("original").dataset.src = body.original_url;
    $("original").src = body.original_url;
  }
  const original = body.original;
  $("original-info").textContent = `${original.width}×${original.height} ${original.format}, ${kilobytes(original.bytes)}`;
  const started = performance.now();
  const image = await fetch(body.url);
  const took = performance.now() - started;
  if (mine !== generation) return;
  $("status").textContent = image.status;
  $("type").textContent = image.headers.get("Content-Type");
  $("x-cache").textContent = image.headers.get("X-Cache") || "";
  $("etag").textContent = image.headers.get("ETag") || "";
  $("time").textContent = `${took.toFixed(0)} ms`;
  if (!image.ok) {
    const error = await image.json();
    $("image-error").textContent = error.error;
    showError(error.parameter || null, error.error);
    $("size").textContent = "";
    return;
  }
  $("image-error").textContent = "";
  const blob = await image.blob();
  $("size").textContent = kilobytes(blob.size);
  const preview = $("preview");
  const old = preview.src;
  preview.onload = () => {
    const saved = 100 - (100 * blob.size) / original.bytes;
    $("result-info").textContent =
      `${preview.naturalWidth}×${preview.naturalHeight}, ${kilobytes(blob.size)} (${saved.toFixed(0)}% smaller)`;
  };
  preview.onerror = () => {  // served fine, but not every browser shows every format (JPEG XL)
    $("result-info").textContent =
      `${kilobytes(blob.size)} of ${image.headers.get("Content-Type")}, which this browser cannot display`;
  };
  preview.src = URL.createObjectURL(blob);
  if (old.startsWith("blob:")) URL.revokeObjectURL(old);  // replaced, whether the new one shows or not
}

let timer = null;
function soon() {
  clearTimeout(timer);
  timer = setTimeout(update, 150);
}

form.addEventListener("input", soon);
form.addEventListener("change", soon);
idField.addEventListener("input", soon);
for (const button of document.querySelectorAll("button.original")) {
  button.addEventListener("click", () => {
    for (const other of document.querySelectorAll("button.original")) other.classList.remove("chosen");
    button.classList.add("chosen");
    idField.value = button.dataset.id;
    form.elements.fp.value = "";
    form.elements.rect.value = "";
    update();
  });
}
$("original").addEventListener("click", (event) => {
  const box = event.target.getBoundingClientRect();
  const x = ((event.clientX - box.left) / box.width).toFixed(4);
  const y = ((event.clientY - box.top) / box.height).toFixed(4);
  form.elements.fp.value = `${Number(x)},${Number(y)}`;
  form.elements.gravity.value = "";
  update();
});
update();
