// Security keys and passkeys: asks the browser for a key (WebAuthn), then submits the page's form with
// the browser's answer as JSON. Every decision is the server's; this only carries options and answers.
(function () {
  "use strict";

  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) base64 += "=";
    var raw = atob(base64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    var options = Object.assign({}, json, { challenge: toBytes(json.challenge) });
    options.user = Object.assign({}, json.user, { id: toBytes(json.user.id) });
    options.excludeCredentials = (json.excludeCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: toBytes(c.id) });
    });
    return options;
  }

  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    var options = Object.assign({}, json, { challenge: toBytes(json.challenge) });
    options.allowCredentials = (json.allowCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: toBytes(c.id) });
    });
    return options;
  }

  function asJSON(credential) {
    if (credential.toJSON) return credential.toJSON();
    var r = credential.response;
    var response = { clientDataJSON: toText(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      if (r.userHandle) response.userHandle = toText(r.userHandle);
    }
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response: response,
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment,
    };
  }

  function post(url) {
    return fetch(url, { method: "POST", credentials: "same-origin", headers: { Accept: "application/json" } }).then(
      function (answer) {
        return answer.json().then(function (body) {
          if (!answer.ok) throw new Error((body && body.message) || "The request was refused.");
          return body;
        });
      }
    );
  }

  function say(form, message) {
    var slot = form.querySelector("[data-webauthn-error]") || document.querySelector("[data-webauthn-error]");
    if (slot) {
      slot.textContent = message;
      slot.hidden = false;
    }
  }

  function refused(form, error) {
    if (error && error.name === "NotAllowedError") {
      say(form, "The browser did not use a key (it was cancelled, timed out, or the key was not recognised). Try again.");
    } else if (error && error.name === "InvalidStateError") {
      say(form, "This key is already added to your account.");
    } else {
      say(form, (error && error.message) || "Your browser could not use a security key here.");
    }
  }

  function submitWith(form, credential) {
    form.querySelector("[name=credential]").value = JSON.stringify(asJSON(credential));
    form.submit();
  }

  // Add a key: Security page.
  document.querySelectorAll("form[data-webauthn=register]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      post("/api/v1/me/webauthn/registration/options")
        .then(function (started) {
          form.querySelector("[name=registration_id]").value = started.registration_id;
          return navigator.credentials.create({ publicKey: creationOptions(started.options) });
        })
        .then(function (credential) {
          submitWith(form, credential);
        })
        .catch(function (error) {
          refused(form, error);
        });
    });
  });

  // Confirm a removal with a key instead of a code.
  document.querySelectorAll("button[data-webauthn=reauth]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      event.preventDefault();
      var form = button.form;
      post("/api/v1/me/webauthn/reauth/options")
        .then(function (body) {
          return navigator.credentials.get({ publicKey: requestOptions(body.options) });
        })
        .then(function (credential) {
          submitWith(form, credential);
        })
        .catch(function (error) {
          refused(form, error);
        });
    });
  });

  // The sign-in's key step.
  document.querySelectorAll("form[data-webauthn=sign-in]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      post("/api/v1/sign-in/" + encodeURIComponent(form.dataset.flow) + "/webauthn/options")
        .then(function (body) {
          return navigator.credentials.get({ publicKey: requestOptions(body.options) });
        })
        .then(function (credential) {
          submitWith(form, credential);
        })
        .catch(function (error) {
          refused(form, error);
        });
    });
  });

  // Passkey sign-in: a button, and the browser's autofill (conditional mediation) where it is offered.
  var passkeyForm = document.querySelector("form[data-webauthn=passkey]");
  if (passkeyForm && window.PublicKeyCredential) {
    var pending = null;
    var start = function (mediation) {
      if (pending) pending.abort();
      pending = new AbortController();
      var signal = pending.signal;
      return post("/api/v1/passkey/options")
        .then(function (started) {
          passkeyForm.querySelector("[name=passkey_flow_id]").value = started.passkey_flow_id;
          var request = { publicKey: requestOptions(started.options), signal: signal };
          if (mediation) request.mediation = mediation;
          return navigator.credentials.get(request);
        })
        .then(function (credential) {
          if (credential) submitWith(passkeyForm, credential);
        });
    };
    passkeyForm.hidden = false;
    passkeyForm.addEventListener("submit", function (event) {
      event.preventDefault();
      start(null).catch(function (error) {
        if (error && error.name === "AbortError") return;
        refused(passkeyForm, error);
      });
    });
    if (PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
        if (available) start("conditional").catch(function () {});
      });
    }
  }
})();
