// Rampart UI script: progressive enhancements only; every page works
// without it except security-key ceremonies, which need the WebAuthn API.
"use strict";

function rampartCSRF() {
  const m = document.querySelector('meta[name="csrf-token"]');
  return m ? m.content : "";
}

document.addEventListener("DOMContentLoaded", () => {
  // Confirm destructive actions: <form data-confirm="...">.
  document.querySelectorAll("form[data-confirm]").forEach((f) => {
    f.addEventListener("submit", (e) => {
      if (!window.confirm(f.dataset.confirm)) e.preventDefault();
    });
  });
});
