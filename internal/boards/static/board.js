// Boards: drag a card to another column to move the work item there. The
// page works without this script: each card has a small form that does
// the same.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const board = document.getElementById("board");
  if (!board || board.dataset.writable !== "true") return;
  document.documentElement.classList.add("js");
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const errorBox = document.getElementById("board-error");
  let dragged = null;

  function showError(msg) {
    errorBox.textContent = msg;
    errorBox.classList.remove("hidden");
  }

  function recount() {
    board.querySelectorAll(".column").forEach((col) => {
      const count = col.querySelector(".count");
      if (count) count.textContent = String(col.querySelectorAll(".wi").length);
    });
  }

  board.querySelectorAll(".wi[draggable=true]").forEach((card) => {
    card.addEventListener("dragstart", (e) => {
      dragged = card;
      card.classList.add("dragging");
      e.dataTransfer.effectAllowed = "move";
      e.dataTransfer.setData("text/plain", card.dataset.number);
    });
    card.addEventListener("dragend", () => {
      card.classList.remove("dragging");
      dragged = null;
    });
  });

  board.querySelectorAll(".column").forEach((col) => {
    col.addEventListener("dragover", (e) => {
      e.preventDefault();
      e.dataTransfer.dropEffect = "move";
      col.classList.add("drop");
    });
    col.addEventListener("dragleave", () => col.classList.remove("drop"));
    col.addEventListener("drop", async (e) => {
      e.preventDefault();
      col.classList.remove("drop");
      const number = e.dataTransfer.getData("text/plain") || (dragged && dragged.dataset.number);
      const card = document.getElementById("wi-" + number);
      if (!card || card.closest(".column") === col) return;
      const state = col.dataset.state;
      try {
        const resp = await fetch(board.dataset.api + "/" + encodeURIComponent(number), {
          method: "PATCH",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
          body: JSON.stringify({ state: state }),
        });
        if (!resp.ok) {
          let detail = "The server answered " + resp.status + ".";
          try {
            const p = await resp.json();
            if (p && p.detail) detail = p.detail;
          } catch (err) {
            // not JSON
          }
          showError("Could not move AB#" + number + ": " + detail);
          return;
        }
        col.querySelector(".cards").appendChild(card);
        const select = card.querySelector("select[name=state]");
        if (select) select.value = state;
        card.dataset.state = state;
        errorBox.classList.add("hidden");
        recount();
      } catch (err) {
        showError("Could not move AB#" + number + ": " + err.message);
      }
    });
  });
});
