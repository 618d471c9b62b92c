// Security keys on the realm's pages: the page carries the options the
// server made (data-options); this script hands them to the browser's
// WebAuthn API and posts the answer with the page's form.
(function () {
  "use strict";
  var el = document.getElementById("key-options");
  var button = document.getElementById("use-key");
  if (!el || !button) { return; }
  if (!window.PublicKeyCredential) { button.disabled = true; return; }
  function bytes(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out;
  }
  function text(buf) {
    if (!buf) { return null; }
    var b = new Uint8Array(buf), s = "";
    for (var i = 0; i < b.length; i++) { s += String.fromCharCode(b[i]); }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  button.addEventListener("click", function () {
    var opts = JSON.parse(el.getAttribute("data-options")).publicKey;
    opts.challenge = bytes(opts.challenge);
    var done = function (cred) {
      var r = cred.response, out = { id: cred.id, rawId: text(cred.rawId), type: cred.type, response: { clientDataJSON: text(r.clientDataJSON) } };
      if (r.attestationObject) {
        out.response.attestationObject = text(r.attestationObject);
      } else {
        out.response.authenticatorData = text(r.authenticatorData);
        out.response.signature = text(r.signature);
        out.response.userHandle = text(r.userHandle);
      }
      document.getElementById("credential").value = JSON.stringify(out);
      document.getElementById("key-form").submit();
    };
    var failed = function (e) { document.getElementById("key-error").textContent = "The security key did not answer: " + e.message; };
    if (el.getAttribute("data-kind") === "register") {
      opts.user.id = bytes(opts.user.id);
      (opts.excludeCredentials || []).forEach(function (c) { c.id = bytes(c.id); });
      navigator.credentials.create({ publicKey: opts }).then(done, failed);
    } else {
      (opts.allowCredentials || []).forEach(function (c) { c.id = bytes(c.id); });
      navigator.credentials.get({ publicKey: opts }).then(done, failed);
    }
  });
  button.setAttribute("data-ready", "1");
})();
