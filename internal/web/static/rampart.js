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

// --- Security keys and passkeys (WebAuthn) ---------------------------------
//
// The server sends ceremony options as JSON with binary members in
// base64url; the browser API wants ArrayBuffers, and its answer goes back
// as JSON with base64url again.

function rampartFromB64url(s) {
  let b64 = s.replace(/-/g, "+").replace(/_/g, "/");
  while (b64.length % 4) b64 += "=";
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

function rampartToB64url(buf) {
  const bytes = new Uint8Array(buf);
  let bin = "";
  for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// rampartPost sends a JSON body with the CSRF token and returns the JSON
// answer, or throws an Error with the server's message.
async function rampartPost(url, body) {
  const resp = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": rampartCSRF() },
    body: JSON.stringify(body === undefined ? {} : body),
  });
  let data = null;
  try {
    data = await resp.json();
  } catch (e) {
    // An HTML error page (CSRF check, expired session): no JSON.
  }
  if (!resp.ok) {
    throw new Error((data && data.error) || "The server answered " + resp.status + ". Reload the page and try again.");
  }
  return data;
}

function rampartCreationOptions(o) {
  const pk = o.publicKey;
  pk.challenge = rampartFromB64url(pk.challenge);
  pk.user.id = rampartFromB64url(pk.user.id);
  (pk.excludeCredentials || []).forEach((c) => { c.id = rampartFromB64url(c.id); });
  return { publicKey: pk };
}

function rampartRequestOptions(o) {
  const pk = o.publicKey;
  pk.challenge = rampartFromB64url(pk.challenge);
  (pk.allowCredentials || []).forEach((c) => { c.id = rampartFromB64url(c.id); });
  return { publicKey: pk };
}

// rampartCredentialJSON encodes a PublicKeyCredential (either ceremony).
function rampartCredentialJSON(cred) {
  const r = cred.response;
  const out = {
    id: cred.id,
    rawId: rampartToB64url(cred.rawId),
    type: cred.type,
    clientExtensionResults: cred.getClientExtensionResults(),
    response: { clientDataJSON: rampartToB64url(r.clientDataJSON) },
  };
  if (cred.authenticatorAttachment) out.authenticatorAttachment = cred.authenticatorAttachment;
  if (r.attestationObject) {
    out.response.attestationObject = rampartToB64url(r.attestationObject);
    if (typeof r.getTransports === "function") out.response.transports = r.getTransports();
  } else {
    out.response.authenticatorData = rampartToB64url(r.authenticatorData);
    out.response.signature = rampartToB64url(r.signature);
    if (r.userHandle) out.response.userHandle = rampartToB64url(r.userHandle);
  }
  return out;
}

// rampartShowError explains a failed ceremony in el.
function rampartShowError(el, err) {
  let msg = err && err.message ? err.message : String(err);
  if (err && err.name === "NotAllowedError") {
    msg = "The security key request was cancelled or timed out. Try again.";
  } else if (err && err.name === "InvalidStateError") {
    msg = "This security key is already registered.";
  } else if (err && err.name === "SecurityError") {
    msg = "This browser refused the request: Rampart must be opened at its public address.";
  }
  if (!el) {
    window.alert(msg);
    return;
  }
  el.textContent = msg;
  el.classList.remove("hidden");
}

// rampartSignIn runs a sign-in ceremony against begin/finish URLs and
// follows the server to the next page.
async function rampartSignIn(beginURL, finishURL) {
  const opts = await rampartPost(beginURL);
  const cred = await navigator.credentials.get(rampartRequestOptions(opts));
  const res = await rampartPost(finishURL, rampartCredentialJSON(cred));
  window.location.assign(res.next || "/");
}

document.addEventListener("DOMContentLoaded", () => {
  const supported = typeof window.PublicKeyCredential === "function" && !!navigator.credentials;

  // Register a key: on the account page, or while enrolling a second
  // factor during sign-in (the button's data-begin/data-finish say where).
  const reg = document.getElementById("webauthn-register");
  if (reg) {
    const errEl = document.getElementById("webauthn-error");
    if (!supported) {
      reg.disabled = true;
      rampartShowError(errEl, new Error("This browser does not support security keys."));
    }
    reg.addEventListener("click", async () => {
      errEl.classList.add("hidden");
      reg.disabled = true;
      try {
        const nameEl = document.getElementById("webauthn-name");
        const opts = await rampartPost(reg.dataset.begin || "/account/webauthn/register/begin", { name: nameEl ? nameEl.value : "" });
        const cred = await navigator.credentials.create(rampartCreationOptions(opts));
        const res = await rampartPost(reg.dataset.finish || "/account/webauthn/register/finish", rampartCredentialJSON(cred));
        const done = document.getElementById("webauthn-codes-done");
        if (res.next && done) done.setAttribute("href", res.next);
        if (res.recovery_codes && res.recovery_codes.length) {
          const box = document.getElementById("webauthn-recovery-codes");
          box.replaceChildren(...res.recovery_codes.map((c) => {
            const s = document.createElement("span");
            s.textContent = c;
            return s;
          }));
          const panel = document.getElementById("webauthn-codes");
          panel.classList.remove("hidden");
          panel.scrollIntoView();
          return;
        }
        if (res.next) {
          window.location.assign(res.next);
          return;
        }
        window.location.assign("/account?flash=" + encodeURIComponent("Security key “" + res.name + "” registered."));
      } catch (e) {
        rampartShowError(errEl, e);
      } finally {
        reg.disabled = false;
      }
    });
  }

  // Second factor: use a key.
  const use = document.getElementById("webauthn-login");
  if (use) {
    const errEl = document.getElementById("webauthn-error");
    if (!supported) {
      use.disabled = true;
      rampartShowError(errEl, new Error("This browser does not support security keys."));
    }
    use.addEventListener("click", async () => {
      errEl.classList.add("hidden");
      use.disabled = true;
      try {
        await rampartSignIn("/login/webauthn/begin", "/login/webauthn/finish");
      } catch (e) {
        rampartShowError(errEl, e);
        use.disabled = false;
      }
    });
  }

  // Sign-in page: passkey without a user name.
  const passkey = document.getElementById("passkey-login");
  const passkeyButton = document.getElementById("passkey-button");
  if (passkey && passkeyButton && supported) {
    passkey.classList.remove("hidden");
    const errEl = document.getElementById("passkey-error");
    passkeyButton.addEventListener("click", async () => {
      if (errEl) errEl.classList.add("hidden");
      passkeyButton.disabled = true;
      try {
        const next = passkeyButton.dataset.next || "/";
        await rampartSignIn("/login/passkey/begin", "/login/passkey/finish?next=" + encodeURIComponent(next));
      } catch (e) {
        rampartShowError(errEl, e);
        passkeyButton.disabled = false;
      }
    });
  }
  // Every handler above is attached: browser tests wait for this before
  // clicking buttons that only work through them.
  document.documentElement.dataset.jsReady = "1";
});
