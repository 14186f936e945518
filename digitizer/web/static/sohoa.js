// sohoa pages: drag and drop onto file inputs, live batch progress. No dependencies.
"use strict";

function describeFiles(zone, input) {
  const out = zone.querySelector("[data-drop-names]");
  if (!out) return;
  const names = Array.from(input.files || []).map((f) => f.name);
  out.textContent = names.length ? "Đã chọn: " + names.join(", ") : "";
}

function setupDropzones() {
  document.querySelectorAll("[data-dropzone]").forEach((form) => {
    const zone = form.querySelector("[data-drop-target]");
    const input = form.querySelector("input[type=file]");
    if (!zone || !input) return;
    input.addEventListener("change", () => {
      describeFiles(zone, input);
      if (input.hasAttribute("data-autosubmit") && input.files.length) form.requestSubmit();
    });
    ["dragenter", "dragover"].forEach((name) =>
      zone.addEventListener(name, (event) => {
        event.preventDefault();
        zone.classList.add("over");
      })
    );
    ["dragleave", "drop"].forEach((name) =>
      zone.addEventListener(name, () => zone.classList.remove("over"))
    );
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      const dropped = event.dataTransfer && event.dataTransfer.files;
      if (!dropped || !dropped.length) return;
      const transfer = new DataTransfer();
      const many = input.multiple;
      Array.from(dropped).slice(0, many ? undefined : 1).forEach((f) => transfer.items.add(f));
      input.files = transfer.files;
      input.dispatchEvent(new Event("change", { bubbles: true }));
    });
  });
}

function setupPolling() {
  const box = document.querySelector("[data-poll]");
  if (!box) return;
  const url = box.getAttribute("data-poll");
  let delay = 1500;
  async function tick() {
    if (box.getAttribute("data-done") === "true") return;
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (response.redirected || response.status === 401) {
        window.location.assign(response.url);
        return;
      }
      if (response.ok) {
        box.innerHTML = await response.text();
        const line = box.querySelector("[data-done]");
        box.setAttribute("data-done", line ? line.getAttribute("data-done") : "false");
        delay = 1500;
      } else {
        delay = Math.min(delay * 2, 15000);
      }
    } catch (error) {
      delay = Math.min(delay * 2, 15000);
    }
    if (box.getAttribute("data-done") !== "true") window.setTimeout(tick, delay);
  }
  window.setTimeout(tick, delay);
}

// In forms marked data-enter-submits, Enter on a list (select) saves too, as in a text field.
function setupEnterSubmits() {
  document.querySelectorAll("form[data-enter-submits] select").forEach((select) =>
    select.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || event.altKey || event.ctrlKey || event.metaKey) return;
      event.preventDefault();
      select.form.requestSubmit();
    })
  );
}

document.addEventListener("DOMContentLoaded", () => {
  setupDropzones();
  setupEnterSubmits();
  setupPolling();
});
